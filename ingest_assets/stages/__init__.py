from ingest_assets.stages.normalized import (
    NormalizeOutcome,
    normalized_meta,
    read_normalized,
    run_normalize,
)
from ingest_assets.stages.parsed import run_parse, source_drift
from ingest_assets.stages.published import (
    ChecksFailedError,
    blocking_failures,
    notifier,
    read_quarantine,
    run_publish,
)
from ingest_assets.stages.raw import run_raw
from ingest_assets.stages.staged import DiskFullError, Staged, StageError
from ingest_assets.stages.warehouse import WarehouseOutcome, rebuild_warehouse, run_warehouse

__all__ = [
    "ChecksFailedError",
    "DiskFullError",
    "NormalizeOutcome",
    "StageError",
    "Staged",
    "WarehouseOutcome",
    "blocking_failures",
    "normalized_meta",
    "notifier",
    "read_normalized",
    "read_quarantine",
    "rebuild_warehouse",
    "run_normalize",
    "run_parse",
    "run_publish",
    "run_raw",
    "run_warehouse",
    "source_drift",
]
