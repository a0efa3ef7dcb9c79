"""The stages of a dataset (raw, parsed, normalized, published, warehouse), with or without Dagster.

Each stage reads its input from the object store, writes its output there (Parquet between
stages, never pickles) and returns the metadata a user wants to see. The Dagster assets and
`ingest run` are thin callers of these functions.
"""

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest_assets import eventstore, layout
from ingest_assets.arrays import repeated
from ingest_assets.configs import Secrets
from ingest_assets.contract import DatasetConfig
from ingest_assets.hashing import hex_columns
from ingest_assets.normalize import SYSTEM_COLUMNS
from ingest_assets.normalized_stage import (  # noqa: F401 - the normalized stage, re-exported
    NormalizeOutcome,
    normalized_meta,
    read_normalized,
    run_normalize,
    staged_parts,
)
from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import HIDDEN_COLUMNS, parse_batches, require_columns
from ingest_assets.sources import Fetched, fetch
from ingest_assets.staged_parts import content_named
from ingest_assets.staging import (  # noqa: F401 - what callers of the stages catch and read
    META,
    PART,
    PREVIEW_HEAD,
    RAW_META,
    ChecksFailedError,
    DiskFullError,
    Staged,
    StageError,
    _Head,
    input_fingerprint,
    nothing_published,
    reporting_full_disk,
)
from ingest_assets.windows import window_for
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime, local_runtime  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def run_raw(
    rt: Runtime, config: DatasetConfig, partition: str, secrets: Secrets | None = None
) -> dict[str, Any]:
    current, _ = eventstore.read_current(rt.store, config.dataset_id)
    fetched = fetch(config, secrets, window_for(config, partition, current))
    folder = layout.raw_latest(config.dataset_id, partition).rsplit("/", 1)[0]
    with reporting_full_disk(rt.store, config, "raw", partition, f"{folder}/") as store:
        if fetched.path is None:
            sha256, size = hashlib.sha256(fetched.content).hexdigest(), len(fetched.content)
            key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
            store.put_if_absent(key, fetched.content)
        else:
            key, sha256, size = _store_raw_file(store, config, partition, fetched)
        info = {
            "key": key,
            "sha256": sha256,
            "bytes": size,
            "source": fetched.source,
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
            "fetched_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        store.put(
            layout.raw_latest(config.dataset_id, partition), json.dumps(info, indent=2).encode()
        )
    return info


def _store_raw_file(
    store: ObjectStore, config: DatasetConfig, partition: str, fetched: Fetched
) -> tuple[str, str, int]:
    """A local source file into raw/, content-addressed, without loading it whole. A file of
    the size fetched last time is hashed first: bytes already stored are not copied again. Any
    other file is new bytes: it is hashed as it is copied (once), so the name is the sha256 of
    the bytes stored even if the file changes meanwhile."""
    assert fetched.path is not None
    latest = layout.raw_latest(config.dataset_id, partition)
    last_size = json.loads(store.get(latest)).get("bytes") if store.exists(latest) else None
    if last_size == fetched.path.stat().st_size:
        sha256, size = fetched.sha256_and_size()
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        if store.exists(key):
            return key, sha256, size
    near = layout.raw(config.dataset_id, partition, "pending", fetched.ext)
    folder = store.scratch_folder(near)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".raw-")
    os.close(fd)
    scratch = Path(name)
    try:
        sha256, size = fetched.copy_and_hash(scratch)
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        if not store.exists(key):  # the same bytes are stored once
            store.put_file(key, scratch, move=True)
    finally:
        scratch.unlink(missing_ok=True)
    return key, sha256, size


def _with_meta(batches, key: bytes, value: bytes, ctx: ParseContext, first: list[bool]):
    for batch in batches:
        if first[0]:
            require_columns(batch, ctx)
            first[0] = False
        yield batch.replace_schema_metadata({**(batch.schema.metadata or {}), key: value})


def run_parse(rt: Runtime, config: DatasetConfig, partition: str) -> tuple[Staged, dict[str, Any]]:
    """Parse the raw object into the parsed stage, in batches when the format streams. Its one
    part is written under a name of this run's and renamed over the last one: a reader (a
    concurrent run's normalize) gets the old part or the new, whole; nothing is removed first."""
    latest_key = layout.raw_latest(config.dataset_id, partition)
    if not rt.store.exists(latest_key):
        raise StageError(
            f"dataset {config.dataset_id}: no raw data for partition {partition!r}; "
            f"materialize {config.dataset_id}/raw first"
        )
    raw = json.loads(rt.store.get(latest_key))
    raw["fingerprint"] = input_fingerprint(config, raw["sha256"])
    key = f"{layout.staging(config.dataset_id, 'parsed', partition)}/{PART}"
    reused = _reuse(rt.store, key, raw["fingerprint"])
    if reused is not None:  # the same bytes under the same contract: parsed already
        return reused, raw
    with reporting_full_disk(rt.store, config, "parsed", partition, key) as store:
        rows, schema, head = _write_parsed(store, config, raw, key)
    if schema is None:
        raise StageError(
            f"dataset {config.dataset_id}: {raw['source']}: the parser {config.parser!r} gave "
            f"no table at all for partition {partition!r} (expected a table, even an empty one)"
        )
    pa.default_memory_pool().release_unused()
    return Staged(rows, schema, head.table(schema)), raw


def _write_parsed(
    store: ObjectStore, config: DatasetConfig, raw: dict[str, Any], key: str
) -> tuple[int, pa.Schema | None, _Head]:
    """The parser's batches into the parsed part at `key`, each tagged with the raw info."""
    context = ParseContext(config, raw["source"])
    raw_meta = json.dumps(raw).encode()
    with store.local_file(raw["key"]) as path:
        try:
            head = _Head(
                _with_meta(parse_batches(path, context), RAW_META, raw_meta, context, [True])
            )
            rows, schema = store.write_parquet_batches(key, head)
        except pa.ArrowInvalid as exc:  # Arrow reads this CSV differently from pandas
            log.warning(
                "dataset %s: %s: read whole by the general CSV reader (memory grows with the "
                "file): %s",
                config.dataset_id,
                raw["source"],
                str(exc).splitlines()[0],
            )
            whole = parse_batches(path, context, whole=True)
            head = _Head(_with_meta(whole, RAW_META, raw_meta, context, [True]))
            rows, schema = store.write_parquet_batches(key, head)
    return rows, schema, head


def _reuse(store: ObjectStore, key: str, fingerprint: str) -> "Staged | None":
    """The staged output at `key` if it was made from this fingerprint (else None)."""
    if not store.exists(key):
        return None
    schema = store.parquet_schema(key)
    made_from = json.loads((schema.metadata or {}).get(RAW_META, b"{}"))
    if made_from.get("fingerprint") != fingerprint:
        return None
    head = next(store.iter_parquet(key, batch_rows=PREVIEW_HEAD), schema.empty_table())
    return Staged(store.parquet_rows(key), schema, head)


def source_drift(rt: Runtime, config: DatasetConfig, parsed: Staged) -> dict[str, list[str]]:
    """Source columns added or gone since the published version (reported at parse time; the
    schema_drift check decides whether it blocks)."""
    current, _ = eventstore.read_current(rt.store, config.dataset_id)
    if not current:
        return {"added": [], "missing": []}
    platform = {*SYSTEM_COLUMNS, *config.transform.metadata, "frequency", *HIDDEN_COLUMNS}
    published = set(current.schema) - platform
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
                table.add_column(0, "partition", repeated(name, table.num_rows, pa.string()))
            )
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def blocking_failures(checks: dict[str, dict]) -> dict[str, dict]:
    return {name: r for name, r in checks.items() if not r["passed"] and r["severity"] == "error"}


def run_publish(rt: Runtime, config: DatasetConfig, partition: str) -> eventstore.PublishResult:
    staging, meta = normalized_meta(rt.store, config, partition)
    raw, counts, checks = meta["raw"], meta["counts"], meta["checks"]
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
        k: raw.get(k)
        for k in ("sha256", "bytes", "etag", "last_modified", "source", "fetched_at", "fingerprint")
    }
    current, _ = eventstore.read_current(rt.store, config.dataset_id)
    published = functools.partial(_published_since, rt.store, config, current)
    events = f"{layout.events(config.dataset_id)}/"
    with reporting_full_disk(rt.store, config, "published", partition, events, published) as store:
        if current and raw.get("fingerprint") and current.fingerprint == raw["fingerprint"]:
            return _bring_up_to_date(rt, store, config, counts["normalized"])
        parts = tuple(
            (part["key"], part["rows"] if content_named(part["key"]) and "rows" in part else -1)
            for part in staged_parts(meta, staging)
        )
        inputs["parts"] = [key for key, _ in parts]  # what this version is published from
        return eventstore.publish(
            store,
            rt.locks,
            config,
            partition,
            eventstore.StagedRows(store, parts),
            inputs,
            counts,
            checks,
            notify=notifier(rt, config),
        )


def _bring_up_to_date(
    rt: Runtime, store: ObjectStore, config: DatasetConfig, rows: int
) -> eventstore.PublishResult:
    """`current` was published from this very input: every row is there, unchanged; what a
    run before left undone (derived files, follow-ups) is finished all the same."""
    current, errors = eventstore.bring_up_to_date(store, rt.locks, config, notifier(rt, config))
    assert current is not None
    return eventstore.PublishResult(
        dataset_id=config.dataset_id,
        version=current.version,
        parent=current.version,
        committed=False,
        rows_added=0,
        rows_revised=0,
        rows_repeated=rows,
        manifest=current,
        follow_up_errors=tuple(errors),
    )


def _published_since(
    store: ObjectStore, config: DatasetConfig, before: "eventstore.Manifest | None"
) -> str:
    """Whether a publish that failed had swapped `current` first (then its version is
    published, and what it left undone is finished by the next run), in words."""
    was = before.version if before else None
    try:
        now, _ = eventstore.read_current(store, config.dataset_id)
    except Exception as exc:  # noqa: BLE001 - the message is what matters here
        return f"whether anything was published could not be read: {exc}"
    if now is None or now.version == was:
        return nothing_published(was)
    return (
        f"version {now.version} is published all the same (it is current; what it left "
        "undone is finished by the next run)"
    )


def notifier(rt: Runtime, config: DatasetConfig):
    """The version's notification (SNS, or a log line without a topic), deduplicated by
    dataset and version."""
    return lambda manifest: rt.notifier.notify(config.notify.sns_topic_arn, manifest.to_dict())


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
        rows = (hex_columns(rt.store.read_parquet(key)) for key in manifest.file_keys)
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


def rebuild_warehouse(rt: Runtime, config: DatasetConfig) -> WarehouseOutcome:
    """Disaster recovery: drop the dataset's rows and ledger entries, reload from the store."""
    target = config.publish.postgres
    if rt.warehouse is None or target is None:
        raise StageError(
            f"dataset {config.dataset_id}: needs publish.postgres and INGEST_POSTGRES_URL"
        )
    rt.warehouse.forget(config.dataset_id, target.schema_, target.table)
    return run_warehouse(rt, config)
