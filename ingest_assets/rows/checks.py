"""Data checks from the contract, evaluated on a normalized partition before publish. Pure.

`planned_checks(config)` (from `check_plan`, light enough for load time, so the Dagster factory
declares them as check specs on the normalized asset) lists the checks a dataset has;
`evaluate(...)` runs them.
Each result carries its severity: `error` blocks publish, `warn` only reports.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import DatasetConfig
from ingest_assets.parsers.base import ROW_COLUMN
from ingest_assets.rows.check_plan import PlannedCheck, planned_checks
from ingest_assets.rows.convert import arrow_type
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH
from ingest_assets.rows.normalize import COLLECTION_DATE
from ingest_assets.rows.quarantine import REASON

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class CheckResult:
    check: PlannedCheck
    passed: bool
    detail: str
    failing_rows: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.check.name

    @property
    def blocks_publish(self) -> bool:
        return not self.passed and self.check.blocking


@dataclass(frozen=True)
class CheckInputs:
    table: pa.Table  # the normalized rows
    rejected: pa.Table  # the quarantined rows, with reasons
    rows_parsed: int
    published_schema: dict[str, str] | None  # of the current version, for schema drift
    now: dt.datetime
    # When `table` holds only the columns the checks read (`needed_columns`), the whole
    # schema, the rejected count (`rejected` then holds the first rows only) and the number
    # of rows whose key repeats (known from the deduplication) come separately.
    schema: pa.Schema | None = None
    rows_rejected: int | None = None
    repeated_keys: int | None = None

    @property
    def columns(self) -> list[str]:
        return list((self.schema or self.table.schema).names)


def needed_columns(config: DatasetConfig) -> list[str]:
    """The normalized columns `evaluate` reads (the rest of a large partition stays on disk)."""
    checks = config.checks
    names: list[str] = [*checks.not_null, *checks.unique, *checks.ranges, *checks.allowed_values]
    if config.lag_days is not None:
        names.append(config.normalize.time_column)
    return list(dict.fromkeys(names))


def _rows_result(check: PlannedCheck, table: pa.Table, mask: pa.Array, what: str) -> CheckResult:
    mask = pc.fill_null(mask, False)
    failing = int(pc.sum(mask).as_py() or 0)
    if not failing:
        return CheckResult(check, True, f"0 of {table.num_rows} rows {what}")
    visible = [c for c in table.column_names if c not in (KEY_HASH, ROW_HASH, COLLECTION_DATE)]
    sample = table.filter(mask).select(visible).slice(0, SAMPLE_ROWS).to_pylist()
    return CheckResult(check, False, f"{failing} of {table.num_rows} rows {what}", failing, sample)


def _missing_column(check: PlannedCheck, column: str, names: list[str]) -> CheckResult:
    found = ", ".join(c for c in names if c not in (KEY_HASH, ROW_HASH))
    return CheckResult(check, False, f"column {column!r} does not exist (columns: {found})")


def _unique(check: PlannedCheck, table: pa.Table, columns: list[str]) -> CheckResult:
    counts = (
        table.select(columns).group_by(columns, use_threads=False).aggregate([([], "count_all")])
    )
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if repeated.num_rows == 0:
        return CheckResult(check, True, f"{table.num_rows} rows, no repeated {', '.join(columns)}")
    failing = int(pc.sum(repeated["count_all"]).as_py())
    sample = repeated.slice(0, SAMPLE_ROWS).to_pylist()
    detail = f"{failing} rows share {repeated.num_rows} repeated values of {', '.join(columns)}"
    return CheckResult(check, False, detail, failing, sample)


def _schema_drift(check: PlannedCheck, config: DatasetConfig, inputs: CheckInputs) -> CheckResult:
    """Columns missing, extra or retyped against the current published version. A change the
    contract asks for (a column now declared in normalize.schema with that type) is not drift."""
    reference = inputs.published_schema
    if not reference:
        return CheckResult(check, True, "no published version yet: nothing to drift from")
    current = {f.name: str(f.type) for f in inputs.schema or inputs.table.schema}
    declared = {name: str(arrow_type(t)) for name, t in config.normalize.schema_.items()}
    changes = []
    for name in reference.keys() - current.keys():
        changes.append(f"- {name} ({reference[name]}) is missing")
    for name in current.keys() - reference.keys():
        if declared.get(name) != current[name]:
            changes.append(f"+ {name} ({current[name]}) is new")
    for name in reference.keys() & current.keys():
        if reference[name] != current[name] and declared.get(name) != current[name]:
            changes.append(f"~ {name}: {reference[name]} -> {current[name]}")
    if not changes:
        return CheckResult(check, True, "same columns and types as the published version")
    detail = "schema differs from the published version: " + "; ".join(sorted(changes))
    evolved = [c.split(" ")[1].rstrip(":") for c in changes if c[0] in "+~"]
    if evolved:  # what makes such a change evolution, not drift
        wanted = ", ".join(f"{name}: {_type_name(current[name])}" for name in sorted(evolved))
        detail += f" (to take it, declare it in normalize.schema: {{{wanted}}})"
    return CheckResult(check, False, detail, 0, [{"change": c} for c in sorted(changes)])


# The contract's type names by the Arrow type each normalizes to (`double` -> float64)
CONTRACT_TYPES = {
    str(arrow_type(name)): name
    for name in ("string", "int64", "float64", "bool", "date", "timestamp")
}


def _type_name(arrow: str) -> str:
    """The contract's name of an Arrow type as the schema reports it (text if it has none)."""
    if arrow.startswith("decimal"):
        return arrow.replace("decimal128", "decimal").replace(" ", "")
    return CONTRACT_TYPES.get(arrow, "timestamp" if arrow.startswith("timestamp") else "string")


def _freshness(check: PlannedCheck, config: DatasetConfig, inputs: CheckInputs) -> CheckResult:
    column = config.normalize.time_column
    table = inputs.table
    if column not in table.column_names:
        return _missing_column(check, column, inputs.columns)
    newest = pc.max(table[column]).as_py()
    if newest is None:
        return CheckResult(check, False, f"no {column} values: cannot tell how fresh the data is")
    if not isinstance(newest, dt.datetime):
        newest = dt.datetime(newest.year, newest.month, newest.day, tzinfo=dt.UTC)
    age = inputs.now - newest
    limit = dt.timedelta(days=config.lag_days or 0)
    detail = (
        f"newest {column} {newest.isoformat()} is {age.days} days old (lag_days {config.lag_days})"
    )
    return CheckResult(check, age <= limit, detail)


def _rejected_ratio(check: PlannedCheck, config: DatasetConfig, inputs: CheckInputs) -> CheckResult:
    rejected = inputs.rows_rejected
    if rejected is None:
        rejected = inputs.rejected.num_rows
    parsed = inputs.rows_parsed
    ratio = rejected / parsed if parsed else 0.0
    limit = config.checks.max_rejected_ratio
    detail = f"{rejected} of {parsed} rows rejected ({ratio:.2%}); max_rejected_ratio {limit}"
    if ratio <= limit:
        return CheckResult(check, True, detail, rejected)
    columns = [c for c in (ROW_COLUMN, "source_ref", REASON) if c in inputs.rejected.column_names]
    sample = inputs.rejected.select(columns).slice(0, SAMPLE_ROWS).to_pylist()
    reasons = "; ".join(f"row {r[ROW_COLUMN]}: {r[REASON]}" for r in sample[:3])
    return CheckResult(check, False, f"{detail}. First reasons: {reasons}", rejected, sample)


COLUMN_CHECKS = ("not_null", "range", "allowed_values")  # checks of one column's values


def _column_check(
    check: PlannedCheck, config: DatasetConfig, inputs: CheckInputs, column: str
) -> CheckResult:
    """A check of one column's values. Empty values pass every check but not_null; a column
    with no values at all (all rows rejected, or all empty) passes them too."""
    table = inputs.table
    if column not in table.column_names:
        return _missing_column(check, column, inputs.columns)
    values = table[column]
    if check.kind == "not_null":
        return _rows_result(check, table, pc.is_null(values), f"have no {column}")
    if check.kind == "range":
        bounds = config.checks.ranges[column]
        what = f"outside [{bounds.min}, {bounds.max}]"
    else:
        allowed = config.checks.allowed_values[column]
        what = f"not in {allowed}"
    outside = pa.array(np.zeros(table.num_rows, dtype=bool))
    if pa.types.is_null(values.type):  # (no value to check)
        return _rows_result(check, table, outside, what)
    try:
        if check.kind == "range":
            if bounds.min is not None:
                outside = pc.or_(outside, pc.less(values, bounds.min))
            if bounds.max is not None:
                outside = pc.or_(outside, pc.greater(values, bounds.max))
        else:
            value_set = pa.array(allowed).cast(values.type)
            outside = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=value_set)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        detail = f"column {column!r} ({values.type}) cannot be compared: {exc}"
        return CheckResult(check, False, detail)
    return _rows_result(check, table, outside, what)


def _row_count(check: PlannedCheck, config: DatasetConfig, table: pa.Table) -> CheckResult:
    bounds = config.checks.row_count
    assert bounds is not None  # (planned only with bounds)
    count = table.num_rows
    ok = (bounds.min is None or count >= bounds.min) and (bounds.max is None or count <= bounds.max)
    return CheckResult(check, ok, f"{count} rows; expected [{bounds.min}, {bounds.max}]")


def evaluate(config: DatasetConfig, inputs: CheckInputs) -> list[CheckResult]:
    table = inputs.table
    results = []
    for check in planned_checks(config):
        if check.kind in COLUMN_CHECKS and check.column is not None:
            results.append(_column_check(check, config, inputs, check.column))
        elif check.kind == "unique":
            columns = config.checks.unique
            absent = [c for c in columns if c not in table.column_names]
            results.append(
                _missing_column(check, absent[0], inputs.columns)
                if absent
                else _unique(check, table, columns)
            )
        elif check.kind == "unique_primary_key" and inputs.repeated_keys is not None:
            repeated = inputs.repeated_keys
            detail = f"{table.num_rows} rows, {repeated} with a repeated primary key"
            results.append(CheckResult(check, repeated == 0, detail, repeated))
        elif check.kind == "unique_primary_key":
            results.append(_unique(check, table, [KEY_HASH]))
        elif check.kind == "row_count":
            results.append(_row_count(check, config, table))
        elif check.kind == "rejected_ratio":
            results.append(_rejected_ratio(check, config, inputs))
        elif check.kind == "schema_drift":
            results.append(_schema_drift(check, config, inputs))
        elif check.kind == "freshness":
            results.append(_freshness(check, config, inputs))
    return results
