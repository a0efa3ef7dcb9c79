"""A CSV's encoding (issue 17, item 6): the declared one is strict (bytes that do not decode
are refused, naming the byte and line; never mojibake), a UTF-8 BOM is honoured, and
`source.encoding: auto` detects it (charset-normalizer), notes the guess, and still refuses
a byte the guess does not read. Expectations: the bytes decoded with the known encoding."""

import re

import pytest

from ingest_assets.parsers import ParseContext, ParseError
from ingest_assets.parsers.base import parse_batches
from tests.parsers.conftest import FIXTURES
from tests.parsers.table_reads import HIDDEN, PARSERS, as_read, read_both, stdlib_rows

LATIN1_FILES = [
    FIXTURES / "csv" / "bde_catalogo_tc_latin1.csv",
    FIXTURES / "csv" / "bcra_ITCRMSerie2_semicolon_trailing_cols.csv",
]


def _auto(config, **source):
    return config({"format": "csv", "encoding": "auto", **source}, keys=["zz"])


def _plain(config, **source):
    return config({"format": "csv", **source}, keys=["zz"])


def test_a_byte_not_in_the_declared_encoding_is_refused_where_it_is(config):
    """csvkit's test_latin1.csv read as the default UTF-8: byte 16 (line 3, `\\xa9`)."""
    path = PARSERS / "test_latin1.csv"
    assert path.read_bytes().index(b"\xa9") == 16
    for whole in (False, True):  # streamed, and whole
        with pytest.raises(ParseError) as info:
            list(parse_batches(path, ParseContext(_plain(config), str(path)), whole=whole))
        message = str(info.value)
        assert "cannot decode as source.encoding 'utf-8': byte 16 (line 3) is b'\\xa9'" in message
        assert "set source.encoding" in message and "auto" in message


def test_a_utf8_bom_is_honoured_with_utf8(config):
    path = PARSERS / "test_utf8_bom.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    streamed, whole, _ = read_both(path, _plain(config))
    assert streamed.to_pylist() == whole.to_pylist()
    raw = stdlib_rows(path.read_bytes(), "utf-8-sig")
    assert whole.column_names == ["_row", "foo", "bar", "baz", "_rejected"]
    assert whole.drop_columns(HIDDEN).to_pylist() == as_read(raw[0], raw[1:])


def test_utf16_read_as_utf8_says_it_starts_with_a_utf16_bom(config):
    with pytest.raises(ParseError) as info:
        read_both(PARSERS / "test_utf16_little.csv", _plain(config))
    assert "the file starts with a utf-16 byte order mark (b'\\xff\\xfe')" in str(info.value)


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("test_utf8_bom.csv", "utf-8-sig"),
        ("test_utf16_little.csv", "utf-16"),
        ("test_utf16_big.csv", "utf-16"),
        ("test_latin1.csv", "cp1252"),
    ],
)
def test_auto_reads_csvkit_encodings(config, name, encoding):
    path = PARSERS / name
    raw = stdlib_rows(path.read_bytes(), encoding)
    streamed, whole, notes = read_both(path, _auto(config))
    assert streamed.to_pylist() == whole.to_pylist()
    assert whole.drop_columns(HIDDEN).to_pylist() == as_read(raw[0], raw[1:])
    assert notes == [
        f"{path}: source.encoding auto: read as {encoding} "
        + notes[0].split(f"read as {encoding} ", 1)[1]
    ]
    if name == "test_latin1.csv":
        assert whole.column("c").to_pylist() == ["3", "©"]


@pytest.mark.parametrize("path", LATIN1_FILES, ids=lambda p: p.name)
def test_auto_reads_real_latin1_files_as_declaring_latin1_does(config, path):
    delimiter = ";" if b";" in path.read_bytes()[:200] else ","
    declared = read_both(path, _plain(config, encoding="latin-1", delimiter=delimiter))[1]
    streamed, whole, notes = read_both(path, _auto(config, delimiter=delimiter))
    assert streamed.to_pylist() == whole.to_pylist() == declared.to_pylist()
    assert re.fullmatch(
        r".*: source\.encoding auto: read as cp1252 \(charset-normalizer.*", notes[0]
    )


def _feed_csv(name: str) -> tuple[bytes, bytes]:
    """A CSV cut from feedparser's undeclared-encoding feed `name`: its title and summary
    bytes as the feed has them (the CSV's bytes, the title's)."""
    data = (PARSERS / name).read_bytes()
    title = re.search(rb"<title>(.*?)</title>", data, re.S).group(1)
    text = re.search(rb"<(?:description|summary)>(.*?)</(?:description|summary)>", data, re.S)
    body = text.group(1).strip()
    assert b'"' not in title + body
    return b'title,text\n"' + title + b'","' + body + b'"\n', title


@pytest.mark.parametrize(
    ("name", "encoding"), [("koi8r.xml", "koi8_r"), ("shiftjis.xml", "shift_jis")]
)
def test_auto_reads_undeclared_koi8r_and_shift_jis(tmp_path, config, name, encoding):
    data, title = _feed_csv(name)
    path = tmp_path / "feed.csv"
    path.write_bytes(data)
    with pytest.raises(ParseError):  # never mojibake: as UTF-8 it is refused
        read_both(path, _plain(config))
    streamed, whole, notes = read_both(path, _auto(config))
    assert streamed.to_pylist() == whole.to_pylist()
    assert whole.column("title").to_pylist() == [title.decode(encoding)]
    assert whole.drop_columns(HIDDEN).to_pylist() == as_read(
        ["title", "text"], stdlib_rows(data, encoding)[1:]
    )
    assert f"read as {encoding} (charset-normalizer's guess" in notes[0]


def test_auto_refuses_a_byte_its_guess_does_not_read_past_the_sample(tmp_path, config):
    """Over 1 MB of Latin-1 lines (detected as cp1252), then a byte cp1252 does not have:
    found while the whole file is read, and refused, naming the guess and the byte."""
    lines = (FIXTURES / "csv" / "bde_catalogo_tc_latin1.csv").read_bytes().splitlines()[1:]
    body = b"\n".join(b"%d,%s" % (i, line.replace(b",", b" ")) for i, line in enumerate(lines * 60))
    assert len(body) > (1 << 20) + 50_000
    data = b"id,text\n" + body + b"\n999,bad \x81 byte\n"
    path = tmp_path / "long.csv"
    path.write_bytes(data)
    with pytest.raises(ParseError) as info:
        read_both(path, _auto(config))
    offset = data.index(b"\x81")
    line = data.count(b"\n", 0, offset) + 1
    assert (
        f"source.encoding auto read this file as 'cp1252', but byte {offset} (line {line}) "
        "is b'\\x81 by'" in str(info.value)
    )


def test_an_ascii_file_is_utf8_with_auto(tmp_path, config):
    path = tmp_path / "ascii.csv"
    path.write_bytes(b"a,b\n1,2\n")
    _, whole, notes = read_both(path, _auto(config))
    assert whole.drop_columns(HIDDEN).to_pylist() == [{"a": "1", "b": "2"}]
    assert notes == [f"{path}: source.encoding auto: read as utf-8 (every byte is ASCII)"]
