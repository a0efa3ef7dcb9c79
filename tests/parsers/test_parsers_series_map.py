"""`series_map` / `bcra_infomondia` on the real BCRA "Informe Monetario Diario" workbook.

Sheet "DATOS | DATA": English header on row 8, Spanish header on row 20, series codes on row
26, data from row 27. Side-by-side blocks, each with its own `Date` column (D, I, M, Q, ...).
"""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from python_calamine import CalamineWorkbook

from ingest_assets.contract import parse_config
from ingest_assets.parsers import ParseError

REPO_ROOT = Path(__file__).resolve().parents[2]

SHEET = "DATOS | DATA"
INFOMONDIA = "xlsx/bcra_infomondia.xlsx"
OUTPUT_COLUMNS = ["_row", "_cell", "internal_series_code", "obs_time", "value", "unit", "frequency"]


def _series_config(config, series: list[dict], *, plugin="bcra_infomondia", dataset_id="BCRA_IMD"):
    return config(
        {"format": "xlsx", "sheet": SHEET, "header_row": 8},
        dataset_id=dataset_id,
        parse={"plugin": plugin},
        parse_config={"file_type": "infomondia", "series_map": series},
    )


def _by_series(table: pa.Table) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        out.setdefault(row["internal_series_code"], []).append(row)
    return out


@pytest.fixture(scope="module")
def cells(fixture_file) -> list[list[object]]:
    """The sheet read independently, to compare the parser's output against."""
    book = CalamineWorkbook.from_path(str(fixture_file(INFOMONDIA)))
    return book.get_sheet_by_name(SHEET).to_python(skip_empty_area=False)


def _cell(cells, row: int, letters: str) -> object:
    index = 0
    for char in letters:
        index = index * 26 + (ord(char) - ord("A") + 1)
    return cells[row - 1][index - 1]


@pytest.fixture(scope="module")
def by_letters(config, run, infomondia_bytes) -> dict[str, list[dict]]:
    cfg = _series_config(
        config,
        [
            {"internal_series_code": "BASE", "date_col": "D", "value_col": "G", "unit": "ARS bn"},
            {
                "internal_series_code": "TC_A3500",
                "date_col": "M",
                "value_col": "O",
                "unit": "ARS/USD",
                "frequency": "D",
            },
            {"internal_series_code": "BAIBAR", "date_col": "I", "value_col": "J"},
        ],
    )
    table = run(infomondia_bytes, cfg, "sample_data/bcra/infomondia.xlsx")
    assert table.column_names == OUTPUT_COLUMNS
    for name in ("internal_series_code", "obs_time", "value", "unit", "frequency"):
        assert table.schema.field(name).type == pa.string(), name
    return _by_series(table)


@pytest.fixture(scope="module")
def by_names(config, run, infomondia_bytes) -> dict[str, list[dict]]:
    cfg = _series_config(
        config,
        [
            {
                "internal_series_code": "BASE",
                "date_col": "Date",
                "value_col": "Total Monetary Base",
            },
            {
                "internal_series_code": "TC_A3500",
                "date_col": "Date",
                "value_col": 'Exchange Rate (Com. "A" 3500) - $/USD',
            },
            {
                "internal_series_code": "BAIBAR",
                "date_col": "Date",
                "value_col": "Call Between Private Banks, up to 15 days (BAIBAR)",
            },
            {
                "internal_series_code": "BADLAR",
                "date_col": "Date",
                "value_col": "private banks   badlar",  # whitespace and case do not matter
            },
        ],
        plugin="series_map",
    )
    return _by_series(run(infomondia_bytes, cfg, "sample_data/bcra/infomondia.xlsx"))


def test_letters_known_first_and_last_observations(by_letters):
    base, fx = by_letters["BASE"], by_letters["TC_A3500"]
    assert base[0] == {
        "_row": 27,
        "_cell": "'DATOS | DATA'!D27,G27",
        "internal_series_code": "BASE",
        "obs_time": "2017-01-01",
        "value": "821.664",
        "unit": "ARS bn",
        "frequency": None,
    }
    assert fx[0]["obs_time"] == "2017-01-01"
    assert fx[0]["value"] == "15.8502"
    assert fx[-1] == {
        "_row": 3172,
        "_cell": "'DATOS | DATA'!M3172,O3172",
        "internal_series_code": "TC_A3500",
        "obs_time": "2025-08-12",
        "value": "1321.5",
        "unit": "ARS/USD",
        "frequency": "D",
    }
    assert base[-1]["obs_time"] == "2025-08-12"
    assert base[-1]["value"] == "42659.621"
    assert len(base) == len(fx) == 3146  # rows 27..3172, one per day


def test_letters_whole_series_matches_the_sheet(by_letters, cells):
    expected = [
        (number, _cell(cells, number, "D").isoformat(), repr(_cell(cells, number, "G")))
        for number in range(27, len(cells) + 1)
    ]
    got = [(r["_row"], r["obs_time"], r["value"]) for r in by_letters["BASE"]]
    assert got == expected
    days = [dt.date.fromisoformat(d) for _, d, _ in got]
    assert days[-1] - days[0] == dt.timedelta(days=len(days) - 1)  # contiguous daily range


def test_block_starting_later_has_its_own_date_range(by_letters, cells):
    baibar = by_letters["BAIBAR"]
    # columns I/J are empty until row 329
    assert all(_cell(cells, n, "J") == "" for n in range(27, 329))
    assert baibar[0]["_row"] == 329
    assert baibar[0]["obs_time"] == "2017-10-30"
    assert baibar[0]["value"] == "26.35"
    assert baibar[-1]["_row"] == 2218
    assert baibar[-1]["obs_time"] == "2025-08-13"
    assert baibar[-1]["value"] == "75.84"
    expected = [
        (n, _cell(cells, n, "I").isoformat(), repr(_cell(cells, n, "J")))
        for n in range(329, 2219)
        if _cell(cells, n, "J") != ""
    ]
    assert [(r["_row"], r["obs_time"], r["value"]) for r in baibar] == expected
    assert len(baibar) == 1890


def test_header_names_resolve_to_the_blocks_own_date_column(by_names, by_letters):
    # "Date" is in D, I, M, Q, ...; each series takes the Date left of its value column
    for code in ("BASE", "TC_A3500", "BAIBAR"):
        assert [(r["_row"], r["obs_time"], r["value"]) for r in by_names[code]] == [
            (r["_row"], r["obs_time"], r["value"]) for r in by_letters[code]
        ], code
    tc = by_names["TC_A3500"][-1]
    assert (tc["obs_time"], tc["value"]) == ("2025-08-12", "1321.5")  # date from M, value from O


def test_header_name_date_differs_from_the_first_date_column(by_names, cells):
    """Row 1000: column D says 2019-09-01 but the BAIBAR block's own Date (I) says 2020-08-10."""
    assert _cell(cells, 1000, "D") == dt.date(2019, 9, 1)
    assert _cell(cells, 1000, "I") == dt.date(2020, 8, 10)
    row = next(r for r in by_names["BAIBAR"] if r["_row"] == 1000)
    assert row["obs_time"] == "2020-08-10"
    assert row["value"] == "14.86"
    # BADLAR (value column Y) pairs with the Date in X, not D/I/M/Q/U
    badlar = {r["_row"]: r for r in by_names["BADLAR"]}
    assert badlar[1000]["obs_time"] == "2021-01-06"
    assert badlar[1000]["value"] == "33.9375"
    assert badlar[2121]["obs_time"] == "2025-08-13"
    assert badlar[2121]["value"] == "44.375"
    assert len(badlar) == 2095


def test_spanish_header_row_per_entry(config, run, infomondia_bytes, by_letters):
    cfg = _series_config(
        config,
        [
            {
                "internal_series_code": "BASE",
                "header_row": 20,
                "date_col": "Fecha",
                "value_col": "Base Monetaria Total",
            }
        ],
    )
    rows = run(infomondia_bytes, cfg, "infomondia.xlsx").to_pylist()
    assert [(r["_row"], r["obs_time"], r["value"]) for r in rows] == [
        (r["_row"], r["obs_time"], r["value"]) for r in by_letters["BASE"]
    ]


def test_sample_config_parses_its_sample_data(run):
    """dataset_configs/bcra_infomondia.yaml, as shipped, on the sample_data file it names."""
    config_file = REPO_ROOT / "dataset_configs" / "bcra_infomondia.yaml"
    cfg = parse_config(yaml.safe_load(config_file.read_text(encoding="utf-8")), str(config_file))
    source = REPO_ROOT / cfg.source.path
    table = run(source.read_bytes(), cfg, cfg.source.path)
    series = _by_series(table)
    assert {code: len(rows) for code, rows in series.items()} == {
        "BCRA_BASE_MONETARIA": 3146,
        "BCRA_BAIBAR": 1890,
        "BCRA_RESERVAS": 3146,
        "BCRA_TC_A3500": 3146,
        "BCRA_BADLAR_PRIVADOS": 2095,
    }
    first = {code: (rows[0]["obs_time"], rows[0]["value"]) for code, rows in series.items()}
    assert first["BCRA_BASE_MONETARIA"] == ("2017-01-01", "821.664")
    assert first["BCRA_BAIBAR"] == ("2017-10-30", "26.35")
    assert first["BCRA_RESERVAS"] == ("2017-01-01", "39308.31554175972")
    tc = series["BCRA_TC_A3500"][-1]
    assert (tc["_row"], tc["obs_time"], tc["value"], tc["unit"]) == (
        3172,
        "2025-08-12",
        "1321.5",
        "ARS/USD",
    )
    assert {rows[0]["unit"] for rows in series.values()} == {"ARS bn", "% APR", "USD mn", "ARS/USD"}


def test_unknown_header_name_is_a_clear_error(config, run, infomondia_bytes):
    cfg = _series_config(
        config, [{"internal_series_code": "NOPE", "date_col": "Date", "value_col": "Nonexistent"}]
    )
    with pytest.raises(ParseError) as info:
        run(infomondia_bytes, cfg, "infomondia.xlsx")
    message = str(info.value)
    assert message.startswith("dataset BCRA_IMD: infomondia.xlsx: ")
    assert "parse_config.series_map[0] (NOPE).value_col" in message
    assert "no column named 'Nonexistent' in the header row" in message


def test_ambiguous_value_header_asks_for_a_letter(config, run, infomondia_bytes):
    # "Total" heads both AJ and AN
    cfg = _series_config(
        config, [{"internal_series_code": "TOT", "date_col": "Date", "value_col": "Total"}]
    )
    with pytest.raises(ParseError) as info:
        run(infomondia_bytes, cfg, "infomondia.xlsx")
    message = str(info.value)
    assert "dataset BCRA_IMD" in message
    assert "'Total' matches columns AJ, AN; use a column letter" in message


def test_date_header_with_no_block_to_the_left_is_ambiguous(config, run, infomondia_bytes):
    cfg = _series_config(
        config, [{"internal_series_code": "AUX", "date_col": "Date", "value_col": "C"}]
    )
    with pytest.raises(ParseError) as info:
        run(infomondia_bytes, cfg, "infomondia.xlsx")
    message = str(info.value)
    assert "parse_config.series_map[0] (AUX).date_col" in message
    assert "'Date' matches columns D, I, M, Q, U, X, AD, AH, AM, AR, AV, AY" in message


def test_unknown_sheet_lists_the_real_ones(config, run, infomondia_bytes):
    cfg = _series_config(
        config,
        [{"internal_series_code": "X", "sheet": "DATA", "date_col": "D", "value_col": "G"}],
    )
    with pytest.raises(ParseError) as info:
        run(infomondia_bytes, cfg, "infomondia.xlsx")
    message = str(info.value)
    assert message.startswith("dataset BCRA_IMD: infomondia.xlsx: ")
    assert "parse_config.series_map[0] (X)" in message
    assert "no sheet 'DATA'" in message
    assert "'DATOS | DATA'" in message
    assert "'GRAFICOS | GRAPHS'" in message


def test_date_column_without_dates_is_a_clear_error(config, run, infomondia_bytes):
    # column E holds numbers, never a date
    cfg = _series_config(
        config, [{"internal_series_code": "BAD", "date_col": "E", "value_col": "G"}]
    )
    with pytest.raises(ParseError) as info:
        run(infomondia_bytes, cfg, "infomondia.xlsx")
    assert "no dates in column E below header row 8" in str(info.value)


def test_not_a_workbook_is_a_clear_error(config, run, fixture_file):
    path = fixture_file("rss/bbc_in_our_time_podcast.rss.xml")
    cfg = _series_config(config, [{"internal_series_code": "X", "date_col": "A", "value_col": "B"}])
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    assert str(info.value).startswith(f"dataset BCRA_IMD: {path}: cannot read workbook")


def _workbook(sheets: dict[str, list[list]]) -> bytes:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_years_and_declared_formats_are_dates(config, run):
    """An annual series keyed by its year (a number, or text) starts at its first year (a
    number of another series is a value, not a year); serial day numbers start a series when
    normalize.formats.obs_time says `excel`; a title above a block is still preamble."""
    data = _workbook(
        {
            "Y": [["Annual series"], ["year", "value"], [1993, 1.5], [1994, 2.5]],
            "T": [["year", "value"], ["2001", 7], ["2002", 8]],
            "X": [["day", "value"], ["a title", None], [45000, 1], [45001, 2]],
        }
    )
    entries = [
        {
            "internal_series_code": "Y",
            "sheet": "Y",
            "header_row": 2,
            "date_col": "year",
            "value_col": "value",
            "frequency": "A",
        },
        {
            "internal_series_code": "T",
            "sheet": "T",
            "header_row": 1,
            "date_col": "A",
            "value_col": "B",
        },
    ]
    source = {"format": "xlsx"}
    table = run(
        data, config(source, parse={"plugin": "series_map"}, parse_config={"series_map": entries})
    )
    rows = [(r["internal_series_code"], r["obs_time"], r["value"]) for r in table.to_pylist()]
    assert rows == [
        ("Y", "1993", "1.5"),
        ("Y", "1994", "2.5"),
        ("T", "2001", "7.0"),
        ("T", "2002", "8.0"),
    ]
    entries[0]["frequency"] = "M"  # years as numbers, in a monthly series: values, not dates
    with pytest.raises(ParseError, match=r"series_map\[0\] \(Y\): no dates in column A"):
        run(
            data,
            config(source, parse={"plugin": "series_map"}, parse_config={"series_map": entries}),
        )
    serial = [
        {
            "internal_series_code": "X",
            "sheet": "X",
            "header_row": 1,
            "date_col": "A",
            "value_col": "B",
        }
    ]
    with pytest.raises(ParseError, match="no dates in column A below header row 1"):
        run(
            data,
            config(source, parse={"plugin": "series_map"}, parse_config={"series_map": serial}),
        )
    excel = config(
        source,
        parse={"plugin": "series_map"},
        parse_config={"series_map": serial},
        normalize={"formats": {"obs_time": "excel"}},
    )
    assert run(data, excel)["obs_time"].to_pylist() == ["45000", "45001"]
