"""Workbooks through the `table` parser (issue 17, items 2, 7 and 8): an empty cell is null
whatever its column's type (never the text 'NaT'), undeclared columns are typed by their
cells (whole numbers int64, booleans bool, dates date, dates and times timestamps, anything
mixed text), and
`format: ods` reads OpenDocument with sheet selection and header_row. Expectations: the
cells as openpyxl reads them (for the .ods: the .xlsx it was written from)."""

import datetime as dt

import openpyxl
import pyarrow as pa
import pytest
from python_calamine import CalamineWorkbook

from tests.parsers.table_reads import PARSERS

# openpyxl warns of extensions it drops, which it does not read for values anyway
pytestmark = pytest.mark.filterwarnings("ignore:Unknown extension is not supported")

TEST_XLSX = PARSERS / "test.xlsx"
DEATHS = {kind: PARSERS / f"deaths.{kind}" for kind in ("xlsx", "ods", "xls")}
DEATHS_COLUMNS = ["Name", "Profession", "Age", "Has kids", "Date of birth", "Date of death"]


def _openpyxl_rows(path, sheet=None, first=1, last=None) -> list[tuple]:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    cells = book[sheet] if sheet else book.worksheets[0]
    return list(cells.iter_rows(min_row=first, max_row=last, values_only=True))


def test_csvkit_test_xlsx_columns_are_typed_by_their_cells(parse):
    table = parse(TEST_XLSX, {"format": "xlsx"}, keys=["text"])
    header, *rows = _openpyxl_rows(TEST_XLSX)
    assert table.column_names == ["_row", *header[:7], "Unnamed: 7"]
    types = {f.name: f.type for f in table.schema}
    assert types["integer"] == pa.int64()  # 40, not 40.0
    assert types["boolean"] == pa.bool_()  # True, not 1.0
    assert types["float"] == pa.float64()
    assert types["date"] == pa.date32()  # every cell a date (at midnight)
    assert types["datetime"] == pa.timestamp("us")  # dates and times
    assert types["empty_column"] == types["text"] == types["Unnamed: 7"] == pa.string()
    got = table.to_pylist()
    assert [r["_row"] for r in got] == [2, 3, 4, 5, 6]
    for name_index, name in enumerate([*header[:7], "Unnamed: 7"]):
        cells = [row[name_index] for row in rows]
        if name == "date":  # (openpyxl reads a date cell as a datetime at midnight)
            cells = [None if c is None else c.date() for c in cells]
        assert [r[name] for r in got] == cells, name
    assert got[3]["date"] is None and got[3]["datetime"] is None  # empty is null, not 'NaT'
    assert got[0]["integer"] == 40 and isinstance(got[0]["integer"], int)


@pytest.mark.parametrize(
    ("sheet", "expected"),
    [
        ("logical_coercion", [None, "0", "1", "2016-01-01T00:00:00", "True", "False",
                              "cabbage", "true", "F", "False"]),
        ("numeric_coercion", [None, "True", "False", "2014-12-23T00:00:00", "123456",
                              "123456", "cabbage"]),
        ("date_coercion", [None, "2016-05-23T00:00:00", "2016-04-28T11:30:00", "True",
                           "cabbage", "4.3", "39448"]),
        ("text_coercion", [None, "cabbage", "True", "1.3", "2016-09-24T00:00:00", "36436153"]),
    ],
)  # fmt: skip
def test_readxl_type_me_mixed_columns_stay_text(parse, sheet, expected):
    """readxl's type-me.xlsx: each sheet's first column mixes kinds: text, each cell as its
    value reads (a whole number without `.0`, a date in ISO 8601); the empty cell null."""
    table = parse(PARSERS / "type-me.xlsx", {"format": "xlsx", "sheet": sheet}, keys=["x"])
    first = table.column_names[1]
    assert table.schema.field(first).type == pa.string()
    assert table.column(first).to_pylist() == expected
    described = [row[1] for row in _openpyxl_rows(PARSERS / "type-me.xlsx", sheet, first=2)]
    assert table.column(table.column_names[2]).to_pylist() == described


@pytest.mark.parametrize("kind", ["ods", "xls"])
def test_deaths_ods_and_xls_hold_the_cells_of_deaths_xlsx(kind):
    """(readxl's deaths.xls, saved by Excel 2007 or later, holds a zip inside: its theme.)"""
    other, xlsx = (CalamineWorkbook.from_path(str(DEATHS[k])) for k in (kind, "xlsx"))
    assert other.sheet_names == xlsx.sheet_names == ["arts", "other"]
    for name in xlsx.sheet_names:
        cells = other.get_sheet_by_name(name).to_python(skip_empty_area=False)
        assert cells == xlsx.get_sheet_by_name(name).to_python(skip_empty_area=False)


@pytest.mark.parametrize("kind", ["xlsx", "ods", "xls"])
@pytest.mark.parametrize("sheet", ["other", 1])
def test_deaths_header_row_sheet_and_footer(parse, kind, sheet):
    """Notes above the header (row 5) and below the data (4 rows): header_row, the sheet by
    name or index, skip_footer. Age int64, Has kids bool, dates date."""
    table = parse(
        DEATHS[kind],
        {"format": kind, "sheet": sheet, "header_row": 5},
        keys=["Name"],
        parse={"plugin": "table", "options": {"skip_footer": 4}},
    )
    header, *rows = _openpyxl_rows(DEATHS["xlsx"], "other", first=5, last=15)
    assert list(header) == DEATHS_COLUMNS
    assert table.column_names == ["_row", *DEATHS_COLUMNS]
    dated = [(*row[:4], row[4].date(), row[5].date()) for row in rows]  # (openpyxl: datetimes)
    assert table.to_pylist() == [
        {"_row": number, **dict(zip(DEATHS_COLUMNS, row, strict=True))}
        for number, row in enumerate(dated, start=6)
    ]
    types = [table.schema.field(n).type for n in DEATHS_COLUMNS]
    assert types == [pa.string(), pa.string(), pa.int64(), pa.bool_()] + [pa.date32()] * 2
    assert table.schema.metadata[b"ingest.cells"].startswith(b'{"sheet": "other"')


def test_tablib_ods_files(parse):
    """tablib's book.ods (LibreOffice): its second sheet by name and by index (a header row
    only); ragged.ods: a short row, its empty cells null."""
    for sheet in ("Sheet2", 1):
        table = parse(PARSERS / "book.ods", {"format": "ods", "sheet": sheet}, keys=["This"])
        assert table.column_names == ["_row", "This", "is", "a", "second", "sheet"]
        assert table.num_rows == 0
    table = parse(PARSERS / "ragged.ods", {"format": "ods"}, keys=["a"])
    assert table.to_pylist() == [{"_row": 2, "a": 1, "b": None, "c": True, "d": None}]


def test_an_ods_sheet_not_in_the_workbook_is_named(config, run):
    from ingest_assets.parsers import ParseError

    cfg = config({"format": "ods", "sheet": "Sheet3"}, keys=["x"], dataset_id="BOOK")
    with pytest.raises(ParseError) as info:
        run((PARSERS / "book.ods").read_bytes(), cfg, "book.ods")
    assert str(info.value) == (
        "dataset BOOK: book.ods: source.sheet 'Sheet3' not found; the workbook's sheets are "
        "'Sheet1', 'Sheet2'"
    )


WORKBOOK_CONFIG = """
dataset_id: NEWSPAPERS
source: {{kind: file, path: {path}, format: xlsx}}
normalize:
  primary_keys: [text]
  schema: {{integer: float64, float: float64, boolean: bool, text: string}}
"""


def test_typed_columns_still_convert_to_the_declared_types(runtime, write_dataset, tmp_path):
    """A declared float64 column of whole numbers (int64 from the parser) converts; so does
    a bool column; undeclared columns publish with the parser's types."""
    from ingest_assets import stages

    config = write_dataset(WORKBOOK_CONFIG.format(path=TEST_XLSX))
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    outcome = stages.run_normalize(runtime, config, "all")
    assert outcome.counts.rejected == 0 and outcome.counts.normalized == 5
    stages.run_publish(runtime, config, "all")
    from ingest_assets.stages.export import published_table

    table = published_table(runtime.store, config).sort_by("text")
    assert table.schema.field("integer").type == pa.float64()
    assert table.column("integer").to_pylist() == [40.0, 63.0, 164.0, None, None]
    assert table.column("boolean").to_pylist() == [True, True, False, None, None]
    assert table.column("date").to_pylist()[0] == dt.date(1971, 1, 1)
    # dates and times are read in normalize.timezone (UTC here) and published in UTC
    assert table.schema.field("datetime").type == pa.timestamp("us", tz="UTC")
    assert table.column("datetime").to_pylist()[0] == dt.datetime(1971, 1, 1, 4, 14, tzinfo=dt.UTC)
