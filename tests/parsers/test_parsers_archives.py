"""Compressed sources (`source.compression`, `source.member`) and the magic-byte check of
`source.format`, through `parse_batches` as the parsed stage calls it, on real files gzipped
and zipped here with the standard library. Before: a .gz or .zip source was read as CSV
bytes (an encoding error), an XLSX declared as CSV failed "cannot decode as utf-8"."""

import csv
import gzip
import io
import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_assets.parsers import ParseContext, ParseError
from ingest_assets.parsers.archive import unpacked
from tests.parsers import batches
from tests.parsers.conftest import make_config

BDE = "csv/bde_catalogo_tc_latin1.csv"
BDE_SOURCE = {"format": "csv", "encoding": "latin-1"}
XLSX = "xlsx/caba_PGB_K_04_09.xlsx"
XLS = "xlsx/bcra_com3500.xls"
REDDIT = "rss/reddit_atom_mediarss_25_entries.xml"
ODS_MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"


def read_file(path, source: dict, **contract):
    """`batches.read_file` with a primary key (the contract needs one; the parser does not)."""
    return batches.read_file(path, source, **{"keys": ["x"], **contract})


def bde_rows(fixture_file) -> list[list[str]]:
    """The CSV's data rows as the csv module reads them."""
    with fixture_file(BDE).open(encoding="latin-1", newline="") as file:
        return list(csv.reader(file))[1:]


def gzipped(path, target):
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


def zipped(target, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(target, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def ods(target):
    """A minimal OpenDocument spreadsheet: `mimetype` first and stored, then its parts."""
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("mimetype", ODS_MIMETYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", "<office:document-content/>")
        archive.writestr("META-INF/manifest.xml", "<manifest:manifest/>")
    return target


def test_a_gzipped_csv_reads_as_the_plain_file(tmp_path, fixture_file):
    plain, _ = read_file(fixture_file(BDE), BDE_SOURCE)
    table, notes = read_file(gzipped(fixture_file(BDE), tmp_path / "bde.csv.gz"), BDE_SOURCE)
    assert table.equals(plain) and notes == []
    rows = bde_rows(fixture_file)
    assert table.num_rows == len(rows) == 73
    assert table.column(1).to_pylist()[0] == rows[0][0] == "DTCCBCEUSDEUR.B"


def test_a_zip_holding_one_csv_reads_it(tmp_path, fixture_file):
    data = fixture_file(BDE).read_bytes()
    archive = zipped(
        tmp_path / "bde.zip",
        {"catalogo/": b"", "catalogo/bde.csv": data, "__MACOSX/catalogo/._bde.csv": b"\0\5\26\7"},
    )
    plain, _ = read_file(fixture_file(BDE), BDE_SOURCE)
    table, _ = read_file(archive, BDE_SOURCE)
    assert table.equals(plain)


def test_a_zip_holding_several_files_needs_source_member(tmp_path, fixture_file):
    data = fixture_file(BDE).read_bytes()
    archive = zipped(tmp_path / "two.zip", {"README.txt": b"read me", "data/bde.csv": data})
    with pytest.raises(ParseError) as info:
        read_file(archive, BDE_SOURCE)
    assert str(info.value).endswith(
        "the zip archive holds 2 files ('README.txt', 'data/bde.csv'): set source.member to "
        "the one to read"
    )
    table, _ = read_file(archive, {**BDE_SOURCE, "member": "data/bde.csv"})
    assert table.num_rows == 73
    with pytest.raises(ParseError, match="source.member 'bde.csv' is not in the zip, which holds"):
        read_file(archive, {**BDE_SOURCE, "member": "bde.csv"})


@pytest.mark.parametrize("wrap", ["gzip", "zip"])
def test_json_lines_and_feeds_compressed(tmp_path, fixture_file, wrap):
    records = [{"id": 1, "city": "Córdoba"}, {"id": 2, "city": "Asunción"}]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    feed = fixture_file(REDDIT).read_bytes()
    for name, data, source, expected in [
        ("cities.jsonl", lines, {"format": "jsonl"}, 2),
        ("homelab.xml", feed, {"format": "rss"}, 25),
    ]:
        target = tmp_path / f"{name}.{'gz' if wrap == 'gzip' else 'zip'}"
        if wrap == "gzip":
            target.write_bytes(gzip.compress(data))
        else:
            zipped(target, {name: data})
        table, _ = read_file(target, source, keys=["id"])
        assert table.num_rows == expected, name


def test_a_workbook_inside_a_zip_is_read_by_member(tmp_path, fixture_file):
    data = fixture_file(XLSX).read_bytes()
    archive = zipped(tmp_path / "book.zip", {"caba/PGB.xlsx": data, "notes.txt": b"x"})
    # (its header is row 3: row 1 is a title over empty cells, refused as a header since
    # issue 17 repeats the empty name)
    plain, _ = read_file(fixture_file(XLSX), {"format": "xlsx", "header_row": 3})
    table, _ = read_file(archive, {"format": "xlsx", "member": "caba/PGB.xlsx", "header_row": 3})
    assert table.equals(plain)


# --- declared compression the bytes do not bear out -----------------------------------------


def test_compression_none_reads_the_bytes_as_they_are_and_names_gzip(tmp_path, fixture_file):
    target = gzipped(fixture_file(BDE), tmp_path / "bde.csv.gz")
    with pytest.raises(ParseError) as info:
        read_file(target, {**BDE_SOURCE, "compression": "none"})
    assert str(info.value).endswith(
        "source.format is csv but the file is gzip-compressed, and source.compression is none: "
        "set source.compression: auto"
    )


def test_compression_gzip_on_a_plain_file_is_refused(fixture_file):
    with pytest.raises(ParseError) as info:
        read_file(fixture_file(BDE), {**BDE_SOURCE, "compression": "gzip"})
    assert (
        "source.compression is gzip but the file is text (it starts '\"Nombre de la serie "
        in str(info.value)
    )


def test_compression_zip_on_a_workbook_says_it_is_the_workbook(fixture_file):
    with pytest.raises(ParseError) as info:
        read_file(fixture_file(XLSX), {"format": "xlsx", "compression": "zip"})
    assert (
        "source.compression is zip but the file is an XLSX workbook (zip with xl/workbook.xml), "
        "not an archive of data files: set source.format: xlsx and source.compression: auto"
    ) in str(info.value)


def test_a_damaged_gzip_is_refused(tmp_path, fixture_file):
    target = tmp_path / "cut.csv.gz"
    target.write_bytes(gzip.compress(fixture_file(BDE).read_bytes())[:-100])
    with pytest.raises(ParseError, match="the gzip file is damaged or cut short"):
        read_file(target, BDE_SOURCE)


# --- magic bytes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        (
            XLSX,
            "csv",
            "source.format is csv but the file is an XLSX workbook (zip with xl/workbook.xml): "
            "set source.format: xlsx",
        ),
        (
            XLS,
            "json",
            "source.format is json but the file is an XLS workbook (OLE2 file, D0 CF 11 E0): "
            "set source.format: xls",
        ),
        (
            XLSX,
            "rss",
            "source.format is rss but the file is an XLSX workbook (zip with xl/workbook.xml): "
            "set source.format: xlsx",
        ),
        (
            BDE,
            "xlsx",
            "source.format is xlsx but the file is text (it starts '\"Nombre de la serie '); "
            "set source.format: csv, json, jsonl or rss",
        ),
        (
            REDDIT,
            "xls",
            "source.format is xls but the file is text (it starts '<?xml version=\"1.0\" ')",
        ),
    ],
)
def test_a_file_that_is_not_its_declared_format_is_named(fixture_file, name, declared, expected):
    path = fixture_file(name)
    with pytest.raises(ParseError) as info:
        read_file(path, {"format": declared}, keys=["x"])
    assert str(info.value).startswith(f"dataset PARSER_TEST_DS: {path}: ")
    assert expected in str(info.value)


def test_an_ods_is_named_as_ods_and_passes_as_ods(tmp_path):
    path = ods(tmp_path / "sheet.ods")
    with pytest.raises(ParseError) as info:
        read_file(path, {"format": "csv"})
    assert str(info.value).endswith(
        f"source.format is csv but the file is an ODS workbook (zip with mimetype "
        f"{ODS_MIMETYPE}): set source.format: ods"
    )
    for declared in ("ods", "xlsx"):  # (the workbook reader reads a workbook by its content)
        ctx = ParseContext(make_config({"format": declared}, keys=["x"]), str(path))
        with unpacked(path, ctx) as readable:
            assert readable == path


def test_a_parquet_file_declared_as_csv_and_text_declared_as_parquet(tmp_path, fixture_file):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    with pytest.raises(
        ParseError, match="the file is a Parquet file \\(PAR1\\): set source.format: parquet"
    ):
        read_file(path, {"format": "csv"})
    table, _ = read_file(path, {"format": "parquet"})
    assert table.column("x").to_pylist() == [1, 2]
    with pytest.raises(ParseError, match="source.format is parquet but the file is text"):
        read_file(fixture_file(BDE), {"format": "parquet"})


def test_other_compressions_are_named(tmp_path, fixture_file):
    import bz2

    path = tmp_path / "bde.csv.bz2"
    path.write_bytes(bz2.compress(fixture_file(BDE).read_bytes()))
    with pytest.raises(ParseError) as info:
        read_file(path, BDE_SOURCE)
    assert str(info.value).endswith(
        "source.format is csv but the file is bzip2-compressed (only gzip and zip are read)"
    )


def test_the_raw_file_keeps_the_compressed_bytes(tmp_path, fixture_file, runtime):
    from ingest_assets import stages

    source = gzipped(fixture_file(BDE), tmp_path / "bde.csv.gz")
    config = batches.file_dataset(
        tmp_path, "BDE", {"path": source, **BDE_SOURCE}, ["Alias de la serie"]
    )
    info = stages.run_raw(runtime, config, "all")
    assert info.key.endswith(".csv.gz") and info.bytes == source.stat().st_size
    assert runtime.store.get(info.key) == source.read_bytes()
    staged, _ = stages.run_parse(runtime, config, "all")
    assert staged.num_rows == 73
    assert io.BytesIO(runtime.store.get(info.key)).read(2) == b"\x1f\x8b"


def take_bytes(data: bytes, ctx) -> pa.Table:
    """A plugin that reads the bytes it gets (a zip of its own kind, say) as one row."""
    return pa.table({"size": [len(data)], "head": [data[:2].hex()]})


def test_a_plugin_gets_a_zip_as_it_is_with_compression_none(tmp_path):
    archive = zipped(tmp_path / "own.zip", {"a.xml": b"<a/>", "b.xml": b"<b/>"})
    source = {"format": "json", "compression": "none"}
    plugin = {"plugin": f"{__name__}:take_bytes"}
    table, _ = read_file(archive, source, parse=plugin)
    assert table.to_pylist() == [{"_row": 1, "size": archive.stat().st_size, "head": "504b"}]


def test_source_member_on_a_gzip_file_is_refused(tmp_path, fixture_file):
    target = gzipped(fixture_file(BDE), tmp_path / "bde.csv.gz")
    with pytest.raises(ParseError, match="source.member is set but the file is gzip-compressed"):
        read_file(target, {**BDE_SOURCE, "member": "bde.csv"})


@pytest.mark.parametrize("text", [b"BZh,PAR1\n1,2\n", b"PAR1,x\n1,2\n", b"7z,zip\n1,2\n"])
def test_text_that_starts_like_a_magic_number_is_text(tmp_path, text):
    path = tmp_path / "looks.csv"
    path.write_bytes(text)
    table, _ = read_file(path, {"format": "csv"})
    assert table.num_rows == 1
