"""A feed's or a JSON document's encoding: its BOM, its XML declaration, the HTTP charset,
`source.encoding`, else strict UTF-8, else `auto`'s guess (noted); never mojibake in silence.

The feeds in tests/fixtures/feeds were written by hand (make_feeds.py) and encoded with
Python's codecs, declaring no encoding; the expected text is written again here. Before:
feedparser guessed them as iso-8859-2 and windows-1252 and the titles were published as
'“Œ‹ž“s...' and '÷ íÏÓË×Å...' with no warning."""

import codecs
import json

import pytest

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_assets.parsers import ParseError
from tests.conftest import FIXTURES
from tests.parsers.batches import read_file

FEEDS = FIXTURES / "feeds"
SHIFT_JIS = FEEDS / "ja_shift_jis_undeclared.rss.xml"
KOI8_R = FEEDS / "ru_koi8_r_undeclared.rss.xml"
JAPANESE_TITLES = [
    "図書館の開館時間を延長します",
    "粗大ごみの収集日が変わります",
    "夏祭り「みなと祭」のお知らせ",
]
JAPANESE_FIRST = "中央図書館は４月１日から、平日の開館時間を午後８時まで延長します。"
RUSSIAN_TITLES = [
    "Открыта новая библиотека",
    "Изменён график движения автобусов",
    "Ремонт моста завершён досрочно",
]
RUSSIAN_FEED = "Новости города"


def titles(table) -> list[str]:
    return table.column("title").to_pylist()


@pytest.mark.parametrize(
    ("path", "encoding", "first"), [(SHIFT_JIS, "shift_jis", 0x81), (KOI8_R, "koi8-r", 0xEE)]
)
def test_an_undeclared_legacy_feed_is_refused_naming_the_byte_and_the_fix(
    path, encoding, first, tmp_path
):
    data = path.read_bytes()
    offset = next(i for i, b in enumerate(data) if b >= 0x80)  # the first byte not ASCII
    assert data[offset] == first
    with pytest.raises(ParseError) as info:
        read_file(path, {"format": "rss"})
    message = str(info.value)
    assert message.startswith(f"dataset PARSER_TEST_DS: {path}: the feed names no encoding")
    line = data[:offset].count(b"\n") + 1
    assert f"byte {offset:,} (line {line})" in message
    assert "and is not UTF-8" in message
    assert "Set source.encoding to its encoding" in message and "or to auto" in message


@pytest.mark.parametrize(
    ("path", "encoding", "expected"),
    [(SHIFT_JIS, "shift_jis", JAPANESE_TITLES), (KOI8_R, "koi8-r", RUSSIAN_TITLES)],
)
def test_an_undeclared_legacy_feed_reads_right_with_its_encoding_named(path, encoding, expected):
    table, notes = read_file(path, {"format": "rss", "encoding": encoding})
    assert titles(table) == expected
    assert notes == []


def test_the_text_read_is_the_text_written(tmp_path):
    table, _ = read_file(SHIFT_JIS, {"format": "rss", "encoding": "shift_jis"})
    first = table.to_pylist()[0]
    assert first["summary"] == JAPANESE_FIRST
    assert first["feed_title"] == "「市政だより」新着情報"
    assert first["id"] == "https://city.example.jp/news/1"
    table, _ = read_file(KOI8_R, {"format": "rss", "encoding": "koi8-r"})
    assert table.column("feed_title").to_pylist() == [RUSSIAN_FEED] * 3


@pytest.mark.parametrize(
    ("path", "expected", "guess"),
    [(SHIFT_JIS, JAPANESE_TITLES, ("shift_jis", "cp932")), (KOI8_R, RUSSIAN_TITLES, ("koi8_r",))],
)
def test_auto_detects_the_encoding_and_notes_the_guess(path, expected, guess):
    table, notes = read_file(path, {"format": "rss", "encoding": "auto"})
    assert titles(table) == expected
    assert len(notes) == 1, notes
    assert notes[0].startswith(f"{path}: the feed declares no encoding that reads it")
    assert any(f"detected as {name} (charset-normalizer)" in notes[0] for name in guess), notes


@pytest.mark.parametrize(
    ("path", "charset", "expected"),
    [(SHIFT_JIS, "Shift_JIS", JAPANESE_TITLES), (KOI8_R, "koi8-r", RUSSIAN_TITLES)],
)
def test_the_http_charset_decides(path, charset, expected):
    content_type = f"application/rss+xml; charset={charset}"
    table, notes = read_file(path, {"format": "rss"}, content_type=content_type)
    assert (titles(table), notes) == (expected, [])


def test_the_xml_declaration_decides(tmp_path):
    text = codecs.decode(KOI8_R.read_bytes(), "koi8-r")
    declared = text.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="KOI8-R"?>')
    path = tmp_path / "declared.xml"
    path.write_bytes(declared.encode("koi8-r"))
    table, notes = read_file(path, {"format": "rss"})
    assert (titles(table), notes) == (RUSSIAN_TITLES, [])


@pytest.mark.parametrize("bom", ["utf-8-sig", "utf-16", "utf-32"])
def test_a_bom_decides_over_a_wrong_declaration(tmp_path, bom):
    text = codecs.decode(SHIFT_JIS.read_bytes(), "shift_jis")
    wrong = text.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="koi8-r"?>')
    path = tmp_path / "bom.xml"
    path.write_bytes(wrong.encode(bom))  # (Python's utf-16/utf-32 codecs write a BOM)
    table, _ = read_file(path, {"format": "rss"})
    assert titles(table) == JAPANESE_TITLES


def test_a_declaration_the_bytes_do_not_bear_out_falls_back_noted(tmp_path):
    """Declared UTF-8, served as koi8-r and written in KOI8-R: the HTTP charset reads it."""
    text = codecs.decode(KOI8_R.read_bytes(), "koi8-r")
    path = tmp_path / "misdeclared.xml"
    path.write_bytes(
        text.replace('version="1.0"?', 'version="1.0" encoding="utf-8"?').encode("koi8-r")
    )
    table, notes = read_file(path, {"format": "rss"}, content_type="text/xml; charset=koi8-r")
    assert titles(table) == RUSSIAN_TITLES
    assert notes == [
        f"{path}: the feed is not valid utf-8 (its XML declaration): read as koi8-r (the HTTP charset)"
    ]
    with pytest.raises(ParseError, match="cannot read the feed as utf-8 \\(its XML declaration\\)"):
        read_file(path, {"format": "rss"})


def test_source_encoding_overrides_a_wrong_declaration(tmp_path):
    text = codecs.decode(SHIFT_JIS.read_bytes(), "shift_jis")
    path = tmp_path / "wrong.xml"
    path.write_bytes(
        text.replace('version="1.0"?', 'version="1.0" encoding="EUC-JP"?').encode("shift_jis")
    )
    table, _ = read_file(path, {"format": "rss", "encoding": "shift_jis"})
    assert titles(table) == JAPANESE_TITLES


def test_an_explicit_encoding_that_does_not_read_the_feed_is_refused():
    with pytest.raises(ParseError) as info:
        read_file(SHIFT_JIS, {"format": "rss", "encoding": "utf-8"})
    assert "cannot read the feed as utf-8 (source.encoding)" in str(info.value)


def test_a_utf8_feed_is_read_as_before(fixture_file):
    """The real ISO-8859-1 feed that declares itself, and a UTF-8 one, need nothing set."""
    table, notes = read_file(
        fixture_file("rss/dival_rss091_iso8859_missing_fields.xml"), {"format": "rss"}
    )
    assert "Diputación" in table.column("feed_title").to_pylist()[0] and notes == []
    table, notes = read_file(
        fixture_file("rss/reddit_atom_mediarss_25_entries.xml"), {"format": "rss"}
    )
    assert table.num_rows == 25 and notes == []


# --- JSON ------------------------------------------------------------------------------------

RECORDS = [
    {"ciudad": "Córdoba", "población": 1_329_604},
    {"ciudad": "Asunción", "población": 521_559},
]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32-be", "utf-8-sig"])
def test_json_in_utf16_or_32_is_read_with_or_without_a_bom(tmp_path, encoding):
    path = tmp_path / "data.json"
    path.write_bytes(json.dumps(RECORDS, ensure_ascii=False).encode(encoding))
    table, _ = read_file(path, {"format": "json"}, keys=["ciudad"])
    assert table.drop_columns(["_row"]).to_pylist() == RECORDS


def test_latin1_json_is_refused_unless_named_or_served_so(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps(RECORDS, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(ParseError) as info:
        read_file(path, {"format": "json"}, keys=["ciudad"])
    assert (
        "the JSON document names no encoding (a BOM or the HTTP charset) and is not UTF-8"
        in str(info.value)
    )
    assert "byte 14 (line 1) is b'\\xf3rdo'" in str(info.value)  # ('[{"ciudad": "C': 14 bytes)
    table, notes = read_file(path, {"format": "json", "encoding": "latin-1"}, keys=["ciudad"])
    assert table.drop_columns(["_row"]).to_pylist() == RECORDS and notes == []
    served = "application/json; charset=ISO-8859-1"
    table, notes = read_file(path, {"format": "json"}, keys=["ciudad"], content_type=served)
    assert table.drop_columns(["_row"]).to_pylist() == RECORDS and notes == []


def test_json_that_is_utf8_ignores_a_wrong_http_charset(tmp_path):
    """RFC 8259: JSON is UTF-8; a server's charset=ISO-8859-1 must not turn 'ó' into 'Ã³'."""
    path = tmp_path / "data.json"
    path.write_bytes(json.dumps(RECORDS, ensure_ascii=False).encode("utf-8"))
    served = "application/json; charset=ISO-8859-1"
    table, _ = read_file(path, {"format": "json"}, keys=["ciudad"], content_type=served)
    assert table.drop_columns(["_row"]).to_pylist() == RECORDS


# --- the HTTP charset, kept from the fetch to the parse ---------------------------------------


def test_the_charset_of_the_response_reaches_the_parser(httpserver, runtime):
    httpserver.expect_request("/news.rss").respond_with_data(
        KOI8_R.read_bytes(), headers={"Content-Type": "application/rss+xml; charset=KOI8-R"}
    )
    config = parse_config(
        {
            "dataset_id": "GOROD",
            "source": {"kind": "http", "url": httpserver.url_for("/news.rss"), "format": "rss"},
            "normalize": {"primary_keys": ["id"]},
        },
        "gorod.yaml",
    )
    info = stages.run_raw(runtime, config, "all")
    assert info.content_type == "application/rss+xml; charset=KOI8-R"
    staged, _ = stages.run_parse(runtime, config, "all")
    assert staged.head.column("title").to_pylist() == RUSSIAN_TITLES


def test_the_same_bytes_served_with_another_charset_are_parsed_again(httpserver, runtime):
    """The fingerprint of the parsed data covers the Content-Type: equal fingerprints, equal rows."""
    body = KOI8_R.read_bytes()
    config = parse_config(
        {
            "dataset_id": "GOROD",
            "source": {"kind": "http", "url": httpserver.url_for("/news.rss"), "format": "rss"},
            "normalize": {"primary_keys": ["id"]},
        },
        "gorod.yaml",
    )
    for charset, expected in [("koi8-r", RUSSIAN_TITLES), ("cp1251", None)]:
        httpserver.clear()
        httpserver.expect_request("/news.rss").respond_with_data(
            body, headers={"Content-Type": f"application/rss+xml; charset={charset}"}
        )
        stages.run_raw(runtime, config, "all")
        staged, _ = stages.run_parse(runtime, config, "all")
        titles_read = staged.head.column("title").to_pylist()
        if expected:
            assert titles_read == expected
        else:  # (read as the server says, whatever it says: not the KOI8-R text)
            assert titles_read != RUSSIAN_TITLES
            assert titles_read[0] == codecs.decode(body, "cp1251").split("<title>")[2].split("<")[0]
