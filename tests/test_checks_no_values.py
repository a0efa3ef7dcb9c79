"""Every check kind over a column with no values (all null, or every row rejected) and over an
empty table: a result, never a crash (issue 17, item 9)."""

import datetime as dt

import pyarrow as pa
import pytest

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_assets.rows.checks import CheckInputs, evaluate
from ingest_assets.rows.hashing import DIGEST_TYPE, KEY_HASH

NOW = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)


def config_of(path="x.csv", ratio=1.0):
    return parse_config(
        {
            "dataset_id": "NOVALUES",
            "lag_days": 3,
            "source": {"kind": "file", "path": str(path), "format": "csv"},
            "normalize": {
                "primary_keys": ["id"],
                "time_column": "day",
                "schema": {"value": "float64", "day": "date", "unit": "string"},
            },
            "checks": {
                "not_null": ["value"],
                "unique": ["value"],
                "ranges": {"value": {"min": 0, "max": 100}},
                "allowed_values": {"unit": ["kg"]},
                "row_count": {"min": 0, "max": 10},
                "max_rejected_ratio": ratio,
            },
        },
        "novalues.yaml",
    )


KINDS = {
    "not_null:value",
    "unique:value",
    "unique_primary_key",
    "range:value",
    "allowed_values:unit",
    "row_count",
    "rejected_ratio",
    "schema_drift",
    "freshness",
}


def run(table: pa.Table):
    inputs = CheckInputs(
        table=table,
        rejected=pa.table({}),
        rows_parsed=table.num_rows,
        published_schema=None,
        now=NOW,
    )
    results = {r.name: r for r in evaluate(config_of(), inputs)}
    assert set(results) == KINDS
    return results


@pytest.mark.parametrize("value_type", [pa.null(), pa.float64()])
def test_every_check_over_columns_with_no_values(value_type):
    table = pa.table(
        {
            "id": ["1", "2"],
            "value": pa.nulls(2, value_type),
            "unit": pa.nulls(2, pa.string() if value_type != pa.null() else pa.null()),
            "day": pa.nulls(2, pa.date32() if value_type != pa.null() else pa.null()),
            KEY_HASH: pa.array([b"a" * 20, b"b" * 20], DIGEST_TYPE),
        }
    )
    results = run(table)
    assert not results["not_null:value"].passed
    assert results["not_null:value"].failing_rows == 2
    assert results["range:value"].passed and results["range:value"].failing_rows == 0
    assert results["allowed_values:unit"].passed
    assert results["unique_primary_key"].passed
    assert not results["freshness"].passed  # (no time to tell freshness from)
    assert "no day values" in results["freshness"].detail


def test_every_check_over_an_empty_table():
    table = pa.table(
        {
            "id": pa.array([], pa.string()),
            "value": pa.array([], pa.float64()),
            "unit": pa.array([], pa.string()),
            "day": pa.array([], pa.date32()),
            KEY_HASH: pa.array([], DIGEST_TYPE),
        }
    )
    results = run(table)
    passed = {name for name, r in results.items() if r.passed}
    assert passed == KINDS - {"freshness"}
    assert results["range:value"].detail == "0 of 0 rows outside [0.0, 100.0]"


def test_a_range_over_a_column_whose_rows_were_all_rejected_fails_its_check_not_the_step(
    runtime, tmp_path
):
    """The case found: every value unreadable, so no rows reach the range check."""
    path = tmp_path / "bad.csv"
    path.write_text("id,value,unit,day\n1,abc,kg,2024-01-30\n2,def,kg,2024-01-31\n")
    config = config_of(path, ratio=0.0)
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    outcome = stages.run_normalize(runtime, config, "all")
    results = {r.name: r for r in outcome.checks}
    assert outcome.counts.rejected == 2
    assert results["range:value"].passed
    assert not results["rejected_ratio"].passed and results["rejected_ratio"].check.blocking


def test_a_check_that_cannot_compare_fails_with_its_reason():
    table = pa.table(
        {
            "id": ["1"],
            "value": ["not a number"],  # (a range over text: not comparable with numbers)
            "unit": pa.array([5], pa.int64()),  # (allowed values of text over numbers)
            "day": [dt.date(2024, 2, 1)],
            KEY_HASH: pa.array([b"a" * 20], DIGEST_TYPE),
        }
    )
    results = run(table)
    assert not results["range:value"].passed
    assert "column 'value' (string) cannot be compared" in results["range:value"].detail
    assert not results["allowed_values:unit"].passed
