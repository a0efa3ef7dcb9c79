"""The streaming CSV reader (Arrow, in batches) gives what the general one (pandas) gives, and
hands the file over to pandas (pa.ArrowInvalid) where Arrow would read it differently."""

import pyarrow as pa
import pytest

from ingest_assets.parsers import ParseContext
from ingest_assets.parsers import table as table_parser
from ingest_assets.parsers.base import parse_batches

CASES = [
    ("csv/indec_serie_ipc_divisiones_latin1_decimal_comma.csv",
     {"format": "csv", "encoding": "latin-1", "delimiter": ";", "decimal": ","},
     ["Codigo", "Periodo", "Region"], {}),
    ("csv/bde_catalogo_tc_latin1.csv", {"format": "csv", "encoding": "latin-1"},
     ["Nombre de la serie "], {}),
    ("malformed/csvwrangling_book_multiline_quoted.csv", {"format": "csv"}, ["bookId"], {}),
    ("csv/bcra_ITCRMSerie2_semicolon_trailing_cols.csv",
     {"format": "csv", "encoding": "latin-1", "delimiter": ";"}, ["Period"], {"skip_footer": 3}),
]  # fmt: skip


def _both(path, cfg) -> tuple[pa.Table | None, pa.Table]:
    ctx = ParseContext(cfg, str(path))
    try:
        streamed = pa.concat_tables(list(parse_batches(path, ctx)))
    except pa.ArrowInvalid:
        streamed = None
    whole = pa.concat_tables(list(parse_batches(path, ctx, whole=True)))
    return streamed, whole


@pytest.mark.parametrize(("name", "source", "keys", "options"), CASES)
def test_streaming_matches_the_general_reader(
    name, source, keys, options, config, fixture_file, monkeypatch
):
    monkeypatch.setattr(table_parser, "BLOCK_BYTES", 1 << 14)  # many blocks even on small files
    monkeypatch.setattr(table_parser, "BATCH_BYTES", 1 << 15)
    cfg = config(source, keys=keys, parse={"plugin": "table", "options": options})
    streamed, whole = _both(fixture_file(name), cfg)
    if streamed is None:  # Arrow refused (a short footer row): pandas reads it, as before
        assert "skip_footer" in options
        return
    assert streamed.column_names == whole.column_names
    assert streamed.to_pylist() == whole.to_pylist()


def test_a_ragged_file_streams_as_it_reads_whole(config, fixture_file, monkeypatch):
    """Rows shorter than the header (most of this file's) no longer make Arrow give up: the
    streamed read pads them, in place, as the whole read does."""
    monkeypatch.setattr(table_parser, "BLOCK_BYTES", 1 << 12)
    cfg = config({"format": "csv"}, keys=["Title"])
    streamed, whole = _both(fixture_file("malformed/csvwrangling_phonography_lib_ragged.csv"), cfg)
    assert streamed is not None and whole.num_rows == 109
    assert streamed.to_pylist() == whole.to_pylist()


def test_blank_lines_and_trailing_separators_stream_like_pandas(config, tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_bytes(b'a;b;;\n1;x;;\n\n2;"y\nz";;\n ; ;;\nNA;w;;\n')
    cfg = config({"format": "csv", "delimiter": ";"}, keys=["b"])
    streamed, whole = _both(path, cfg)
    assert streamed is not None
    assert streamed.to_pylist() == whole.to_pylist()
    assert [r["_row"] for r in streamed.to_pylist()] == [2, 4, 6]


def test_a_csv_left_without_rows_streams_as_an_empty_table(config, tmp_path):
    path = tmp_path / "footer_only.csv"
    path.write_bytes(b"a,b,\n\n,,\nFuente: x,,\n")  # a blank line, a blank row, a footer
    cfg = config(
        {"format": "csv"}, keys=["a"], parse={"plugin": "table", "options": {"skip_footer": 1}}
    )
    ctx = ParseContext(cfg, str(path))
    batches = list(parse_batches(path, ctx))
    assert len(batches) == 1 and batches[0].num_rows == 0
    assert batches[0].column_names == [
        "_row",
        "a",
        "b",
        "_rejected",
    ]  # the unnamed empty column is dropped


@pytest.mark.parametrize("footer", [3, 4])
def test_a_footer_with_blank_rows_is_counted_as_the_file_has_them(config, tmp_path, footer):
    """skip_footer counts the file's last rows, blank ones included (a row of empty fields, an
    empty line): the data row above them is never taken for footer, in either reader."""
    path = tmp_path / "notes.csv"
    path.write_bytes(b"id;v\n1;10\n2;20\n3;30\n;\nNote A;\nNote B;\n" + b"\n" * (footer - 3))
    options = {"skip_footer": footer}
    cfg = config(
        {"format": "csv", "delimiter": ";"},
        keys=["id"],
        parse={"plugin": "table", "options": options},
    )
    streamed, whole = _both(path, cfg)
    assert streamed is not None
    for table in (streamed, whole):
        assert [(r["id"], r["v"]) for r in table.to_pylist()] == [
            ("1", "10"),
            ("2", "20"),
            ("3", "30"),
        ]


def test_a_header_not_in_the_source_encoding_is_a_clear_error(config, tmp_path):
    from ingest_assets.parsers import ParseError

    path = tmp_path / "latin.csv"
    path.write_bytes(b"id,N\xfamero\n1,2\n")
    cfg = config({"format": "csv"}, keys=["id"], dataset_id="LATIN_HEADER")
    with pytest.raises(ParseError) as info:
        list(parse_batches(path, ParseContext(cfg, str(path))))
    message = str(info.value)
    assert message.startswith(
        f"dataset LATIN_HEADER: {path}: cannot decode as source.encoding 'utf-8'"
    )
    assert "(line 1)" in message and "set source.encoding" in message
    latin = config({"format": "csv", "encoding": "latin-1"}, keys=["id"])
    (table,) = parse_batches(path, ParseContext(latin, str(path)))
    assert table.column_names == ["_row", "id", "Número", "_rejected"]
