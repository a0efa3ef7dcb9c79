"""Stages: one module per asset, what it does to the store, without Dagster. Each stage reads
what the one before staged and returns typed results; `orchestration.assets` turns them into
Dagster metadata.

- raw.py: `run_raw`, the source fetched and stored content-addressed, `latest.json`;
  `skipped`, a partition whose file was missing (`source.missing: skip`)
- parsed.py: `run_parse`, the raw bytes parsed in batches; `source_drift`
- normalized.py: `run_normalize`, one part per parsed batch, kept across runs when its batch
  is; `read_normalized`, `normalized_meta`
- batches.py: the normalized batches taken together: counts, keys, high-water marks, and keys
  repeated across batches (the rule of `rows.dedupe`), parts rewritten without them
- published.py: `run_publish` (into the event store, unless a blocking check failed),
  `read_quarantine`
- warehouse.py: `run_warehouse`, `rebuild_warehouse`; export.py: `ingest export`
- unchanged.py: `unchanged_since`, whether a run would find nothing to do (`--if-changed`)
- landing.py: a landing zone's new files through raw (fetched, listed), parsed (one stream)
  and published (the files ledger)
- state.py: what stages hand each other through the store, typed, and its JSON (`RawInfo`,
  `NormalizedMeta`, `Counts`, `CheckRecord`, `StagedPart`)
- staged.py: what they share: `Staged`, errors, fingerprints, disk-full reports;
  parts.py: staged outputs as numbered Parquet parts

May import: every pure package (`contract`, `sources`, `parsers`, `rows`, `eventstore`,
`layout`, `settings`) and `ingest_resources` (the store, runtime, errors). Never Dagster or
`ingest_assets.orchestration`/`cli`.
"""

from ingest_assets.stages.normalized import (
    NormalizeOutcome,
    normalized_meta,
    read_normalized,
    run_normalize,
)
from ingest_assets.stages.parsed import run_parse, source_drift
from ingest_assets.stages.published import blocking_failures, notifier, read_quarantine, run_publish
from ingest_assets.stages.raw import run_raw, skipped
from ingest_assets.stages.staged import ChecksFailedError, DiskFullError, Staged, StageError
from ingest_assets.stages.unchanged import unchanged_since
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
    "skipped",
    "source_drift",
    "unchanged_since",
]
