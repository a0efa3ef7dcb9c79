"""The event store: everything published for a dataset, and the only code that reads or writes
its layout (docs/storage.md). No Dagster here.

- manifest.py: the typed manifest of a version (formats 1 and 2)
- chain.py: `current` and the chain of versions, read and checked
- events.py: event data files, one per month, with their sizes and checksums
- keyindex.py, index.py: the key index in memory, and its stored file
- diff.py: new, revised and superseded rows; versions; high-water marks; schema changes
- projections.py: per-series monthly windows, right by construction, and their state.json
- settle.py: the chain, whole, and what a run before left undone, brought up to date
- commit.py: prepare, swap, follow-ups (follow_ups.py: plans and commit records), publish
- files.py: a landing zone's files ledger, a part per version, committed with it
- rows.py: the normalized rows a publish reads (a table, or staged parts)
- guard.py: whether a writer may still write (its lease); parallel.py: threads, fault points
- replay.py: the latest row per key, replayed from the events (exports)
- verify.py, repair.py, gc.py: `ingest verify`, `ingest repair`, `ingest gc`
- errors.py: EventStoreError and its kinds, under ingest_resources.errors.StoreError

It may import: the standard library, numpy and pyarrow; from ingest_assets, `contract` (the
dataset config, SERIES_CODE), `layout` (the store's keys), `rows.hashing` and `rows.arrays`, and
the column constants of `parsers.base`; from ingest_resources, the object store interface
(`object_store`, `parquet_writing`'s marking of hash columns), `locks` (Lease, LeaseLost),
`progress` (rows counted as they publish) and `errors`. Nothing else: no Dagster, no stage,
no orchestration (tests/test_eventstore_package.py checks it).

Older stores are read as they are; each branch for an older format names it:
- manifests: MANIFEST_FORMAT_1 (Ingest up to 8ed5491: no sizes or checksums, no `commits/`
  records; manifest.py, chain.py, repair.py) and MANIFEST_FORMAT_2, written now;
- projections/state.json: PROJECTIONS_FORMAT_1 (no "format": rebuilt once) and
  PROJECTIONS_FORMAT (projections.py);
- index/keys.parquet: INDEX_FORMAT_1_COLUMNS (hashes as text, before 8c460b7: rebuilt) and
  INDEX_COLUMNS (index.py);
- hashes in event files and windows: hex text before 03a570f, 20 bytes since (read through
  rows.hashing.digest_columns, or keyindex.digest_parts).
"""

from ingest_assets.eventstore.chain import read_current, read_manifest, version_chain
from ingest_assets.eventstore.commit import PublishResult, commit, prepare, publish
from ingest_assets.eventstore.errors import (
    BrokenChain,
    CurrentLost,
    EventStoreError,
    IncompatibleSchema,
    PublishConflict,
    StaleWriter,
    UnknownFormat,
)
from ingest_assets.eventstore.gc import GcReport, collect
from ingest_assets.eventstore.manifest import FORMAT_VERSION, EventFile, Manifest
from ingest_assets.eventstore.repair import RepairReport, repair
from ingest_assets.eventstore.replay import published_table, replay
from ingest_assets.eventstore.rows import Rows, StagedRows, TableRows
from ingest_assets.eventstore.settle import bring_up_to_date
from ingest_assets.eventstore.verify import Report, verify

__all__ = [
    "FORMAT_VERSION",
    "BrokenChain",
    "CurrentLost",
    "EventFile",
    "EventStoreError",
    "GcReport",
    "IncompatibleSchema",
    "Manifest",
    "PublishConflict",
    "PublishResult",
    "RepairReport",
    "Report",
    "Rows",
    "StagedRows",
    "StaleWriter",
    "TableRows",
    "UnknownFormat",
    "bring_up_to_date",
    "collect",
    "commit",
    "prepare",
    "publish",
    "published_table",
    "read_current",
    "read_manifest",
    "replay",
    "repair",
    "verify",
    "version_chain",
]
