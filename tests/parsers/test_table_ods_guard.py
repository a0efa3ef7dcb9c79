"""An .ods is checked before calamine opens it, as an .xlsx is: calamine materializes what
content.xml repeats (`table:number-rows-repeated`, `table:number-columns-repeated`,
`<text:s text:c>`) for every sheet at once, so a file of a few hundred bytes could ask for
billions of cells. Hostile files are refused before reading; what LibreOffice writes (a tail
of repeated empty rows and cells) is read."""

import time
import zipfile

import pytest

from ingest_assets.parsers import ParseError
from tests.parsers.table_reads import PARSERS

NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)
VALUE = '<table:table-cell office:value-type="float" office:value="1"><text:p>1</text:p></table:table-cell>'
HEADER = (
    '<table:table-row><table:table-cell office:value-type="string"><text:p>a</text:p>'
    "</table:table-cell></table:table-row>"
)
SMALL_BUDGET = {"max_inflated_bytes": 1_000_000}  # 10,000 cells at 100 bytes a cell


def _ods(path, *sheets: str) -> None:
    tables = "".join(
        f'<table:table table:name="S{i}">{rows}</table:table>' for i, rows in enumerate(sheets)
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {NAMESPACES}>'
        f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body>"
        "</office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
        '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry '
        'manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.'
        'spreadsheet"/></manifest:manifest>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet"
        )
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", manifest)


def _refused(tmp_path, config, run, *sheets: str) -> str:
    path = tmp_path / "hostile.ods"
    _ods(path, *sheets)
    cfg = config({"format": "ods", **SMALL_BUDGET}, keys=["a"], dataset_id="HOSTILE")
    started = time.monotonic()
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, "hostile.ods")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert message.startswith("dataset HOSTILE: hostile.ods: member 'content.xml' asks for ")
    assert message.endswith("refused before reading, so memory stays bounded")
    return message


def test_a_value_repeated_across_a_billion_columns_is_refused(tmp_path, config, run):
    cell = VALUE.replace(
        "<table:table-cell ", '<table:table-cell table:number-columns-repeated="1000000000" '
    )
    message = _refused(tmp_path, config, run, HEADER + f"<table:table-row>{cell}</table:table-row>")
    asked = int(message.split(" asks for ")[1].split(" cells")[0].replace(",", ""))
    assert asked >= 1_000_000_000


def test_a_row_repeated_a_million_times_is_refused(tmp_path, config, run):
    row = f'<table:table-row table:number-rows-repeated="1000000">{VALUE}</table:table-row>'
    assert "cells or more" in _refused(tmp_path, config, run, HEADER + row)


def test_empty_rows_repeated_before_a_value_count_in_the_grid(tmp_path, config, run):
    """calamine pushes the empty rows between two values (python-calamine pads from A1)."""
    gap = (
        '<table:table-row table:number-rows-repeated="20000"><table:table-cell/></table:table-row>'
    )
    row = f"<table:table-row>{VALUE}</table:table-row>"
    assert "20,002 cells or more" in _refused(tmp_path, config, run, HEADER + gap + row)


def test_spaces_asked_by_text_s_are_counted(tmp_path, config, run):
    cell = (
        '<table:table-cell office:value-type="string"><text:p>x<text:s text:c="2000000000"/>'
        "</text:p></table:table-cell>"
    )
    message = _refused(tmp_path, config, run, HEADER + f"<table:table-row>{cell}</table:table-row>")
    assert "2,000,000,000 spaces or more" in message


def test_the_sheets_are_counted_together(tmp_path, config, run):
    """calamine reads every sheet when it opens the file: 3 sheets of 4,000 cells each."""
    rows = f'<table:table-row table:number-rows-repeated="400">{VALUE * 10}</table:table-row>'
    assert "cells or more" in _refused(tmp_path, config, run, rows, rows, rows)


def test_a_libreoffice_tail_of_empty_rows_and_cells_is_read(tmp_path, config, run):
    tail = (
        '<table:table-row table:number-rows-repeated="1048570"><table:table-cell '
        'table:number-columns-repeated="16384"/></table:table-row>'
    )
    row = f'<table:table-row>{VALUE}<table:table-cell table:number-columns-repeated="16383"/></table:table-row>'
    path = tmp_path / "tail.ods"
    _ods(path, HEADER + row + tail)
    cfg = config({"format": "ods", **SMALL_BUDGET}, keys=["a"])
    assert run(path.read_bytes(), cfg).to_pylist() == [{"_row": 2, "a": 1}]


def test_real_ods_files_pass_the_check(config, run):
    for name in ("book.ods", "ragged.ods", "deaths.ods"):
        options = {"allow_duplicate_headers": True}  # (deaths.ods: notes above its header)
        cfg = config(
            {"format": "ods", **SMALL_BUDGET},
            keys=["x"],
            parse={"plugin": "table", "options": options},
        )
        run((PARSERS / name).read_bytes(), cfg)  # (no ParseError)
