"""What normalize does with the values a parser hands it (issue 17): a row the parser could
not read (`_rejected`) goes to quarantine with the parser's reason, before any conversion; an
empty value is null for every type, a blank one too when converted to another type; text
stays as written."""

import datetime as dt
import decimal

import pandas as pd
import pyarrow as pa
import pytest

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_assets.parsers.base import CELLS_META, REJECT_COLUMN, ROW_COLUMN
from ingest_assets.rows.normalize import normalize
from ingest_resources import object_store

DAY = dt.date(2024, 1, 31)
RAGGED = 'ragged_row: line 3 has 5 fields, the header 4: 31001,"Adams County, NE",31299,0,x'


def config_of(**normalize_keys):
    return parse_config(
        {
            "dataset_id": "VALUES",
            "source": {"kind": "file", "path": "x.csv", "format": "csv"},
            "normalize": {"primary_keys": ["id"], **normalize_keys},
            "checks": {"max_rejected_ratio": 1.0},
        },
        "values.yaml",
    )


def test_a_row_the_parser_rejected_goes_to_quarantine_with_its_reason():
    table = pa.table(
        {
            ROW_COLUMN: pa.array([2, 3, 4], pa.int64()),
            REJECT_COLUMN: [None, RAGGED, "no colon here"],
            "id": ["1", None, None],
            "n": ["5", None, None],
            "day": ["2024-01-02", None, None],
        }
    )
    config = config_of(schema={"n": "int64", "day": "date"})
    result = normalize(table, config, DAY)
    assert result.table["id"].to_pylist() == ["1"]
    assert REJECT_COLUMN not in result.table.column_names
    rejected = result.rejected.to_pylist()
    assert [(r[ROW_COLUMN], r["source_ref"], r["reason_code"], r["reason"]) for r in rejected] == [
        (3, "row 3", "ragged_row", RAGGED.split(": ", 1)[1]),
        (4, "row 4", "unreadable_row", "no colon here"),
    ]  # (not missing_key, nor a type error: its empty values give no other reason)
    assert REJECT_COLUMN not in result.rejected.column_names
    assert rejected[0]["id"] is None and rejected[0]["n"] is None


def test_a_rejected_row_in_a_sheet_is_named_by_its_sheet_row():
    table = pa.table(
        {ROW_COLUMN: pa.array([7], pa.int64()), REJECT_COLUMN: [RAGGED], "id": [None]}
    ).replace_schema_metadata({CELLS_META: b'{"sheet": "Data", "columns": {"id": "A"}}'})
    result = normalize(table, config_of(), DAY)
    assert result.rejected["source_ref"].to_pylist() == ["'Data'!row 7"]


def test_without_the_column_nothing_changes():
    table = pa.table({"id": ["1", "2"], "v": ["a", "b"]})
    result = normalize(table, config_of(), DAY)
    assert result.rejected.num_rows == 0 and result.table["v"].to_pylist() == ["a", "b"]


# --- a parser plugin that rejects rows, through the staged batches and the ratio check ------


def parse_with_rejects(data: bytes, ctx) -> pa.Table:
    """Each line `id,value`; a line of another shape is rejected as the table parser would."""
    rows, rejected, numbers = [], [], []
    for number, line in enumerate(data.decode().splitlines()[1:], start=2):
        fields = line.split(",")
        good = len(fields) == 2
        rows.append(fields if good else [None, None])
        rejected.append(
            None if good else f"ragged_row: line {number} has {len(fields)} fields, the header 2"
        )
        numbers.append(number)
    return pa.table(
        {
            ROW_COLUMN: pa.array(numbers, pa.int64()),
            REJECT_COLUMN: pa.array(rejected, pa.string()),
            "id": [r[0] for r in rows],
            "value": [r[1] for r in rows],
        }
    )


@pytest.mark.parametrize(("ratio", "blocks"), [(0.1, True), (0.5, False)])
def test_rejected_rows_count_in_batches_and_in_the_ratio(
    runtime, tmp_path, monkeypatch, ratio, blocks
):
    monkeypatch.setattr(object_store, "BATCH_ROWS", (2, 2))
    path = tmp_path / "rows.csv"
    path.write_text("id,value\n1,10\n2,20,x\n3,30\n4\n5,50\n")
    config = parse_config(
        {
            "dataset_id": "REJECTS",
            "source": {"kind": "file", "path": str(path), "format": "csv"},
            "parse": {"plugin": f"{__name__}:parse_with_rejects"},
            "normalize": {"primary_keys": ["id"], "schema": {"value": "int64"}},
            "checks": {"max_rejected_ratio": ratio},
        },
        "rejects.yaml",
    )
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    outcome = stages.run_normalize(runtime, config, "all")
    assert len(outcome.keys) > 1  # (normalized in several batches)
    assert outcome.counts.to_dict() == {
        "parsed": 5,
        "rejected": 2,
        "duplicates": 0,
        "normalized": 3,
    }
    assert [
        (r[ROW_COLUMN], r["reason_code"], r["reason"]) for r in outcome.rejected.to_pylist()
    ] == [
        (3, "ragged_row", "line 3 has 3 fields, the header 2"),
        (5, "ragged_row", "line 5 has 1 fields, the header 2"),
    ]
    ratio_check = next(r for r in outcome.checks if r.name == "rejected_ratio")
    assert ratio_check.passed is not blocks
    assert ratio_check.detail.startswith("2 of 5 rows rejected (40.00%)")


# --- empty is null, for every type; text as written ------------------------------------------

TYPES = {
    "i": "int64",
    "f": "float64",
    "d": "decimal(6,2)",
    "b": "bool",
    "day": "date",
    "t": "timestamp",
    "s": "string",
}


def test_an_empty_value_is_null_for_every_type_and_a_blank_one_when_converted(runtime, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(
        "id,i,f,d,b,day,t,s\n"
        "1,1,1.5,2.25,true,2024-01-02,2024-01-02T10:00:00Z,x\n"
        "2,,,,,,,\n"
        '3,  ,  ,  ,  ,  ,  ,"  "\n'
        '4, 7 , 2.5 , 1.10 , no , 2024-01-03 , 2024-01-03T10:00:00Z ,"  as written  "\n'
    )
    config = parse_config(
        {
            "dataset_id": "EMPTY",
            "source": {"kind": "file", "path": str(path), "format": "csv"},
            "normalize": {"primary_keys": ["id"], "schema": {"id": "int64", **TYPES}},
        },
        "empty.yaml",
    )
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    outcome = stages.run_normalize(runtime, config, "all")
    assert outcome.counts.rejected == 0, outcome.rejected.to_pylist()
    rows = {r["id"]: r for r in outcome.table.to_pylist()}
    assert all(rows[2][c] is None for c in TYPES)
    assert all(rows[3][c] is None for c in TYPES if c != "s")
    assert rows[3]["s"] == "  "  # (text is kept as written, blanks too)
    fourth = rows[4]
    assert (fourth["i"], fourth["f"], fourth["d"], fourth["b"]) == (
        7,
        2.5,
        decimal.Decimal("1.10"),
        False,
    )
    assert fourth["day"] == dt.date(2024, 1, 3)
    assert fourth["t"] == dt.datetime(2024, 1, 3, 10, tzinfo=dt.UTC)
    assert fourth["s"] == "  as written  "


def test_missing_times_from_a_workbook_are_null_not_the_text_nat():
    """A sheet's empty date cells reach normalize as missing times (pandas' NaT)."""
    frame = pd.DataFrame(
        {"id": ["1", "2"], "day": pd.to_datetime(["2024-01-02", None]), "x": [1.5, float("nan")]}
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    config = config_of(schema={"day": "date", "x": "string"})
    result = normalize(table, config, DAY)
    assert result.rejected.num_rows == 0
    assert result.table["day"].to_pylist() == [dt.date(2024, 1, 2), None]
    assert result.table["x"].to_pylist() == ["1.5", None]
