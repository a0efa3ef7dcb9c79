"""Real files (tests/fixtures/csv, see _provenance.tsv) read by decimal mark and inferred date
format (issue 17): expectations come from Python's csv module and `decimal`, not our reader."""

import csv
import datetime as dt
import decimal
import re

import pytest

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_assets.rows.dates import AmbiguousFormat
from tests.conftest import FIXTURES

IPC = FIXTURES / "csv" / "indec_serie_ipc_divisiones_latin1_decimal_comma.csv"
ITCRM = FIXTURES / "csv" / "bcra_ITCRMSerie2_semicolon_trailing_cols.csv"


def normalized(runtime, config):
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    return stages.run_normalize(runtime, config, "all")


def test_indec_cpi_decimal_commas_and_yyyymm_periods(runtime):
    """INDEC's CPI: `;`, decimal commas (`101,313`), `NA` for missing, periods `YYYYMM`."""
    config = parse_config(
        {
            "dataset_id": "IPC",
            "source": {
                "kind": "file",
                "path": str(IPC),
                "format": "csv",
                "delimiter": ";",
                "decimal": ",",
                "encoding": "latin-1",
            },
            "normalize": {
                "primary_keys": ["Codigo", "Periodo", "Region"],
                "time_column": "Periodo",
                "schema": {
                    "Periodo": "date",
                    "Indice_IPC": "float64",
                    "v_m_IPC": "float64",
                    "v_i_a_IPC": "decimal(12,4)",
                },
            },
            "checks": {"max_rejected_ratio": 0.0},
        },
        "ipc.yaml",
    )
    with IPC.open(encoding="latin-1", newline="") as handle:
        source = list(csv.DictReader(handle, delimiter=";"))
    numbers = [r[c] for r in source for c in ("Indice_IPC", "v_m_IPC", "v_i_a_IPC")]
    assert not any("." in n for n in numbers)  # (no thousands: every value reads)

    def number(text):
        return None if text == "NA" else decimal.Decimal(text.replace(",", "."))

    outcome = normalized(runtime, config)
    assert outcome.counts.rejected == 0 and outcome.counts.normalized == len(source) == 13482
    assert outcome.formats == {"Periodo": "iso8601"}
    rows = {(r["Codigo"], r["Periodo"], r["Region"]): r for r in outcome.table.to_pylist()}
    for row in source:
        period = dt.date(int(row["Periodo"][:4]), int(row["Periodo"][4:]), 1)
        got = rows[(row["Codigo"], period, row["Region"])]
        for column in ("Indice_IPC", "v_m_IPC"):
            expected = number(row[column])
            assert got[column] == (None if expected is None else float(expected)), row
        expected = number(row["v_i_a_IPC"])
        if expected is not None:
            expected = expected.quantize(decimal.Decimal("0.0001"), decimal.ROUND_HALF_EVEN)
        assert got["v_i_a_IPC"] == expected, row


def test_bcra_itcrm_unpadded_day_first_dates_and_notes_below(runtime):
    """BCRA's ITCRM export: `d/m/yyyy` unpadded (`2/1/1997`), then a blank line and three
    notes in the date column."""
    config = parse_config(
        {
            "dataset_id": "ITCRM",
            "source": {
                "kind": "file",
                "path": str(ITCRM),
                "format": "csv",
                "delimiter": ";",
                "encoding": "latin-1",
            },
            "normalize": {
                "primary_keys": ["Period"],
                "time_column": "Period",
                "schema": {"Period": "date", "Value": "float64"},
            },
            "checks": {"max_rejected_ratio": 0.01},
        },
        "itcrm.yaml",
    )
    with ITCRM.open(encoding="latin-1", newline="") as handle:
        lines = list(csv.reader(handle, delimiter=";"))[1:]
    dated = [line for line in lines if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", line[0])]
    notes = [line[0] for line in lines if line[0] and line not in dated]
    expected = {}
    for line in dated:
        day, month, year = map(int, line[0].split("/"))
        expected[dt.date(year, month, day)] = float(line[1])
    outcome = normalized(runtime, config)
    assert outcome.formats == {"Period": "%d/%m/%Y"}
    got = {r["Period"]: r["Value"] for r in outcome.table.to_pylist()}
    assert got == expected and len(got) == 9908
    rejected = outcome.rejected.to_pylist()
    assert [r["Period"] for r in rejected] == notes and len(notes) == 3
    assert all("in the format '%d/%m/%Y'" in r["reason"] for r in rejected)
    assert next(r for r in outcome.checks if r.name == "rejected_ratio").passed


@pytest.mark.parametrize("decimal_mark", [".", ","])
def test_days_of_twelve_or_less_are_refused_or_read_day_first_by_the_decimal_mark(
    runtime, tmp_path, decimal_mark
):
    """The ITCRM file's rows of days 1 to 12 only: d/m and m/d read them alike."""
    with ITCRM.open(encoding="latin-1", newline="") as handle:
        lines = list(csv.reader(handle, delimiter=";"))[1:]
    early = [line[:2] for line in lines if re.fullmatch(r"([1-9]|1[0-2])/\d{1,2}/\d{4}", line[0])]
    path = tmp_path / "early.csv"
    rows = "".join(f"{day};{value.replace('.', decimal_mark)}\n" for day, value in early[:200])
    path.write_text("Period;Value\n" + rows)
    config = parse_config(
        {
            "dataset_id": "EARLY",
            "source": {
                "kind": "file",
                "path": str(path),
                "format": "csv",
                "delimiter": ";",
                "decimal": decimal_mark,
            },
            "normalize": {
                "primary_keys": ["Period"],
                "time_column": "Period",
                "schema": {"Value": "float64"},
            },
        },
        "early.yaml",
    )
    if decimal_mark == ".":
        with pytest.raises(AmbiguousFormat, match=r"set normalize\.formats\.Period"):
            normalized(runtime, config)
        return
    outcome = normalized(runtime, config)
    assert outcome.formats == {"Period": "%d/%m/%Y"} and outcome.counts.rejected == 0
    day, value = early[0]  # 1/1/1997
    first = outcome.table.to_pylist()[0]
    assert first["Value"] == float(value)
    assert first["Period"].date() == dt.date(1997, 1, 1)
