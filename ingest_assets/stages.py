"""The stages of a dataset (raw, parsed, normalized, published, warehouse), with or without Dagster.

Each stage reads its input from the object store, writes its output there (Parquet between
stages, never pickles) and returns the metadata a user wants to see. The Dagster assets and
`ingest run` are thin callers of these functions.
"""

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout, publish
from ingest_assets.arrays import repeated
from ingest_assets.checks import CheckInputs, CheckResult, evaluate, needed_columns
from ingest_assets.configs import Secrets
from ingest_assets.contract import DatasetConfig
from ingest_assets.dedupe import KeyTracker, judge
from ingest_assets.normalize import (
    KEY_HASH,
    SYSTEM_COLUMNS,
    conflict_reason,
    normalize,
    rejected_rows,
)
from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import (
    CELLS_META,
    HIDDEN_COLUMNS,
    ROW_COLUMN,
    parse_batches,
    require_columns,
)
from ingest_assets.publish import high_water_marks
from ingest_assets.sources import Fetched, fetch
from ingest_assets.windows import window_for
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime, local_runtime  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def _arrow_allocator() -> None:
    """Arrow's buffers from jemalloc rather than its default mimalloc, unless
    ARROW_DEFAULT_MEMORY_POOL says otherwise. Every run is a fresh process, and mimalloc's first
    allocations there cost up to 0.6 s of a million-row parse (1.36 s cold vs 0.70 s with
    jemalloc); over whole runs of 1M rows, alternated, about 5% less work (bench/README.md)."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_arrow_allocator()

META = "meta.json"  # beside a staged normalized partition: raw info, counts, checks
RAW_META = b"ingest.raw"
PART = "part-00000.parquet"


class StageError(Exception):
    """A stage cannot run (its input is missing) or its output fails the contract."""


class ChecksFailedError(StageError):
    """The staged normalized partition failed a check of severity `error`: it is not published."""

    def __init__(self, message: str, failed: dict[str, dict]):
        super().__init__(message)
        self.failed = failed


PREVIEW_HEAD = 20


@dataclass(frozen=True)
class Staged:
    """A stage's output as the UI shows it: row count, schema and the first rows (the data
    itself stays in the store, read in batches)."""

    num_rows: int
    schema: pa.Schema
    head: pa.Table

    @property
    def column_names(self) -> list[str]:
        return self.schema.names


class _Head:
    """Passes batches through, keeping the first rows for the preview."""

    def __init__(self, batches):
        self.batches, self.tables, self.rows = batches, [], 0

    def __iter__(self):
        for batch in self.batches:
            if self.rows < PREVIEW_HEAD:
                self.tables.append(batch.slice(0, PREVIEW_HEAD - self.rows))
                self.rows += self.tables[-1].num_rows
            yield batch

    def table(self, schema: pa.Schema) -> pa.Table:
        if not self.tables:
            return schema.empty_table()
        return pa.concat_tables(self.tables, promote_options="permissive")


@dataclass(frozen=True)
class NormalizeOutcome:
    staged: Staged  # the normalized rows (with `_row`), as the UI shows them
    counts: dict[str, int]
    checks: list[CheckResult]
    quarantine_key: str
    high_water_marks: dict[str, str]
    store: ObjectStore
    key: str  # of the staged normalized rows

    @property
    def table(self) -> pa.Table:
        """The accepted rows, read whole from the store (for small data and tests)."""
        return _visible(self.store.read_parquet(self.key))

    @property
    def rejected(self) -> pa.Table:
        if self.store.exists(self.quarantine_key):
            return self.store.read_parquet(self.quarantine_key)
        return pa.table({})


def _visible(table: pa.Table) -> pa.Table:
    hidden = [c for c in HIDDEN_COLUMNS if c in table.column_names]
    return table.drop_columns(hidden) if hidden else table


def read_normalized(
    rt: Runtime, config: DatasetConfig, partition: str, columns: list[str] | None = None
) -> pa.Table:
    """The staged normalized rows (only `columns` of them, for a large partition)."""
    key = _stage_key(rt.store, config, "normalized", partition, "normalized")
    if columns is not None:
        present = set(rt.store.parquet_schema(key).names)
        return rt.store.read_parquet(key, columns=[c for c in columns if c in present])
    return _visible(rt.store.read_parquet(key))


def _stage_key(
    store: ObjectStore, config: DatasetConfig, stage: str, partition: str, before: str
) -> str:
    key = f"{layout.staging(config.dataset_id, stage, partition)}/{PART}"
    if not store.exists(key):
        raise StageError(
            f"dataset {config.dataset_id}: no {stage} data for partition {partition!r}; "
            f"materialize {config.dataset_id}/{before} first"
        )
    return key


def run_raw(
    rt: Runtime, config: DatasetConfig, partition: str, secrets: Secrets | None = None
) -> dict[str, Any]:
    current, _ = publish.read_current(rt.store, config.dataset_id)
    fetched = fetch(config, secrets, window_for(config, partition, current))
    if fetched.path is None:
        sha256, size = hashlib.sha256(fetched.content).hexdigest(), len(fetched.content)
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        rt.store.put_if_absent(key, fetched.content)
    else:
        key, sha256, size = _store_raw_file(rt.store, config, partition, fetched)
    info = {
        "key": key,
        "sha256": sha256,
        "bytes": size,
        "source": fetched.source,
        "etag": fetched.etag,
        "last_modified": fetched.last_modified,
        "fetched_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    rt.store.put(
        layout.raw_latest(config.dataset_id, partition), json.dumps(info, indent=2).encode()
    )
    return info


def _store_raw_file(
    store: ObjectStore, config: DatasetConfig, partition: str, fetched: Fetched
) -> tuple[str, str, int]:
    """A local source file into raw/, content-addressed, without loading it whole. Bytes
    already stored are only hashed; new ones are hashed again as they are copied, so the name
    is the sha256 of the bytes stored even if the file changes meanwhile."""
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
    """Parse the raw object into the parsed stage, in batches when the format streams."""
    latest_key = layout.raw_latest(config.dataset_id, partition)
    if not rt.store.exists(latest_key):
        raise StageError(
            f"dataset {config.dataset_id}: no raw data for partition {partition!r}; "
            f"materialize {config.dataset_id}/raw first"
        )
    raw = json.loads(rt.store.get(latest_key))
    raw["fingerprint"] = input_fingerprint(config, raw["sha256"])
    context = ParseContext(config, raw["source"])
    prefix = layout.staging(config.dataset_id, "parsed", partition)
    reused = _reuse(rt.store, f"{prefix}/{PART}", raw["fingerprint"])
    if reused is not None:  # the same bytes under the same contract: parsed already
        return reused, raw
    rt.store.delete_prefix(prefix)
    raw_meta = json.dumps(raw).encode()
    with rt.store.local_file(raw["key"]) as path:
        try:
            head = _Head(
                _with_meta(parse_batches(path, context), RAW_META, raw_meta, context, [True])
            )
            rows, schema = rt.store.write_parquet_batches(f"{prefix}/{PART}", head)
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
            rows, schema = rt.store.write_parquet_batches(f"{prefix}/{PART}", head)
    pa.default_memory_pool().release_unused()
    return Staged(rows, schema, head.table(schema)), raw


def input_fingerprint(config: DatasetConfig, raw_sha256: str) -> str:
    """What the parsed, normalized and published data of a partition depend on: the raw bytes,
    the whole contract, the code that turns them into rows (and a plugin's source). Equal
    fingerprints, equal outputs."""
    plugins = [
        _source_hash(name) for name in (config.parser, config.normalize.plugin) if ":" in name
    ]
    text = json.dumps(
        [raw_sha256, config.model_dump(mode="json"), _code_hash(), plugins],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


DATA_MODULES = (
    "normalize.py",
    "hashing.py",
    "dedupe.py",
    "keyindex.py",
    "contract.py",
    "stages.py",
)
# Libraries whose upgrade may change the rows: parsing, typing, time zones
DATA_LIBRARIES = ("pyarrow", "pandas", "numpy", "tzdata", "python-calamine", "feedparser")


@functools.cache
def _code_hash() -> str:
    """The source of the modules that decide parsed and normalized rows: an upgrade (or a local
    edit) that changes them makes every input new again."""
    package = Path(__file__).parent
    files = sorted([*package.glob("parsers/*.py"), *(package / n for n in DATA_MODULES)])
    libraries = [f"{name}=={_version(name)}" for name in DATA_LIBRARIES]
    digest = hashlib.sha256(" ".join([publish.CODE_VERSION, *libraries]).encode())
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


def _source_hash(reference: str) -> str:
    try:
        module = importlib.import_module(reference.partition(":")[0])
    except ImportError:  # the stage that loads the plugin reports it, naming dataset and field
        return reference
    source = Path(module.__file__ or "")
    return hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else reference


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
                table.add_column(0, "partition", repeated(name, table.num_rows, pa.string()))
            )
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def _normalized_batches(
    store: ObjectStore, parsed_key: str, config: DatasetConfig, day: dt.date, state: dict
):
    """Normalize the parsed rows batch by batch: accepted rows (with `_row`) are yielded,
    rejected ones collected into state["rejected"], keys into state["keys"]."""
    if config.normalize.plugin not in ("default", "bcra_infomondia"):
        # a plugin may look across rows (fill, diff, pivot): it gets the whole partition
        yield from _normalize_one(store.read_parquet(parsed_key), config, day, state)
        return
    empty = True
    for batch in store.iter_parquet(parsed_key):
        empty = False
        yield from _normalize_one(batch, config, day, state)
    if empty:
        yield from _normalize_one(
            store.parquet_schema(parsed_key).empty_table(), config, day, state
        )


def _normalize_one(batch: pa.Table, config: DatasetConfig, day: dt.date, state: dict):
    result = normalize(batch, config, day)
    state["parsed"] += batch.num_rows
    state["duplicates"] += result.duplicates_dropped
    if result.rejected.num_rows:
        state["rejected"].append(result.rejected)
    state["keys"].add(result.table[KEY_HASH])
    state["conflicting"] |= result.conflicting_keys
    state["hwm"] = high_water_marks(config, result.table, state["hwm"])
    yield result.table


@dataclass
class _NormalizedData:
    staged: Staged
    counts: dict[str, int]
    high_water_marks: dict[str, str]
    rejected_head: pa.Table


def run_normalize(
    rt: Runtime, config: DatasetConfig, partition: str, today: dt.date | None = None
) -> NormalizeOutcome:
    """Type, key and check the parsed rows, batch by batch; rejected rows go to quarantine.
    Parsed data with the fingerprint of the staged normalized data is not normalized again
    (its checks are: they depend on the published version and the clock)."""
    store = rt.store
    parsed_key = _stage_key(store, config, "parsed", partition, "parsed")
    raw = _raw_of(store, config, partition, parsed_key)
    staging = layout.staging(config.dataset_id, "normalized", partition)
    key, meta_key = f"{staging}/{PART}", f"{staging}/{META}"
    quarantine_key = f"{layout.quarantine(config.dataset_id, partition)}/{PART}"
    day = today or dt.datetime.now(dt.UTC).date()
    data = _reuse_normalized(store, key, meta_key, quarantine_key, raw, day)
    if data is None:
        data = _normalize_partition(store, config, parsed_key, key, quarantine_key, day)
    schema = data.staged.schema
    current, _ = publish.read_current(store, config.dataset_id)
    visible_schema = pa.schema([f for f in schema if f.name not in HIDDEN_COLUMNS])
    needed = [c for c in needed_columns(config) if c in visible_schema.names]
    rows = data.counts["normalized"]
    inputs = CheckInputs(
        table=store.read_parquet(key, columns=needed)
        if needed
        else pa.table({"_": pa.nulls(rows)}).drop_columns(["_"]),
        rejected=data.rejected_head,
        rows_parsed=data.counts["parsed"],
        published_schema=(current or {}).get("schema"),
        now=dt.datetime.now(dt.UTC),
        schema=visible_schema,
        rows_rejected=data.counts["rejected"],
        repeated_keys=0,
    )
    results = evaluate(config, inputs)
    meta = {
        "day": day.isoformat(),  # of collection_date: reused the same day only
        "raw": raw,
        "counts": data.counts,
        "checks": {r.name: r.as_dict() for r in results},
        "high_water_marks": data.high_water_marks,
    }
    store.put(meta_key, json.dumps(meta, default=str).encode())
    pa.default_memory_pool().release_unused()
    return NormalizeOutcome(
        data.staged, data.counts, results, quarantine_key, data.high_water_marks, store, key
    )


def _raw_of(store: ObjectStore, config: DatasetConfig, partition: str, parsed_key: str) -> dict:
    """The raw info the parsed data was made from, refreshed by the latest fetch of the same
    bytes (its time, ETag and Last-Modified) when parsing was skipped for it."""
    raw = json.loads((store.parquet_schema(parsed_key).metadata or {}).get(RAW_META, b"{}"))
    latest_key = layout.raw_latest(config.dataset_id, partition)
    if store.exists(latest_key):
        latest = json.loads(store.get(latest_key))
        if latest.get("sha256") == raw.get("sha256"):
            return {**latest, "fingerprint": raw.get("fingerprint")}
    return raw


def _reuse_normalized(
    store: ObjectStore, key: str, meta_key: str, quarantine_key: str, raw: dict, day: dt.date
) -> "_NormalizedData | None":
    fingerprint = raw.get("fingerprint")
    if not fingerprint or not store.exists(meta_key) or not store.exists(key):
        return None
    meta = json.loads(store.get(meta_key))
    if meta.get("raw", {}).get("fingerprint") != fingerprint or meta.get("day") != day.isoformat():
        return None
    schema = store.parquet_schema(key)
    head = next(store.iter_parquet(key, batch_rows=PREVIEW_HEAD), schema.empty_table())
    rejected = (
        store.read_parquet(quarantine_key).slice(0, 20)
        if store.exists(quarantine_key)
        else pa.table({})
    )
    counts = meta["counts"]
    staged = Staged(counts["normalized"], schema, head)
    return _NormalizedData(staged, counts, meta.get("high_water_marks", {}), rejected)


def _normalize_partition(
    store: ObjectStore,
    config: DatasetConfig,
    parsed_key: str,
    key: str,
    quarantine_key: str,
    day: dt.date,
) -> _NormalizedData:
    store.delete_prefix(key.rsplit("/", 1)[0])
    state = {
        "parsed": 0,
        "duplicates": 0,
        "rejected": [],
        "keys": KeyTracker(),
        "conflicting": frozenset(),
        "hwm": {},
    }
    head = _Head(_normalized_batches(store, parsed_key, config, day, state))
    rows, schema = store.write_parquet_batches(key, head)
    conflicts, repeats = _dedupe_across_batches(
        store, key, state["keys"], state["conflicting"], parsed_key
    )
    rows -= repeats.size + conflicts.num_rows
    if conflicts.num_rows:  # rows left out after the batches were counted: marks again
        state["hwm"] = {}
        for batch in store.iter_parquet(key):
            state["hwm"] = high_water_marks(config, batch, state["hwm"])
    rejected = state["rejected"] + ([conflicts] if conflicts.num_rows else [])
    store.delete_prefix(quarantine_key.rsplit("/", 1)[0])
    rows_rejected = sum(t.num_rows for t in rejected)
    all_rejected = pa.concat_tables(rejected, promote_options="permissive") if rejected else None
    if all_rejected is not None:
        store.write_parquet(quarantine_key, all_rejected)
    counts = {
        "parsed": state["parsed"],
        "rejected": rows_rejected,
        "duplicates": state["duplicates"] + int(repeats.size),
        "normalized": rows,
    }
    rejected_head = all_rejected.slice(0, 20) if all_rejected is not None else pa.table({})
    return _NormalizedData(
        Staged(rows, schema, head.table(schema)), counts, state["hwm"], rejected_head
    )


def _dedupe_across_batches(
    store: ObjectStore,
    key: str,
    tracker: KeyTracker,
    conflicting: frozenset[str],
    parsed_key: str,
) -> tuple[pa.Table, np.ndarray]:
    """Keys repeated across batches (rare): drop exact repeats, quarantine conflicts, rewrite
    the staged rows without them. Returns (the quarantined rows, the dropped positions)."""
    candidates = tracker.candidates(conflicting)
    if candidates.size == 0:
        return pa.table({}), np.zeros(0, dtype=np.int64)
    rows = _take_positions(store, key, candidates)
    repeats, rejected, groups = judge(rows, candidates, conflicting)
    drop = np.union1d(repeats, rejected)
    if drop.size == 0:
        return pa.table({}), repeats
    in_conflict = rows.filter(pa.array(np.isin(candidates, rejected)))
    row_of = dict(zip(candidates.tolist(), rows[ROW_COLUMN].to_pylist(), strict=True))
    reason_of = {}
    for key_hash, row in zip(
        in_conflict[KEY_HASH].to_pylist(), in_conflict[ROW_COLUMN].to_pylist(), strict=True
    ):
        reason_of[row] = conflict_reason(", ".join(str(row_of[p]) for p in groups[key_hash]))
    # quarantined as the source has them: the parsed rows (text, cells), by source row number
    source = _parsed_rows(store, parsed_key, list(reason_of))
    count = source.num_rows
    reasons = [reason_of[row] for row in source[ROW_COLUMN].to_pylist()]
    cells = json.loads((store.parquet_schema(parsed_key).metadata or {}).get(CELLS_META, b"{}"))
    conflicts = rejected_rows(
        source, reasons, ["conflicting_duplicate"] * count, [None] * count, cells
    )
    store.write_parquet_batches(key, _without_positions(store, key, drop))
    return conflicts, repeats


def _parsed_rows(store: ObjectStore, parsed_key: str, rows: list[int]) -> pa.Table:
    wanted = pa.array(rows, pa.int64())
    parts = [
        batch.filter(pc.is_in(batch[ROW_COLUMN], value_set=wanted))
        for batch in store.iter_parquet(parsed_key)
    ]
    return pa.concat_tables(parts).combine_chunks()


def _take_positions(store: ObjectStore, key: str, positions: np.ndarray) -> pa.Table:
    parts, start = [], 0
    for batch in store.iter_parquet(key):
        end = start + batch.num_rows
        local = positions[(positions >= start) & (positions < end)] - start
        if local.size:
            parts.append(batch.take(pa.array(local)))
        start = end
    return pa.concat_tables(parts)


def _without_positions(store: ObjectStore, key: str, positions: np.ndarray):
    start = 0
    for batch in store.iter_parquet(key):
        end = start + batch.num_rows
        keep = ~np.isin(np.arange(start, end), positions)
        start = end
        yield batch.filter(pa.array(keep))


def blocking_failures(checks: dict[str, dict]) -> dict[str, dict]:
    return {name: r for name, r in checks.items() if not r["passed"] and r["severity"] == "error"}


def run_publish(rt: Runtime, config: DatasetConfig, partition: str) -> publish.PublishResult:
    key = _stage_key(rt.store, config, "normalized", partition, "normalized")
    meta_key = f"{layout.staging(config.dataset_id, 'normalized', partition)}/{META}"
    if not rt.store.exists(meta_key):
        raise StageError(
            f"dataset {config.dataset_id}: the normalized data of partition {partition!r} is "
            f"incomplete (no {META}); materialize {config.dataset_id}/normalized again"
        )
    meta = json.loads(rt.store.get(meta_key))
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
    current, _ = publish.read_current(rt.store, config.dataset_id)
    if (
        current
        and raw.get("fingerprint")
        and current["inputs"].get("fingerprint") == raw["fingerprint"]
    ):
        # `current` was published from this very input: every row is there, unchanged
        with rt.locks.hold(config.lock_key, config.lock.ttl_s):
            publish.heal(rt.store, config, current)
        return publish.PublishResult(
            dataset_id=config.dataset_id,
            version=current["version"],
            parent=current["version"],
            committed=False,
            rows_added=0,
            rows_revised=0,
            rows_repeated=counts["normalized"],
            manifest=current,
        )
    result = publish.publish(
        rt.store,
        rt.locks,
        config,
        partition,
        publish.StagedRows(rt.store, key),
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
        rows = (rt.store.read_parquet(key) for key in manifest["files"])  # a month at a time
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
