"""Data checks from the contract's `checks:` on a normalized table. Pure: no Dagster.

Each rule gives a result with the number of offending rows and a small sample of them; the
normalized stage refuses to stage data that fails one, so it can never reach `current`.
"""

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import DatasetConfig

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    failing_rows: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "detail": self.detail, "failing_rows": self.failing_rows}


def _result(name: str, table: pa.Table, mask: pa.ChunkedArray | pa.Array, what: str) -> CheckResult:
    mask = pc.fill_null(mask, False)
    failing = int(pc.sum(mask).as_py() or 0)
    if not failing:
        return CheckResult(name, True, f"0 of {table.num_rows} rows {what}")
    sample = table.filter(mask).slice(0, SAMPLE_ROWS).to_pylist()
    return CheckResult(name, False, f"{failing} of {table.num_rows} rows {what}", failing, sample)


def _missing(name: str, column: str) -> CheckResult:
    return CheckResult(name, False, f"column {column!r} does not exist")


def evaluate(config: DatasetConfig, table: pa.Table) -> list[CheckResult]:
    checks = config.checks
    results = []
    for column in checks.not_null:
        name = f"not_null:{column}"
        if column not in table.column_names:
            results.append(_missing(name, column))
            continue
        results.append(_result(name, table, pc.is_null(table[column]), f"have no {column}"))
    if checks.unique:
        name = f"unique:{','.join(checks.unique)}"
        absent = [c for c in checks.unique if c not in table.column_names]
        if absent:
            results.append(_missing(name, absent[0]))
        else:
            results.append(_unique(name, table, checks.unique))
    for column, bounds in checks.ranges.items():
        name = f"range:{column}"
        if column not in table.column_names:
            results.append(_missing(name, column))
            continue
        values = table[column]
        outside = pa.array([False] * table.num_rows)
        if bounds.min is not None:
            outside = pc.or_(outside, pc.less(values, bounds.min))
        if bounds.max is not None:
            outside = pc.or_(outside, pc.greater(values, bounds.max))
        results.append(_result(name, table, outside, f"outside [{bounds.min}, {bounds.max}]"))
    for column, allowed in checks.allowed_values.items():
        name = f"allowed_values:{column}"
        if column not in table.column_names:
            results.append(_missing(name, column))
            continue
        values = table[column]
        value_set = pa.array(allowed).cast(values.type)
        outside = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=value_set)))
        results.append(_result(name, table, outside, f"not in {allowed}"))
    return results


def _unique(name: str, table: pa.Table, columns: list[str]) -> CheckResult:
    counts = (
        table.select(columns).group_by(columns, use_threads=False).aggregate([([], "count_all")])
    )
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if repeated.num_rows == 0:
        return CheckResult(name, True, f"{table.num_rows} rows, no repeated {columns}")
    failing = int(pc.sum(repeated["count_all"]).as_py())
    sample = repeated.slice(0, SAMPLE_ROWS).to_pylist()
    return CheckResult(
        name, False, f"{failing} rows share {repeated.num_rows} repeated {columns}", failing, sample
    )
