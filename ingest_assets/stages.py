"""The stages of a dataset (raw, parsed, normalized, published, warehouse), with or without Dagster.

Each stage reads its input from the object store, writes its output there (Parquet between
stages, never pickles) and returns the metadata a user wants to see. The Dagster assets and
`ingest run` are thin callers of these functions.
"""

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ingest_assets import layout, publish
from ingest_assets.checks import CheckInputs, CheckResult, evaluate
from ingest_assets.configs import Secrets
from ingest_assets.contract import DatasetConfig
from ingest_assets.normalize import SYSTEM_COLUMNS, normalize
from ingest_assets.parsers import ParseContext, parse_raw
from ingest_assets.parsers.base import HIDDEN_COLUMNS, require_columns
from ingest_assets.sources import fetch
from ingest_assets.windows import window_for
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime, local_runtime  # noqa: F401 - re-exported

RAW_META = b"ingest.raw"
COUNTS_META = b"ingest.counts"
CHECKS_META = b"ingest.checks"
PART = "part-00000.parquet"


class StageError(Exception):
    """A stage cannot run (its input is missing) or its output fails the contract."""


class ChecksFailedError(StageError):
    """The staged normalized partition failed a check of severity `error`: it is not published."""

    def __init__(self, message: str, failed: dict[str, dict]):
        super().__init__(message)
        self.failed = failed


@dataclass(frozen=True)
class NormalizeOutcome:
    table: pa.Table
    rejected: pa.Table
    counts: dict[str, int]
    checks: list[CheckResult]
    quarantine_key: str


def _write_stage(store: ObjectStore, prefix: str, table: pa.Table) -> str:
    store.delete_prefix(prefix)
    key = f"{prefix}/{PART}"
    store.write_parquet(key, table)
    return key


def read_normalized(rt: Runtime, config: DatasetConfig, partition: str) -> pa.Table:
    return _read_stage(rt.store, config, "normalized", partition, "normalized")


def _read_stage(
    store: ObjectStore, config: DatasetConfig, stage: str, partition: str, before: str
) -> pa.Table:
    key = f"{layout.staging(config.dataset_id, stage, partition)}/{PART}"
    if not store.exists(key):
        raise StageError(
            f"dataset {config.dataset_id}: no {stage} data for partition {partition!r}; "
            f"materialize {config.dataset_id}/{before} first"
        )
    return store.read_parquet(key)


def _meta(table: pa.Table, key: bytes) -> dict:
    return json.loads((table.schema.metadata or {}).get(key, b"{}"))


def run_raw(
    rt: Runtime, config: DatasetConfig, partition: str, secrets: Secrets | None = None
) -> dict[str, Any]:
    current, _ = publish.read_current(rt.store, config.dataset_id)
    fetched = fetch(config, secrets, window_for(config, partition, current))
    sha256 = hashlib.sha256(fetched.content).hexdigest()
    key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
    rt.store.put_if_absent(key, fetched.content)
    info = {
        "key": key,
        "sha256": sha256,
        "bytes": len(fetched.content),
        "source": fetched.source,
        "etag": fetched.etag,
        "last_modified": fetched.last_modified,
        "fetched_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    rt.store.put(
        layout.raw_latest(config.dataset_id, partition), json.dumps(info, indent=2).encode()
    )
    return info


def run_parse(
    rt: Runtime, config: DatasetConfig, partition: str
) -> tuple[pa.Table, dict[str, Any]]:
    latest_key = layout.raw_latest(config.dataset_id, partition)
    if not rt.store.exists(latest_key):
        raise StageError(
            f"dataset {config.dataset_id}: no raw data for partition {partition!r}; "
            f"materialize {config.dataset_id}/raw first"
        )
    raw = json.loads(rt.store.get(latest_key))
    context = ParseContext(config, raw["source"])
    table = parse_raw(rt.store.get(raw["key"]), context)
    require_columns(table, context)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), RAW_META: json.dumps(raw).encode()}
    )
    _write_stage(rt.store, layout.staging(config.dataset_id, "parsed", partition), table)
    return table, raw


def source_drift(rt: Runtime, config: DatasetConfig, parsed: pa.Table) -> dict[str, list[str]]:
    """Source columns added or gone since the published version (reported at parse time; the
    schema_drift check decides whether it blocks)."""
    current, _ = publish.read_current(rt.store, config.dataset_id)
    if not current:
        return {"added": [], "missing": []}
    platform = {*SYSTEM_COLUMNS, *config.transform.metadata, "frequency", *HIDDEN_COLUMNS}
    published = set(current.get("schema", {})) - platform
    source = set(parsed.column_names) - platform
    return {"added": sorted(source - published), "missing": sorted(published - source)}


def read_quarantine(
    rt: Runtime, config: DatasetConfig, partition: str | None = None
) -> pa.Table | None:
    """Rejected rows of one partition (or all), with a `partition` column, newest run per partition."""
    if partition:
        prefix = layout.quarantine(config.dataset_id, partition)
    else:
        prefix = f"{layout.dataset(config.dataset_id)}/quarantine"
    tables = []
    for key in rt.store.list(prefix):
        if key.endswith(".parquet"):
            table = rt.store.read_parquet(key)
            name = key.split("/quarantine/", 1)[1].split("/", 1)[0]
            tables.append(
                table.add_column(0, "partition", pa.array([name] * table.num_rows, pa.string()))
            )
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def run_normalize(
    rt: Runtime, config: DatasetConfig, partition: str, today: dt.date | None = None
) -> NormalizeOutcome:
    parsed = _read_stage(rt.store, config, "parsed", partition, "parsed")
    raw = _meta(parsed, RAW_META)
    result = normalize(parsed, config, today or dt.datetime.now(dt.UTC).date())
    counts = {
        "parsed": parsed.num_rows,
        "rejected": result.rejected.num_rows,
        "duplicates": result.duplicates_dropped,
        "normalized": result.table.num_rows,
    }
    quarantine = layout.quarantine(config.dataset_id, partition)
    rt.store.delete_prefix(quarantine)
    quarantine_key = f"{quarantine}/{PART}"
    if result.rejected.num_rows:
        rt.store.write_parquet(quarantine_key, result.rejected)
    current, _ = publish.read_current(rt.store, config.dataset_id)
    inputs = CheckInputs(
        table=result.table,
        rejected=result.rejected,
        rows_parsed=parsed.num_rows,
        published_schema=(current or {}).get("schema"),
        now=dt.datetime.now(dt.UTC),
    )
    results = evaluate(config, inputs)
    metadata = {
        RAW_META: json.dumps(raw).encode(),
        COUNTS_META: json.dumps(counts).encode(),
        CHECKS_META: json.dumps({r.name: r.as_dict() for r in results}, default=str).encode(),
    }
    staging = layout.staging(config.dataset_id, "normalized", partition)
    _write_stage(rt.store, staging, result.table.replace_schema_metadata(metadata))
    return NormalizeOutcome(result.table, result.rejected, counts, results, quarantine_key)


def blocking_failures(checks: dict[str, dict]) -> dict[str, dict]:
    return {name: r for name, r in checks.items() if not r["passed"] and r["severity"] == "error"}


def run_publish(rt: Runtime, config: DatasetConfig, partition: str) -> publish.PublishResult:
    normalized = _read_stage(rt.store, config, "normalized", partition, "normalized")
    raw = _meta(normalized, RAW_META)
    counts = _meta(normalized, COUNTS_META)
    checks = _meta(normalized, CHECKS_META)
    failed = blocking_failures(checks)
    if failed:
        summary = "; ".join(f"{name}: {r['detail']}" for name, r in failed.items())
        raise ChecksFailedError(
            f"dataset {config.dataset_id}, partition {partition}: not published, blocking checks "
            f"failed on the normalized data: {summary}. Fix the source or the contract and re-run "
            f"the partition (rejected rows are in {layout.quarantine(config.dataset_id, partition)}/).",
            failed,
        )
    inputs = {
        k: raw.get(k) for k in ("sha256", "bytes", "etag", "last_modified", "source", "fetched_at")
    }
    result = publish.publish(
        rt.store,
        rt.locks,
        config,
        partition,
        normalized.replace_schema_metadata(None),
        inputs,
        counts,
        checks,
    )
    if not result.committed:
        return result
    error = rt.notifier.notify(config.notify.sns_topic_arn, result.manifest)
    return dataclasses.replace(result, notification_error=error)


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
    current, _ = publish.read_current(rt.store, config.dataset_id)
    loaded = rt.warehouse.loaded_versions(config.dataset_id)
    versions, inserted, updated = [], 0, 0
    for manifest in publish.version_chain(rt.store, config.dataset_id, current):
        if manifest["version"] in loaded:
            continue
        rows = publish.read_event_rows(rt.store, manifest)
        if rows is None:
            rows = pa.table({})
        result = rt.warehouse.load(
            config.dataset_id,
            manifest["version"],
            manifest.get("partition"),
            rows,
            config.primary_keys,
            target.schema_,
            target.table,
        )
        if not result.already_loaded:
            versions.append(manifest["version"])
            inserted += result.inserted
            updated += result.updated
    return WarehouseOutcome(name, versions, inserted, updated)


def rebuild_warehouse(rt: Runtime, config: DatasetConfig) -> WarehouseOutcome:
    """Disaster recovery: drop the dataset's rows and ledger entries, reload from the store."""
    target = config.publish.postgres
    if rt.warehouse is None or target is None:
        raise StageError(
            f"dataset {config.dataset_id}: needs publish.postgres and INGEST_POSTGRES_URL"
        )
    rt.warehouse.forget(config.dataset_id, target.schema_, target.table)
    return run_warehouse(rt, config)
