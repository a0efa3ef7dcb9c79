"""The warehouse stage: the published versions the warehouse ledger lacks, loaded into
PostgreSQL oldest first (a missed or repeated run converges); and a rebuild from the store."""

from dataclasses import dataclass

import pyarrow as pa

from ingest_assets import eventstore
from ingest_assets.contract import DatasetConfig
from ingest_assets.rows.hashing import hex_columns
from ingest_assets.stages.staged import StageError
from ingest_resources import progress
from ingest_resources.runtime import Runtime


@dataclass(frozen=True)
class WarehouseOutcome:
    table: str
    versions_loaded: list[str]
    rows_inserted: int
    rows_updated: int
    skipped: str | None = None


def run_warehouse(rt: Runtime, config: DatasetConfig) -> WarehouseOutcome:
    """Load every published version the warehouse ledger does not have yet, oldest first (one
    transaction each): a missed or repeated run converges, and only new/revised rows travel."""
    target = config.publish.postgres
    assert target is not None
    name = f"{target.schema_}.{target.table}"
    if rt.warehouse is None:
        return WarehouseOutcome(name, [], 0, 0, skipped="INGEST_POSTGRES_URL is not set")
    current, _ = eventstore.read_current(rt.store, config.dataset_id)
    loaded = rt.warehouse.loaded_versions(config.dataset_id)
    versions, inserted, updated = [], 0, 0
    for manifest in eventstore.version_chain(rt.store, config.dataset_id, current):
        if manifest.version in loaded:
            continue
        # a month at a time, its hashes as hex text (as every warehouse table holds them)
        rows = (_event_file(rt, key) for key in manifest.file_keys)
        result = rt.warehouse.load(
            config.dataset_id,
            manifest.version,
            manifest.partition,
            rows,
            config.primary_keys,
            target.schema_,
            target.table,
        )
        if not result.already_loaded:
            versions.append(manifest.version)
            inserted += result.inserted
            updated += result.updated
    return WarehouseOutcome(name, versions, inserted, updated)


def _event_file(rt: Runtime, key: str) -> pa.Table:
    """One event file, its hashes as hex text, counted for the stage's progress."""
    table = hex_columns(rt.store.read_parquet(key))
    progress.add(rows=table.num_rows)
    return table


def rebuild_warehouse(rt: Runtime, config: DatasetConfig) -> WarehouseOutcome:
    """Disaster recovery: drop the dataset's rows and ledger entries, reload from the store."""
    target = config.publish.postgres
    if rt.warehouse is None or target is None:
        raise StageError(
            f"dataset {config.dataset_id}: needs publish.postgres and INGEST_POSTGRES_URL"
        )
    rt.warehouse.forget(config.dataset_id, target.schema_, target.table)
    return run_warehouse(rt, config)
