"""The published data replayed from the events: the latest row of every key as of a version.
What exports read, and what every derived file (index, projections) is checked against."""

import pyarrow as pa

from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore.chain import read_current, read_manifest, version_chain
from ingest_assets.eventstore.events import OP, read_event_rows
from ingest_assets.eventstore.manifest import Manifest
from ingest_assets.eventstore.projections import latest_rows
from ingest_assets.rows.hashing import KEY_HASH, digest_columns, hex_columns
from ingest_resources.object_store import ObjectStore


def replay(
    store: ObjectStore, chain: list[Manifest], columns: list[str] | None = None
) -> pa.Table | None:
    """The latest row per key (hashes as bytes) of the chain's events, with op and version
    (`columns`: only those, which must hold key_hash and version)."""
    tables = [read_event_rows(store, manifest.file_keys, columns) for manifest in chain]
    return latest_rows([digest_columns(table) for table in tables if table is not None])


def published_table(
    store: ObjectStore, config: DatasetConfig, version: str | None = None
) -> pa.Table | None:
    """Replay the event chain up to `version` (default: current) and keep the latest row per key
    (hashes as hex text), sorted by the primary keys."""
    dataset_id = config.dataset_id
    head, _ = read_current(store, dataset_id)
    if head is None:
        raise KeyError(f"dataset {dataset_id}: nothing published yet")
    if version is not None:
        try:
            head = read_manifest(store, dataset_id, version)
        except KeyError:
            raise KeyError(
                f"dataset {dataset_id}: no version {version!r} (see `ingest history {dataset_id}`)"
            ) from None
    table = replay(store, version_chain(store, dataset_id, head))
    if table is None:
        return None
    keys = [k for k in config.primary_keys if k in table.column_names] or [KEY_HASH]
    return hex_columns(table.drop_columns([OP]).sort_by([(k, "ascending") for k in keys]))
