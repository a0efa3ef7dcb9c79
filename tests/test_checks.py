"""Every check kind on a passing and a failing partition; a blocking failure leaves `current`
where it was, a warning publishes. Severity comes from `checks.severity`."""

import datetime as dt

import pytest

from ingest_assets import stages
from ingest_assets.eventstore import read_current
from ingest_assets.rows.checks import planned_checks

BASE = """
dataset_id: CHECKED
lag_days: {lag_days}
source: {{kind: file, path: {path}, format: csv}}
normalize:
  primary_keys: [id]
  time_column: day
  schema: {{id: int64, value: float64, day: date}}
checks:
  not_null: [value]
  unique: [code]
  ranges: {{value: {{min: 0, max: 100}}}}
  allowed_values: {{unit: [ARS/USD]}}
  row_count: {{min: 2, max: 3}}
  max_rejected_ratio: 0.3
  severity: {severity}
"""
TODAY = dt.datetime.now(dt.UTC).date().isoformat()
GOOD = f"1,5,a,ARS/USD,{TODAY}\n2,7,b,ARS/USD,{TODAY}\n"


@pytest.fixture
def checked(tmp_path, write_dataset, runtime):
    csv = tmp_path / "checked.csv"

    def run(
        rows: str, severity: str = "{}", lag_days: int = 3, header: str = "id,value,code,unit,day"
    ):
        csv.write_text(header + "\n" + rows)
        config = write_dataset(BASE.format(path=csv, severity=severity, lag_days=lag_days))
        stages.run_raw(runtime, config, "all")
        stages.run_parse(runtime, config, "all")
        outcome = stages.run_normalize(runtime, config, "all")
        failed = sorted(r.name for r in outcome.checks if not r.passed)
        try:
            result = stages.run_publish(runtime, config, "all")
        except stages.ChecksFailedError as exc:
            return failed, None, str(exc)
        return failed, result, ""

    return run


def test_the_planned_checks(write_dataset, tmp_path):
    config = write_dataset(
        BASE.format(path=tmp_path / "x.csv", severity="{range: warn}", lag_days=3)
    )
    plan = {c.name: (c.severity, c.check_name) for c in planned_checks(config)}
    assert plan == {
        "not_null:value": ("error", "not_null__value"),
        "unique:code": ("error", "unique__code"),
        "unique_primary_key": ("error", "unique_primary_key"),
        "range:value": ("warn", "range__value"),
        "allowed_values:unit": ("error", "allowed_values__unit"),
        "row_count": ("error", "row_count"),
        "rejected_ratio": ("error", "rejected_ratio"),
        "schema_drift": ("error", "schema_drift"),
        "freshness": ("warn", "freshness"),
    }
    ui_spelling = '{range: warn, "not_null__value": warn}'  # as the Dagster UI names it
    config = write_dataset(BASE.format(path=tmp_path / "x.csv", severity=ui_spelling, lag_days=3))
    assert {c.name: c.severity for c in planned_checks(config)}["not_null:value"] == "warn"


def test_a_passing_partition_publishes_with_its_results(checked):
    failed, result, _ = checked(GOOD)
    assert failed == [] and result.rows_added == 2
    assert result.manifest.checks["range:value"] == {
        "passed": True,
        "severity": "error",
        "detail": "0 of 2 rows outside [0.0, 100.0]",
        "failing_rows": 0,
    }


@pytest.mark.parametrize(
    ("rows", "failing", "message"),
    [
        (
            f"1,,a,ARS/USD,{TODAY}\n2,7,b,ARS/USD,{TODAY}\n",
            "not_null:value",
            "1 of 2 rows have no value",
        ),
        (
            f"1,5,a,ARS/USD,{TODAY}\n2,7,a,ARS/USD,{TODAY}\n",
            "unique:code",
            "2 rows share 1 repeated values of code",
        ),
        (
            f"1,-5,a,ARS/USD,{TODAY}\n2,700,b,ARS/USD,{TODAY}\n",
            "range:value",
            "2 of 2 rows outside [0.0, 100.0]",
        ),
        (
            f"1,5,a,EUR,{TODAY}\n2,7,b,ARS/USD,{TODAY}\n",
            "allowed_values:unit",
            "1 of 2 rows not in ['ARS/USD']",
        ),
        (f"1,5,a,ARS/USD,{TODAY}\n", "row_count", "1 rows; expected [2, 3]"),
        (
            f"1,5,a,ARS/USD,{TODAY}\n2,x,b,ARS/USD,{TODAY}\n3,6,c,ARS/USD,{TODAY}\n",
            "rejected_ratio",
            "1 of 3 rows rejected (33.33%)",
        ),
    ],
)
def test_a_failing_check_blocks_publish(checked, runtime, rows, failing, message):
    checked(GOOD)
    before = read_current(runtime.store, "CHECKED")
    failed, result, error = checked(rows)
    assert failing in failed and result is None
    assert f"{failing}: {message}" in error and "not published" in error
    assert read_current(runtime.store, "CHECKED") == before


def test_rejected_ratio_within_the_limit_passes(checked):
    failed, result, _ = checked(
        f"1,5,a,ARS/USD,{TODAY}\n2,x,b,ARS/USD,{TODAY}\n3,6,c,ARS/USD,{TODAY}\n"
        + f"4,6,d,ARS/USD,{TODAY}\n",
        severity="{row_count: warn}",
    )
    assert "rejected_ratio" not in failed and result.rows_added == 3


def test_a_warning_reports_and_publishes(checked):
    failed, result, _ = checked(
        f"1,-5,a,ARS/USD,{TODAY}\n2,7,b,ARS/USD,{TODAY}\n", severity="{range:value: warn}"
    )
    assert failed == ["range:value"] and result.committed
    assert result.manifest.checks["range:value"]["passed"] is False
    assert result.manifest.checks["range:value"]["severity"] == "warn"


def test_freshness_warns_by_default_and_blocks_when_asked(checked):
    stale = "1,5,a,ARS/USD,2020-01-01\n2,7,b,ARS/USD,2020-01-02\n"
    failed, result, _ = checked(stale)
    assert failed == ["freshness"] and result.committed  # a warning by default
    assert (
        "newest day 2020-01-02T00:00:00+00:00 is" in result.manifest.checks["freshness"]["detail"]
    )
    failed, result, error = checked(
        stale.replace("2020-01-02", "2020-01-03"), severity="{freshness: error}"
    )
    assert failed == ["freshness"] and result is None and "lag_days 3" in error


def test_schema_drift_against_the_published_version(checked, runtime):
    checked(GOOD)
    version = read_current(runtime.store, "CHECKED")[0].version
    failed, result, error = checked(
        f"1,5,a,ARS/USD,{TODAY},x\n2,7,b,ARS/USD,{TODAY},y\n", header="id,value,code,unit,day,extra"
    )
    assert failed == ["schema_drift"] and result is None
    assert "schema differs from the published version: + extra (string) is new" in error
    assert "(to take it, declare it in normalize.schema: {extra: string})" in error
    failed, result, error = checked(
        f"1,5,ARS/USD,{TODAY}\n2,7,ARS/USD,{TODAY}\n",
        header="id,value,unit,day",
        severity="{unique: warn}",
    )
    assert "schema_drift" in failed and "- code (string) is missing" in error
    assert "declare it" not in error  # (a missing column: nothing to declare)
    assert read_current(runtime.store, "CHECKED")[0].version == version


def test_a_new_column_declared_in_the_contract_is_not_drift(
    checked, tmp_path, write_dataset, runtime
):
    checked(GOOD)
    csv = tmp_path / "checked.csv"
    csv.write_text(
        f"id,value,code,unit,day,score\n1,5,a,ARS/USD,{TODAY},1.5\n2,7,b,ARS/USD,{TODAY},2\n"
    )
    text = BASE.format(path=csv, severity="{}", lag_days=3).replace(
        "schema: {id: int64, value: float64, day: date}",
        "schema: {id: int64, value: float64, day: date, score: float64}",
    )
    config = write_dataset(text)
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    outcome = stages.run_normalize(runtime, config, "all")
    drift = next(r for r in outcome.checks if r.name == "schema_drift")
    assert drift.passed, drift.detail
    assert (
        stages.run_publish(runtime, config, "all").rows_revised == 2
    )  # the new values are revisions


def test_unique_primary_key_fails_on_a_repeated_key_hash(write_dataset, tmp_path):
    """normalize quarantines conflicting keys, so this guards the invariant itself."""
    import pyarrow as pa

    from ingest_assets.rows.checks import CheckInputs, evaluate

    config = write_dataset(BASE.format(path=tmp_path / "x.csv", severity="{}", lag_days=3))
    table = pa.table(
        {
            "id": [1, 1],
            "value": [1.0, 2.0],
            "code": ["a", "b"],
            "unit": ["ARS/USD"] * 2,
            "day": [dt.date.today()] * 2,
            "key_hash": ["k1", "k1"],
            "row_hash": ["r1", "r2"],
        }
    )
    inputs = CheckInputs(
        table,
        pa.table({"_row": pa.array([], pa.int64()), "reason": pa.array([], pa.string())}),
        2,
        None,
        dt.datetime.now(dt.UTC),
    )
    result = next(r for r in evaluate(config, inputs) if r.name == "unique_primary_key")
    assert not result.passed and result.detail == "2 rows share 1 repeated values of key_hash"
