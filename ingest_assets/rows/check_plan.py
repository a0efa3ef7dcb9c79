"""Which checks a dataset has, from its contract alone. Pure and light (no Arrow): the factory
declares these as check specs when the code location loads; `checks.evaluate` runs them."""

import re
from dataclasses import dataclass

from ingest_assets.contract import DatasetConfig

DEFAULT_SEVERITY = {"freshness": "warn"}


@dataclass(frozen=True)
class PlannedCheck:
    kind: str
    column: str | None
    severity: str

    @property
    def name(self) -> str:
        """As users write it in `checks.severity` and read it in the manifest: `range:value`."""
        return f"{self.kind}:{self.column}" if self.column else self.kind

    @property
    def check_name(self) -> str:
        """A Dagster check name (letters, digits, underscores)."""
        return re.sub(r"\W+", "_", self.name.replace(":", "__")).strip("_") or self.kind

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


def _severity(config: DatasetConfig, kind: str, column: str | None) -> str:
    chosen = config.checks.severity
    if column and f"{kind}:{column}" in chosen:
        return chosen[f"{kind}:{column}"]
    return chosen.get(kind, DEFAULT_SEVERITY.get(kind, "error"))


def planned_checks(config: DatasetConfig) -> list[PlannedCheck]:
    checks = config.checks
    plan: list[tuple[str, str | None]] = [("not_null", c) for c in checks.not_null]
    if checks.unique:
        plan.append(("unique", ",".join(checks.unique)))
    plan.append(("unique_primary_key", None))
    plan += [("range", c) for c in checks.ranges]
    plan += [("allowed_values", c) for c in checks.allowed_values]
    if checks.row_count is not None:
        plan.append(("row_count", None))
    plan += [("rejected_ratio", None), ("schema_drift", None)]
    if config.lag_days is not None:
        plan.append(("freshness", None))
    return [PlannedCheck(kind, column, _severity(config, kind, column)) for kind, column in plan]
