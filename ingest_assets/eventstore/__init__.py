"""The event store: everything published for a dataset, and the only code that reads or writes
its layout (DESIGN.md, "Published storage layout"). No Dagster here.

- manifest.py: the typed manifest of a version (format 1 and 2)
- chain.py: `current` and the chain of versions, read and checked
- events.py: event data files, one per month, with their sizes and checksums
- keyindex.py, index.py: the key index in memory, and its stored file
- diff.py: new, revised and superseded rows; versions; high-water marks; schema changes
- projections.py: per-series monthly windows, right by construction
- settle.py: the chain, whole, and what a run before left undone, brought up to date
- commit.py: prepare, swap, follow-ups (follow_ups.py), publish
- guard.py: whether a writer may still write (its lease)
- replay.py: the latest row per key, replayed from the events (exports)
- verify.py, repair.py, gc.py: `ingest verify`, `ingest repair`, `ingest gc`
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
