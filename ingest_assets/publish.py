"""Exactly-once publishing to the event store: diff, immutable event version, CAS pointer swap.

1. Read `current/manifest.json` and its ETag; bring the key index and the projections up to it
   (they are derived from the immutable events, so a crash that left them behind heals here).
2. Anti-join the normalized rows on `key_hash`: unknown keys are inserts, known keys with a new
   `row_hash` are updates (unless `incremental.revisions: ignore`), the rest cost nothing.
3. Write the event's data and manifest (immutable), then replace `current` only if it still has
   the ETag read in 1. A writer that lost the race removes its event and changes nothing.

Pure of Dagster: takes an ObjectStore and a lock provider.
"""

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.normalize import KEY_HASH, ROW_HASH
from ingest_resources.locks import LeaseLost
from ingest_resources.object_store import CasConflict, ObjectStore

CODE_VERSION = "ingest-0.1.0"
VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"
INDEX_VERSION_META = b"ingest.version"
OP, VERSION = "op", "version"


class PublishConflict(Exception):
    """Another writer moved `current` first; this writer's version was withdrawn."""


class IncompatibleSchema(Exception):
    """A published column would change to a type its earlier versions cannot be read as."""


SAFE_WIDENINGS = {("int64", "double")}


def check_type_changes(
    dataset_id: str, published: dict[str, str] | None, schema: pa.Schema
) -> None:
    """Refuse, before anything is written, a type change the event history cannot absorb."""
    for field_ in schema:
        old = (published or {}).get(field_.name)
        new = str(field_.type)
        if (
            old is not None
            and old != new
            and (old, new) not in SAFE_WIDENINGS
            and not _null_type(old, new)
        ):
            raise IncompatibleSchema(
                f"dataset {dataset_id}: column {field_.name!r} was {old} in the published versions and "
                f"is now {new}; only int64 -> double widens in place. Keep the old type (or cast in a "
                "normalize plugin), or publish under a new dataset_id"
            )


def _null_type(old: str, new: str) -> bool:
    return "null" in (old, new)


class StaleWriter(PublishConflict):
    """This writer's lease was lost or a newer lease holder already published (fencing)."""


FAULT_ENV = "INGEST_FAULT_INJECT"


IO_THREADS = 8  # object-store requests in flight at once (S3 latency dominates many small writes)


def in_parallel(function: Callable[[Any], None], items: list) -> None:
    """Run `function` over `items` on a small thread pool; the first error is raised."""
    if len(items) <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(max_workers=IO_THREADS) as pool:
        for future in [pool.submit(function, item) for item in items]:
            future.result()


def failpoint(name: str) -> None:
    """Crash here if INGEST_FAULT_INJECT names this point (tests kill a publisher mid-way)."""
    if os.environ.get(FAULT_ENV) == name:
        os._exit(137)


class Locks(Protocol):
    def hold(self, key: str, ttl_s: float, wait_s: float | None = None): ...  # yields a Lease


@dataclass(frozen=True)
class PublishResult:
    dataset_id: str
    version: str | None  # the current version after this publish
    parent: str | None
    committed: bool  # False: nothing new, no version written
    rows_added: int
    rows_revised: int
    rows_repeated: int
    manifest: dict[str, Any] | None
    notification_error: str | None = None


@dataclass
class Prepared:
    """An event version written to the store but not yet pointed to by `current`."""

    config: DatasetConfig
    parent_manifest: dict | None
    parent_etag: str | None
    index: pa.Table
    rows: pa.Table  # the event rows (inserts and updates), with op and version
    repeated: int
    manifest: dict | None = None
    files: list[str] = field(default_factory=list)

    @property
    def version(self) -> str | None:
        return self.manifest["version"] if self.manifest else None


# --- reading the published state ---------------------------------------------------------------


def read_current(store: ObjectStore, dataset_id: str) -> tuple[dict | None, str | None]:
    found = store.get_with_etag(layout.current(dataset_id))
    if found is None:
        return None, None
    data, etag = found
    return json.loads(data), etag


def read_manifest(store: ObjectStore, dataset_id: str, version: str) -> dict:
    return json.loads(store.get(layout.manifest(dataset_id, version)))


def version_chain(
    store: ObjectStore, dataset_id: str, head: dict | None, stop: str | None = None
) -> list[dict]:
    """Manifests from just after `stop` (or the first version) up to `head`, oldest first."""
    chain = []
    manifest = head
    while manifest is not None and manifest["version"] != stop:
        chain.append(manifest)
        parent = manifest.get("parent_version")
        manifest = read_manifest(store, dataset_id, parent) if parent else None
    if stop is not None and manifest is None:
        raise KeyError(stop)
    return chain[::-1]


def read_event_rows(
    store: ObjectStore, manifest: dict, columns: list[str] | None = None
) -> pa.Table | None:
    tables = [store.read_parquet(key) for key in manifest["files"]]
    if not tables:
        return None
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.select(columns) if columns else table


def latest_rows(tables: list[pa.Table]) -> pa.Table | None:
    """Concatenate in order and keep the last row of every key_hash (later versions win)."""
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return None
    combined = pa.concat_tables(tables, promote_options="permissive")
    order = pa.array(range(combined.num_rows), pa.int64())
    combined = combined.append_column("__seq", order)
    last = combined.group_by(KEY_HASH, use_threads=False).aggregate([("__seq", "max")])
    keep = pc.is_in(order, value_set=last["__seq_max"])
    return combined.filter(keep).drop_columns(["__seq"])


# --- the key index --------------------------------------------------------------------------------

INDEX_SCHEMA = pa.schema([(KEY_HASH, pa.string()), (ROW_HASH, pa.string()), (VERSION, pa.string())])


def _empty_index() -> pa.Table:
    return INDEX_SCHEMA.empty_table()


def load_index(store: ObjectStore, dataset_id: str, current: dict | None) -> tuple[pa.Table, bool]:
    """The key index as of `current`, and whether the stored index had to be caught up."""
    if current is None:
        return _empty_index(), False
    key = layout.index(dataset_id)
    index, indexed = _empty_index(), None
    if store.exists(key):
        stored = store.read_parquet(key)
        index = stored.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
        indexed = (stored.schema.metadata or {}).get(INDEX_VERSION_META, b"").decode() or None
    if indexed == current["version"]:
        return index, False
    try:
        missing = version_chain(store, dataset_id, current, stop=indexed)
    except KeyError:  # the stored index is from a version not in the chain: rebuild it
        index, missing = _empty_index(), version_chain(store, dataset_id, current)
    for manifest in missing:
        rows = read_event_rows(store, manifest, [KEY_HASH, ROW_HASH, VERSION])
        index = _merge_index(index, rows)
    return index, True


def _merge_index(index: pa.Table, rows: pa.Table | None) -> pa.Table:
    if rows is None or rows.num_rows == 0:
        return index
    rows = rows.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    kept = index.filter(pc.invert(pc.is_in(index[KEY_HASH], value_set=rows[KEY_HASH])))
    return pa.concat_tables([kept, rows])


def _write_index(store: ObjectStore, dataset_id: str, index: pa.Table, version: str) -> None:
    index = index.sort_by(KEY_HASH).replace_schema_metadata({INDEX_VERSION_META: version.encode()})
    store.write_parquet(layout.index(dataset_id), index)


# --- projections ---------------------------------------------------------------------------------


def _time_column(config: DatasetConfig, table: pa.Table) -> str:
    name = config.normalize.time_column
    return name if name in table.column_names else "collection_date"


def _year_month(table: pa.Table, column: str) -> tuple[pa.Array, pa.Array]:
    values = table[column]
    return pc.year(values), pc.month(values)


def _series_of(config: DatasetConfig, table: pa.Table) -> pa.ChunkedArray | pa.Array:
    if SERIES_CODE in table.column_names:
        return pc.fill_null(table[SERIES_CODE], "_unknown")
    return pa.array([config.dataset_id] * table.num_rows, pa.string())


def _windows(
    config: DatasetConfig, rows: pa.Table
) -> dict[tuple[str, int | None, int | None], pa.Table]:
    """Split rows by (series, year, month) of the time column."""
    years, months = _year_month(rows, _time_column(config, rows))
    keyed = pa.table(
        {
            "s": _series_of(config, rows),
            "y": years,
            "m": months,
            "i": pa.array(range(rows.num_rows)),
        }
    )
    groups = keyed.group_by(["s", "y", "m"], use_threads=False).aggregate([("i", "list")])
    return {
        (s, y, m): rows.take(pa.array(idx, pa.int64()))
        for s, y, m, idx in zip(
            *(groups[c].to_pylist() for c in ("s", "y", "m", "i_list")), strict=True
        )
    }


def _apply_projections(store: ObjectStore, config: DatasetConfig, rows: pa.Table | None) -> None:
    if rows is None or rows.num_rows == 0:
        return
    time_column = _time_column(config, rows)
    existing_keys = set(store.list(layout.projections(config.dataset_id)))

    def upsert(item: tuple[tuple[str, int | None, int | None], pa.Table]) -> None:
        (series, year, month), window = item
        key = layout.projection(config.dataset_id, series, year, month)
        existing = store.read_parquet(key) if key in existing_keys else None
        merged = latest_rows([existing, window.drop_columns([OP])])
        merged = merged.sort_by([(time_column, "ascending"), (KEY_HASH, "ascending")])
        store.write_parquet(key, merged)

    in_parallel(upsert, list(_windows(config, rows).items()))


def _projection_version(store: ObjectStore, dataset_id: str) -> str | None:
    key = layout.projections_state(dataset_id)
    return json.loads(store.get(key))["version"] if store.exists(key) else None


def refresh_projections(store: ObjectStore, config: DatasetConfig, current: dict | None) -> int:
    """Bring projections up to `current` by re-applying missing events (idempotent). Returns how many."""
    if current is None:
        return 0
    done = _projection_version(store, config.dataset_id)
    if done == current["version"]:
        return 0
    try:
        missing = version_chain(store, config.dataset_id, current, stop=done)
    except KeyError:
        store.delete_prefix(layout.projections(config.dataset_id))
        missing = version_chain(store, config.dataset_id, current)
    for manifest in missing:
        _apply_projections(store, config, read_event_rows(store, manifest))
    _set_projection_version(store, config.dataset_id, current["version"])
    return len(missing)


def _set_projection_version(store: ObjectStore, dataset_id: str, version: str) -> None:
    store.put(layout.projections_state(dataset_id), json.dumps({"version": version}).encode())


# --- diff, prepare, commit -------------------------------------------------------------------------


def diff(normalized: pa.Table, index: pa.Table, revisions: str) -> tuple[pa.Table, pa.Table, int]:
    """(inserts, updates, repeats) of the normalized rows against the index."""
    known = index.select([KEY_HASH, ROW_HASH]).rename_columns([KEY_HASH, "__known_row_hash"])
    position = pa.array(range(normalized.num_rows), pa.int64())
    probe = pa.table(
        {KEY_HASH: normalized[KEY_HASH], ROW_HASH: normalized[ROW_HASH], "__pos": position}
    )
    joined = probe.join(known, keys=KEY_HASH, join_type="left outer", use_threads=False).sort_by(
        "__pos"
    )
    is_new = pc.is_null(joined["__known_row_hash"])
    changed = pc.and_(pc.invert(is_new), pc.not_equal(joined[ROW_HASH], joined["__known_row_hash"]))
    if revisions == "ignore":
        changed = pc.and_(changed, pa.scalar(False))
    inserts = normalized.take(pc.filter(joined["__pos"], is_new))
    updates = normalized.take(pc.filter(joined["__pos"], changed))
    repeats = normalized.num_rows - inserts.num_rows - updates.num_rows
    return inserts, updates, repeats


def new_version(now: dt.datetime, parent: str | None) -> str:
    version = now.astimezone(dt.UTC).strftime(VERSION_FORMAT)
    if parent and version <= parent:  # clocks differ between writers: stay strictly increasing
        bumped = dt.datetime.strptime(parent, VERSION_FORMAT) + dt.timedelta(microseconds=1)
        version = bumped.strftime(VERSION_FORMAT)
    return version


def schema_hash(schema: pa.Schema) -> str:
    text = "\n".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()


def high_water_marks(
    config: DatasetConfig, rows: pa.Table, previous: dict[str, str] | None = None
) -> dict[str, str]:
    """Newest time per series (ISO text), merged with `previous`."""
    marks = dict(previous or {})
    time_column = config.normalize.time_column
    if rows.num_rows == 0 or time_column not in rows.column_names:
        return marks
    keyed = pa.table({"s": _series_of(config, rows), "t": rows[time_column]})
    grouped = keyed.group_by("s", use_threads=False).aggregate([("t", "max")])
    for series, newest in zip(grouped["s"].to_pylist(), grouped["t_max"].to_pylist(), strict=True):
        if newest is None:
            continue
        text = newest.isoformat()
        if series not in marks or _later(text, marks[series]):
            marks[series] = text
    return dict(sorted(marks.items()))


def _later(a: str, b: str) -> bool:
    parse = dt.datetime.fromisoformat
    try:
        return parse(a) > parse(b)
    except (TypeError, ValueError):
        return a > b


def prepare(
    store: ObjectStore,
    config: DatasetConfig,
    partition: str,
    normalized: pa.Table,
    inputs: dict[str, Any],
    counts: dict[str, int],
    now: dt.datetime,
    checks: dict[str, Any] | None = None,
    fence: int | None = None,
) -> Prepared:
    dataset_id = config.dataset_id
    current, etag = read_current(store, dataset_id)
    check_type_changes(dataset_id, (current or {}).get("schema"), normalized.schema)
    index, stale = load_index(store, dataset_id, current)
    if stale and current is not None:  # a previous writer crashed after its swap: heal
        _write_index(store, dataset_id, index, current["version"])
    refresh_projections(store, config, current)

    inserts, updates, repeats = diff(normalized, index, config.incremental.revisions)
    parent = current["version"] if current else None
    version = new_version(now, parent)
    rows = pa.concat_tables(
        [
            _with_op(inserts, "insert", version),
            _with_op(updates, "update", version),
        ]
    )
    prepared = Prepared(config, current, etag, index, rows, repeats)
    if rows.num_rows == 0 and not config.publish.publish_empty:
        return prepared
    files = _write_event_data(store, config, version, rows)
    failpoint("after_data")
    prepared.files = files
    prepared.manifest = {
        "version": version,
        "parent_version": parent,
        "dataset_id": dataset_id,
        "partition": partition,
        "created_at": now.astimezone(dt.UTC).isoformat(),
        "code_version": CODE_VERSION,
        "inputs": inputs,
        "counts": {
            **counts,
            "added": inserts.num_rows,
            "revised": updates.num_rows,
            "repeated": repeats,
        },
        "schema_hash": schema_hash(normalized.schema),
        "schema": {f.name: str(f.type) for f in normalized.schema},
        "primary_keys": config.primary_keys,
        "time_column": _time_column(config, normalized),
        "high_water_marks": high_water_marks(config, rows, (current or {}).get("high_water_marks")),
        "rows_total": _rows_total(current, inserts.num_rows),
        "checks": checks or {},
        "fence": fence,
        "files": files,
    }
    body = json.dumps(prepared.manifest, indent=2, sort_keys=True).encode()
    if not store.put_if_absent(layout.manifest(dataset_id, version), body):
        raise PublishConflict(f"dataset {dataset_id}: event version {version} already exists")
    failpoint("after_manifest")
    return prepared


def _rows_total(current: dict | None, added: int) -> int:
    return (current or {}).get("rows_total", 0) + added


def _with_op(rows: pa.Table, op: str, version: str) -> pa.Table:
    rows = rows.append_column(OP, pa.array([op] * rows.num_rows, pa.string()))
    return rows.append_column(VERSION, pa.array([version] * rows.num_rows, pa.string()))


def _write_event_data(
    store: ObjectStore, config: DatasetConfig, version: str, rows: pa.Table
) -> list[str]:
    if rows.num_rows == 0:
        return []
    years, months = _year_month(rows, _time_column(config, rows))
    keyed = pa.table({"y": years, "m": months, "i": pa.array(range(rows.num_rows))})
    groups = keyed.group_by(["y", "m"], use_threads=False).aggregate([("i", "list")])
    parts = {
        layout.event_data(config.dataset_id, version, year, month): idx
        for year, month, idx in zip(
            *(groups[c].to_pylist() for c in ("y", "m", "i_list")), strict=True
        )
    }
    in_parallel(
        lambda key: store.write_parquet(key, rows.take(pa.array(parts[key], pa.int64()))),
        list(parts),
    )
    return sorted(parts)


def _check_fence(prepared: Prepared, lease) -> None:
    """Fencing: refuse if this writer's lease is gone, or a newer lease holder published the parent."""
    dataset_id, version = prepared.config.dataset_id, prepared.version
    parent_fence = (prepared.parent_manifest or {}).get("fence")
    try:
        if lease is not None:
            lease.check()
        mine = prepared.manifest.get("fence")
        if parent_fence is not None and mine is not None and parent_fence > mine:
            raise LeaseLost(
                f"current was published under fence {parent_fence}, newer than this writer's {mine}"
            )
    except LeaseLost as exc:
        raise StaleWriter(
            f"dataset {dataset_id}: refusing to publish version {version}: {exc}; nothing was changed"
        ) from None


def commit(store: ObjectStore, prepared: Prepared, lease=None) -> None:
    """Swap `current` to the prepared version, then update the derived index and projections.

    `lease` (from the dataset lock) is checked just before the swap: a writer whose lease
    expired withdraws its event instead of publishing over a newer writer.
    """
    config, manifest = prepared.config, prepared.manifest
    assert manifest is not None
    dataset_id = config.dataset_id
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    failpoint("before_swap")
    try:
        _check_fence(prepared, lease)
        store.put_if_match(layout.current(dataset_id), body, prepared.parent_etag)
    except (CasConflict, StaleWriter) as exc:
        store.delete_prefix(layout.event(dataset_id, manifest["version"]))
        if isinstance(exc, StaleWriter):
            raise
        raise PublishConflict(
            f"dataset {dataset_id}: lost the race to publish version {manifest['version']}: {exc}; "
            "nothing was changed, re-run to publish on top of the new version"
        ) from None
    failpoint("after_swap")
    index = _merge_index(prepared.index, prepared.rows.select([KEY_HASH, ROW_HASH, VERSION]))
    _write_index(store, dataset_id, index, manifest["version"])
    _apply_projections(store, config, prepared.rows)
    _set_projection_version(store, dataset_id, manifest["version"])


def publish(
    store: ObjectStore,
    locks: Locks,
    config: DatasetConfig,
    partition: str,
    normalized: pa.Table,
    inputs: dict[str, Any],
    counts: dict[str, int],
    checks: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> PublishResult:
    """Publish the new and revised rows of `normalized` as one event version, exactly once."""
    now = now or dt.datetime.now(dt.UTC)
    with locks.hold(config.lock_key, config.lock.ttl_s) as lease:
        fence = lease.fence if lease is not None else None
        prepared = prepare(store, config, partition, normalized, inputs, counts, now, checks, fence)
        if prepared.manifest is not None:
            commit(store, prepared, lease)
    parent = prepared.parent_manifest["version"] if prepared.parent_manifest else None
    updates = (
        int(pc.sum(pc.equal(prepared.rows[OP], "update")).as_py() or 0)
        if prepared.rows.num_rows
        else 0
    )
    return PublishResult(
        dataset_id=config.dataset_id,
        version=prepared.version or parent,
        parent=parent,
        committed=prepared.manifest is not None,
        rows_added=prepared.rows.num_rows - updates,
        rows_revised=updates,
        rows_repeated=prepared.repeated,
        manifest=prepared.manifest or prepared.parent_manifest,
    )
