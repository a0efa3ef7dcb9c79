"""`table` parser on real workbooks: legacy .xls, .xlsx with odd sheet names and broken parts."""

import datetime as dt
import re
import zipfile

import openpyxl
import pyarrow as pa
import pytest
from python_calamine import CalamineWorkbook

from ingest_assets.parsers import ParseError

COM3500 = "xlsx/bcra_com3500.xls"
CABA = "xlsx/caba_PGB_K_04_09.xlsx"
DANGLING = "malformed/series_dangling_drawing_rel.xlsx"

FX = "Tipo de Cambio de Referencia - en Pesos - por Dólar"
MONTHLY = "Tipo de Cambio Nominal Promedio Mensual"
CABA_SHEET = "PGB_K_04_09 "  # trailing space is part of the real sheet name


@pytest.fixture(scope="module")
def com3500(parse, fixture_file) -> pa.Table:
    return parse(fixture_file(COM3500), {"format": "xls", "header_row": 4}, keys=["Fecha"])


def test_com3500_xls_header_row_4_and_real_dates(com3500):
    # data starts in column C: the empty columns A, B and E are dropped
    assert com3500.column_names == ["_row", "Fecha", FX, MONTHLY]
    assert com3500.num_rows == 4_759
    assert com3500.schema.field("Fecha").type == pa.date32()  # date cells: dates (issue 17)
    assert com3500.schema.field(FX).type == pa.float64()
    first, last = com3500.slice(0, 1).to_pylist()[0], com3500.slice(4_758, 1).to_pylist()[0]
    assert first["_row"] == 5  # the row right below the header row 4
    assert first["Fecha"] == dt.date(2002, 3, 4)
    assert first[FX] == 2.0083
    assert last["_row"] == 4_763
    assert last["Fecha"] == dt.date(2021, 7, 20)
    assert last[FX] == 96.335
    dates = com3500.column("Fecha").to_pylist()
    assert dates == sorted(dates)
    assert all(d.weekday() < 5 for d in dates)  # business days only


def test_com3500_matches_the_workbook_cells(com3500, fixture_file):
    book = CalamineWorkbook.from_path(str(fixture_file(COM3500)))
    assert book.sheet_names == ["TCR diario y TCNPM", "Serie de TCNPM"]
    cells = book.get_sheet_by_name("TCR diario y TCNPM").to_python(skip_empty_area=False)
    expected = [
        (number, row[2], row[3])
        for number, row in enumerate(cells, start=1)
        if number > 4 and isinstance(row[2], dt.date)
    ]
    got = [(r["_row"], r["Fecha"], r[FX]) for r in com3500.to_pylist()]
    assert got == expected


def test_com3500_interleaved_monthly_column_keeps_its_numbers(com3500):
    """Column F mixes a month date (row 21: 2002-03-01) and the month's average on the next row
    (row 22: 2.39885555555556). Neither cell may be turned into something else: the average
    must still read 2.39885555555556, not a 1970 timestamp."""
    rows = {r["_row"]: r for r in com3500.to_pylist()}
    month, average = rows[21][MONTHLY], rows[22][MONTHLY]
    assert str(month).startswith("2002-03-01")
    assert str(average) == "2.39885555555556", f"row 22 column F became {average!r}"
    filled = [r[MONTHLY] for r in rows.values() if r[MONTHLY] is not None]
    assert len(filled) == 464  # 232 month dates + 232 averages


def test_caba_sheet_name_with_trailing_space(parse, fixture_file):
    path = fixture_file(CABA)
    table = parse(
        path, {"format": "xlsx", "sheet": CABA_SHEET, "header_row": 3}, keys=["Categoría"]
    )
    years = [str(y) for y in range(2004, 2017)]
    assert table.column_names == ["_row", "Categoría", *years, "2017*", "2018*"]
    rows = table.to_pylist()
    assert rows[0]["_row"] == 4
    assert rows[0]["Categoría"] == "Producto Geográfico Bruto"
    assert rows[0]["2004"] == 91224.02184097405
    assert rows[0]["2017*"] == 150659.21678871155  # provisional year header kept as text
    assert rows[0]["2018*"] == 149557.85153581077
    assert rows[1]["Categoría"] == "Agricultura, ganadería, pesca y minas y canteras"
    assert rows[1]["2009"] == 1434.0262473486098
    # rows 4-18 hold the table, rows 19-21 the footnotes (kept as rows at parse stage)
    assert table.num_rows == 18
    assert rows[-3]["Categoría"] == "* Dato provisorio."
    assert rows[-1]["Categoría"].startswith("Fuente: Dirección General de Estadística")
    assert all(rows[-1][y] is None for y in years)


def test_caba_matches_openpyxl(parse, fixture_file):
    path = fixture_file(CABA)
    table = parse(
        path,
        {"format": "xlsx", "sheet": CABA_SHEET, "header_row": 3},
        keys=["Categoría"],
        parse={"plugin": "table", "options": {"skip_footer": 3}},
    )
    sheet = openpyxl.load_workbook(path, read_only=True, data_only=True)[CABA_SHEET]
    cells = list(sheet.iter_rows(min_row=3, max_row=18, max_col=16, values_only=True))
    header = [str(h) for h in cells[0]]
    expected = [
        {"_row": number, **dict(zip(header, row, strict=True))}
        for number, row in enumerate(cells[1:], start=4)
    ]
    assert table.num_rows == 15  # the total and 14 ClaNAE categories
    assert table.to_pylist() == expected


def test_caba_sheet_by_index(parse, fixture_file):
    table = parse(fixture_file(CABA), {"format": "xlsx", "sheet": 0, "header_row": 3}, keys=["x"])
    assert table.column("Categoría").to_pylist()[0] == "Producto Geográfico Bruto"


def test_caba_sheet_name_without_its_trailing_space_is_an_error(config, run, fixture_file):
    path = fixture_file(CABA)
    cfg = config(
        {"format": "xlsx", "sheet": "PGB_K_04_09", "header_row": 3},
        keys=["Categoría"],
        dataset_id="CABA_PGB",
    )
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert message.startswith(f"dataset CABA_PGB: {path}: ")
    assert "source.sheet 'PGB_K_04_09'" in message
    assert "not found" in message


def test_xlsx_with_dangling_drawing_relation_reads_26_rows(parse, fixture_file):
    path = fixture_file(DANGLING)
    table = parse(path, {"format": "xlsx"}, keys=["year"])
    assert table.column_names == ["_row", "year", "value"]
    assert table.schema.field("year").type == pa.int64()
    assert table.schema.field("value").type == pa.float64()
    assert table.num_rows == 26
    rows = table.to_pylist()
    assert rows[0] == {"_row": 2, "year": 1993, "value": 17371.258507813}
    assert rows[-1] == {"_row": 27, "year": 2018, "value": 20067.274759585}
    assert [r["year"] for r in rows] == list(range(1993, 2019))

    # every value equals the cell written in the sheet XML (the file's <dimension> lies: A1)
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    cells = dict(re.findall(r'<c r="(B\d+)" t="n"><v>([^<]+)</v>', xml))
    assert len(cells) == 26
    assert [r["value"] for r in rows] == [float(cells[f"B{n}"]) for n in range(2, 28)]


def test_not_a_workbook_is_a_clear_error(config, run, fixture_file):
    path = fixture_file("csv/bde_catalogo_tc_latin1.csv")
    cfg = config({"format": "xlsx"}, keys=["x"], dataset_id="NOT_A_BOOK")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert message.startswith(f"dataset NOT_A_BOOK: {path}: ")
    assert "workbook" in message or "source.sheet" in message
