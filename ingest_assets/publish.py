"""Exactly-once publishing to the event store: diff, immutable event version, CAS pointer swap.

1. Read `current/manifest.json` and its ETag; bring the key index and the projections up to it
   (they are derived from the immutable events, so a crash that left them behind heals here).
2. Anti-join the normalized rows on `key_hash`: unknown keys are inserts, known keys with a new
   `row_hash` are updates (unless `incremental.revisions: ignore`), the rest cost nothing.
3. Write the event's data and manifest (immutable), then replace `current` only if it still has
   the ETag read in 1. A writer that lost the race removes its event and changes nothing.

Pure of Dagster: takes an ObjectStore and a lock provider.
"""

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest_assets import layout
from ingest_assets.arrays import repeated as repeated_value
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.hashing import digest_columns, digest_schema, hex_schema
from ingest_assets.keyindex import SCHEMA as INDEX_SCHEMA
from ingest_assets.keyindex import KeyIndex, Parts, digest_parts
from ingest_assets.normalize import KEY_HASH, ROW_HASH
from ingest_assets.parsers.base import HIDDEN_COLUMNS
from ingest_resources.locks import LeaseLost
from ingest_resources.object_store import CasConflict, ObjectStore, parquet_options

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


def check_key_change(dataset_id: str, published: dict | None, keys: list[str]) -> None:
    """Refuse, before anything is written, keys other than the published versions': every row
    would get a new key_hash and be published again beside its old self."""
    before = (published or {}).get("primary_keys")
    if before is not None and list(before) != list(keys):
        raise IncompatibleSchema(
            f"dataset {dataset_id}: the primary key is now {keys} (normalize.primary_keys), the "
            f"published versions are keyed by {before}: every row would be published again under "
            "its new key beside the old one. Keep the old primary_keys, or publish under a new "
            "dataset_id"
        )


def _null_type(old: str, new: str) -> bool:
    return "null" in (old, new)


class StaleWriter(PublishConflict):
    """This writer's lease was lost or a newer lease holder already published (fencing)."""


FAULT_ENV = "INGEST_FAULT_INJECT"


# Parquet encodings at once: each holds a month of rows (up to EventWriter.GROUP_BYTES, twice
# when it is sorted), so more cores do not mean more memory past four
CPU_THREADS = min(4, max(2, os.cpu_count() or 2))


def in_parallel(function: Callable[[Any], None], items: list, workers: int) -> None:
    """Run `function` over `items` on `workers` threads; the first error is raised."""
    if len(items) <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
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
    index: KeyIndex
    keys: list[Parts]  # key_hash and row_hash of the event rows (per batch), for the index
    row_hashes: list[Parts]
    added: int
    revised: int
    repeated: int
    manifest: dict | None = None
    files: list[str] = field(default_factory=list)
    windows: frozenset[str] = frozenset()  # files that are, as they are, their month's window

    @property
    def version(self) -> str | None:
        return self.manifest["version"] if self.manifest else None


class Rows(Protocol):
    """The normalized rows to publish, read in batches (a staged file, or a table)."""

    @property
    def schema(self) -> pa.Schema: ...

    def batches(self, columns: list[str]) -> Iterator[pa.Table]: ...


@dataclass(frozen=True)
class TableRows:
    table: pa.Table
    batch_rows: int = 250_000

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def batches(self, columns: list[str]) -> Iterator[pa.Table]:
        table = self.table.select(columns)
        for start in range(0, max(table.num_rows, 1), self.batch_rows):
            yield table.slice(start, self.batch_rows)


@dataclass(frozen=True)
class StagedRows:
    """Staged Parquet parts, read one after another (they share the first one's schema), with
    their row counts. A part is named after what it is made of, so a part that the current
    version was published from (its manifest's `inputs.parts`) holds only rows the index has
    as they are: `unpublished` leaves it out and counts its rows as repeats."""

    store: ObjectStore
    parts: tuple[tuple[str, int], ...]  # (key, rows; -1: not known, never left out)

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.parts]

    @property
    def schema(self) -> pa.Schema:
        return self.store.parquet_schema(self.parts[0][0])

    def batches(self, columns: list[str]) -> Iterator[pa.Table]:
        for key, _ in self.parts:
            yield from self.store.iter_parquet(key, columns=columns)

    def unpublished(self, current: dict | None) -> tuple["StagedRows", int]:
        """The parts `current` was not published from, and the rows of those it was."""
        listed = set(((current or {}).get("inputs") or {}).get("parts") or [])
        done = {key for key, rows in self.parts if key in listed and rows >= 0}
        rest = tuple(part for part in self.parts if part[0] not in done)
        return StagedRows(self.store, rest), sum(rows for key, rows in self.parts if key in done)


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
    order = pa.array(np.arange(combined.num_rows, dtype=np.int64))
    combined = combined.append_column("__seq", order)
    last = combined.group_by(KEY_HASH, use_threads=False).aggregate([("__seq", "max")])
    keep = pc.is_in(order, value_set=last["__seq_max"])
    return combined.filter(keep).drop_columns(["__seq"])


# --- the key index --------------------------------------------------------------------------------


def load_index(store: ObjectStore, dataset_id: str, current: dict | None) -> tuple[KeyIndex, bool]:
    """The key index as of `current`, and whether the stored index had to be caught up."""
    if current is None:
        return KeyIndex.empty(), False
    key = layout.index(dataset_id)
    index, indexed = KeyIndex.empty(), None
    if store.exists(key):
        footer = store.parquet_metadata(key)
        schema = footer.schema.to_arrow_schema()
        if schema.names == INDEX_SCHEMA.names:  # else an older format: rebuilt below
            index = KeyIndex.from_batches(store.iter_parquet(key), footer.num_rows)
            indexed = (schema.metadata or {}).get(INDEX_VERSION_META, b"").decode() or None
    if indexed == current["version"]:
        return index, False
    try:
        missing = version_chain(store, dataset_id, current, stop=indexed)
    except KeyError:  # the stored index is from a version not in the chain: rebuild it
        index, missing = KeyIndex.empty(), version_chain(store, dataset_id, current)
    for manifest in missing:
        for file in manifest["files"]:
            rows = store.read_parquet(file, columns=[KEY_HASH, ROW_HASH])
            index = index.merged(
                [digest_parts(rows[KEY_HASH])], [digest_parts(rows[ROW_HASH])], manifest["version"]
            )
    return index, True


INDEX_ROW_GROUP = 500_000  # rows encoded at a time when the index is written


def heal(store: ObjectStore, config: DatasetConfig, current: dict | None) -> KeyIndex | None:
    """Bring the derived state (key index, projections) up to `current`: a writer that crashed
    after its swap left them behind. Returns the index when it had to be read (else None: the
    stored one is up to date, and a caller that needs it reads it with `load_index`)."""
    index = None
    if current is not None and _indexed_version(store, config.dataset_id) != current["version"]:
        index, stale = load_index(store, config.dataset_id, current)
        if stale:
            _write_index(store, config.dataset_id, index, current["version"])
    refresh_projections(store, config, current)
    return index


def _indexed_version(store: ObjectStore, dataset_id: str) -> str | None:
    key = layout.index(dataset_id)
    if not store.exists(key):
        return None
    schema = store.parquet_schema(key)
    if schema.names != INDEX_SCHEMA.names:
        return None
    return (schema.metadata or {}).get(INDEX_VERSION_META, b"").decode() or None


def _write_index(store: ObjectStore, dataset_id: str, index: KeyIndex, version: str) -> None:
    table = index.to_table()
    table = table.replace_schema_metadata({INDEX_VERSION_META: version.encode()})
    groups = (
        table.slice(start, INDEX_ROW_GROUP) for start in range(0, table.num_rows, INDEX_ROW_GROUP)
    )
    store.write_parquet_batches(layout.index(dataset_id), groups, table.schema)


# --- projections ---------------------------------------------------------------------------------


def _time_column(config: DatasetConfig, table: "pa.Table | pa.Schema") -> str:
    name = config.normalize.time_column
    names = table.names if isinstance(table, pa.Schema) else table.column_names
    return name if name in names else "collection_date"


def _year_month(table: pa.Table, column: str) -> tuple[pa.Array, pa.Array]:
    values = table[column]
    return pc.year(values), pc.month(values)


def _series_of(config: DatasetConfig, table: pa.Table) -> pa.ChunkedArray | pa.Array:
    if SERIES_CODE in table.column_names:
        return pc.fill_null(table[SERIES_CODE], "_unknown")
    return repeated_value(config.dataset_id, table.num_rows, pa.string())


def _series_slices(config: DatasetConfig, rows: pa.Table):
    """(series, year, month, rows) per window: the rows sorted once, then sliced. Rows of one
    series and one month (an event file of a dataset without series) are one window as they
    are."""
    years, months = _year_month(rows, _time_column(config, rows))
    if SERIES_CODE not in rows.column_names and rows.num_rows:
        year, month = (pc.min_max(values).as_py() for values in (years, months))
        if years.null_count == rows.num_rows:  # no time: the "unknown" window
            yield config.dataset_id, None, None, rows
            return
        if years.null_count == 0 and year["min"] == year["max"] and month["min"] == month["max"]:
            yield config.dataset_id, year["min"], month["min"], rows
            return
    keyed = pa.table({"s": _series_of(config, rows), "y": years, "m": months})
    indices = pc.sort_indices(
        keyed, sort_keys=[("s", "ascending"), ("y", "ascending"), ("m", "ascending")]
    )
    order, rows = keyed.take(indices), rows.take(indices)
    windows = order.group_by(["s", "y", "m"], use_threads=False).aggregate([([], "count_all")])
    start = 0
    for series, year, month, count in zip(
        *(windows[c].to_pylist() for c in ("s", "y", "m", "count_all")), strict=True
    ):
        yield series, year, month, rows.slice(start, count)
        start += count


def window_order(config: DatasetConfig, table: "pa.Table | pa.Schema") -> list[tuple[str, str]]:
    """The order of a projection window's rows (and of an event file small enough to be sorted
    as one): by time, then key_hash; rows without a time last."""
    return [(_time_column(config, table), "ascending"), (KEY_HASH, "ascending")]


def _whole_window(
    store: ObjectStore, config: DatasetConfig, file: str, windows: frozenset[str] | None
) -> tuple | None:
    """(year, month) when the event file is, as it is, the projection window of its month: a
    dataset without series, and rows in the window's order (the sorting columns its footer
    declares, in one row group; `windows`: the files the writer of the event knows to be so).
    A new window is then that file, copied, not read and written."""
    if config.is_series:  # a month holds many series: it is sliced (no footer to read)
        return None
    if windows is not None:
        return layout.event_month(file) if file in windows else None
    metadata = store.parquet_metadata(file)
    schema = metadata.schema.to_arrow_schema()
    if SERIES_CODE in schema.names or metadata.num_row_groups != 1:
        return None
    expected = pq.SortingColumn.from_ordering(schema, window_order(config, schema))
    if tuple(metadata.row_group(0).sorting_columns) != tuple(expected):
        return None
    return layout.event_month(file)


def _apply_projections(
    store: ObjectStore,
    config: DatasetConfig,
    files: list[str],
    windows: frozenset[str] | None = None,
) -> None:
    """Fold event files (one month each) into the per-series monthly windows, months side by
    side. A window holds the latest row of each of its keys, with the `op` and `version` of the
    event that wrote it. Projections are derived state (rebuilt from the events if lost), so
    they skip the fsync."""
    if not files:
        return
    existing_keys = set(store.list(layout.projections(config.dataset_id)))
    # A version holds a key once, so the order its files fold in does not matter; a window
    # must only not be read and rewritten by two threads at once (files of one folder go to
    # one thread, but a window can take rows from other folders: a changed time column)
    window_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
    locks_lock = threading.Lock()

    def window_lock(key: str) -> threading.Lock:
        with locks_lock:
            return window_locks[key]

    def new_window_copied(file: str) -> bool:
        month = _whole_window(store, config, file, windows)
        if month is None:
            return False
        key = layout.projection(config.dataset_id, config.dataset_id, *month)
        with window_lock(key):
            if key in existing_keys:
                return False
            store.copy(file, key, durable=False)
            existing_keys.add(key)  # a later file of the same month merges into it
        return True

    def fold(month_files: list[str]) -> None:
        for file in month_files:
            if new_window_copied(file):
                continue
            rows = store.read_parquet(file)
            if rows.num_rows == 0:
                continue
            for series, year, month, window in _series_slices(config, rows):
                key = layout.projection(config.dataset_id, series, year, month)
                with window_lock(key):
                    if key in existing_keys:  # (a window written before may hold hex)
                        window = latest_rows([digest_columns(store.read_parquet(key)), window])
                    store.write_parquet(
                        key, window.sort_by(window_order(config, window)), durable=False
                    )
                    existing_keys.add(key)

    by_month: dict[str, list[str]] = {}
    for file in files:
        by_month.setdefault(file.rsplit("/", 1)[0], []).append(file)
    in_parallel(fold, list(by_month.values()), workers=store.concurrency)


def _projection_version(store: ObjectStore, dataset_id: str) -> str | None:
    key = layout.projections_state(dataset_id)
    return json.loads(store.get(key))["version"] if store.exists(key) else None


def refresh_projections(store: ObjectStore, config: DatasetConfig, current: dict | None) -> int:
    """Bring projections up to `current` by re-applying missing events (idempotent). Returns how many.
    A dataset without them (publish.object_store: false) has none to bring up."""
    if current is None or not config.publish.object_store:
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
        _apply_projections(store, config, manifest["files"])
    _set_projection_version(store, config.dataset_id, current["version"])
    return len(missing)


def _set_projection_version(store: ObjectStore, dataset_id: str, version: str) -> None:
    store.put(layout.projections_state(dataset_id), json.dumps({"version": version}).encode())


# --- diff, prepare, commit -------------------------------------------------------------------------


def diff(
    index: KeyIndex, batch: pa.Table, revisions: str
) -> tuple[np.ndarray, np.ndarray, Parts, Parts]:
    """(is_new, is_revised) masks of a batch of normalized rows against the index, and the
    rows' key and row hashes as integers."""
    keys, rows = digest_parts(batch[KEY_HASH]), digest_parts(batch[ROW_HASH])
    at = index.lookup(keys)
    is_new = at < 0
    revised = np.zeros(len(at), dtype=bool)
    if revisions != "ignore":
        known = ~is_new
        revised[known] = ~index.same_rows(at[known], tuple(r[known] for r in rows))
    return is_new, revised, keys, rows


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
    if SERIES_CODE in rows.column_names:
        keyed = pa.table({"s": _series_of(config, rows), "t": rows[time_column]})
        grouped = keyed.group_by("s", use_threads=False).aggregate([("t", "max")])
        newest_of = zip(grouped["s"].to_pylist(), grouped["t_max"].to_pylist(), strict=True)
    else:  # one series, the dataset's: no grouping
        newest_of = [(config.dataset_id, pc.max(rows[time_column]).as_py())]
    for series, newest in newest_of:
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


# A month's record batch for EventWriter, and its bytes: spilled (spill file, its index there,
# bytes), or still held in memory (the batch, 0, bytes)
Piece = tuple[Path | pa.RecordBatch, int, int]


class EventWriter:
    """The event rows of one version, one Parquet file per (year, month) of the time column.

    Rows arrive in batches that cover many months, a few rows each. They are held up to
    HOLD_BYTES, then spilled, month after month, to one scratch Arrow IPC file (a copy, no
    encoding). `close` then encodes each month, from its record batches in every spill and
    those still held (the last rows are never spilled: an event of less than HOLD_BYTES is
    encoded from memory), in large row groups, months side by side. Small row groups written as
    batches came cost twice to write and to read again (projections, the warehouse, exports); a
    spill file per month would cost a file creation for every month of every spill."""

    GROUP_BYTES = 64 << 20  # rows encoded at a time (one row group) when a month is written
    HOLD_BYTES = 64 << 20  # rows held in memory before they are spilled

    def __init__(self, store: ObjectStore, config: DatasetConfig, version: str):
        self.store, self.config, self.version = store, config, version
        self.schema: pa.Schema | None = None
        # per month, in the order rows came: (spill file, record batch, its bytes)
        self.spills: dict[tuple, list[Piece]] = {}
        self.scratch = Path(tempfile.mkdtemp(prefix=".events-", dir=self._scratch_root()))
        self.spill_names = itertools.count()  # a new name for every spill file
        self.done: list[tuple[str, str]] = []  # (key, local Parquet file)
        self.windows: set[str] = set()  # months written as their projection window is
        self.held: dict[tuple, list[pa.Table]] = {}  # rows not spilled yet, per month
        self.held_bytes = 0
        self.readers = threading.local()  # spill readers, each thread its own
        self.opened: list[pa.NativeFile] = []
        self.lock = threading.Lock()

    def _scratch_root(self) -> Path | None:
        folder = self.store.scratch_folder(layout.event(self.config.dataset_id, self.version))
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write(self, rows: pa.Table) -> None:
        years, months = _year_month(rows, _time_column(self.config, rows))
        month_code = pc.fill_null(
            pc.add(pc.multiply(years.cast(pa.int64()), 100), months.cast(pa.int64())), -1
        )
        order = pc.sort_indices(month_code)  # stable; a counting sort for so few codes
        ordered, codes = rows.take(order), month_code.take(order).to_numpy(zero_copy_only=False)
        bounds = np.flatnonzero(np.diff(codes)) + 1
        for start, stop in zip(
            np.concatenate([[0], bounds]), np.concatenate([bounds, [len(codes)]]), strict=True
        ):
            code = int(codes[start])
            month = (None, None) if code < 0 else (code // 100, code % 100)
            self.held.setdefault(month, []).append(ordered.slice(start, stop - start))
        self.held_bytes += ordered.nbytes
        if self.held_bytes >= self.HOLD_BYTES:
            self._spill_held()

    def _spill_held(self) -> None:
        """The held rows to one spill file, month after month (each month's rows in the order
        they came, a record batch for each batch they came in): a few large writes, and a
        month's rows side by side when it is encoded."""
        if not self.held:
            return
        path = self.scratch / f".{next(self.spill_names)}.arrow"  # (hidden)
        spill = pa.ipc.new_file(str(path), self.schema)
        found: list[tuple[tuple, int, int]] = []
        try:
            for month, tables in self.held.items():
                for table in tables:
                    for batch in table.to_batches():
                        spill.write_batch(batch)
                        found.append((month, len(found), batch.nbytes))
        except BaseException:
            with contextlib.suppress(Exception):  # (a full disk fails the close too)
                spill.close()
            raise
        spill.close()
        for month, index, size in found:
            self.spills.setdefault(month, []).append((path, index, size))
        self.held.clear()
        self.held_bytes = 0

    def close(self) -> list[str]:
        """Store every month's file (immutable event data); returns their keys, sorted."""
        months = {month: list(pieces) for month, pieces in self.spills.items()}
        for month, tables in self.held.items():  # the rows held last, after their spills
            batches = (b for t in tables for b in t.to_batches())
            months.setdefault(month, []).extend((b, 0, b.nbytes) for b in batches)
        self.held.clear()  # (each month's rows go once it is encoded)
        self.held_bytes = 0
        # A month is stored (renamed into place, or uploaded) as soon as it is encoded, on its
        # own threads: the waits on the network overlap the next months' encoding. On disk,
        # the months are made durable together once all are stored, before the manifest.
        with ThreadPoolExecutor(max_workers=self.store.concurrency) as storing:
            stored: list[Future] = []

            def encode_then_store(item: tuple[tuple, list[Piece]]) -> None:
                stored.append(storing.submit(self._store_file, self._encode(item)))
                item[1].clear()

            try:
                in_parallel(encode_then_store, list(months.items()), workers=CPU_THREADS)
            finally:
                self._close_spills()
            for future in stored:
                future.result()
        shutil.rmtree(self.scratch, ignore_errors=True)
        keys = sorted(key for key, _ in self.done)
        self.store.sync(keys)
        return keys

    def _encode(self, item: tuple[tuple, list[Piece]]) -> tuple[str, str]:
        """One month's record batches, in order, into one Parquet file of GROUP_BYTES row
        groups (read a group at a time): (its key, the local file)."""
        month, pieces = item
        key = layout.event_data(self.config.dataset_id, self.version, *month)
        folder = self.store.scratch_folder(key)  # beside the object: stored by a rename
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".event-", suffix=".parquet")
        os.close(fd)
        target = Path(name)
        self.done.append((key, name))  # (before writing: an abort removes it)
        if sum(size for _, _, size in pieces) <= self.GROUP_BYTES:
            self._encode_sorted(target, [self._batch(piece) for piece in pieces])
            if SERIES_CODE not in self.schema.names:  # (else the windows are of each series)
                self.windows.add(key)
            return key, name
        with pq.ParquetWriter(target, self.schema, **parquet_options(self.schema)) as out:
            group: list[pa.RecordBatch] = []
            size = 0
            for piece in pieces:
                group.append(self._batch(piece))
                size += piece[2]
                if size >= self.GROUP_BYTES:
                    out.write_table(pa.Table.from_batches(group, self.schema))
                    group, size = [], 0
            if group:
                out.write_table(pa.Table.from_batches(group, self.schema))
        return key, name

    READERS = 64  # spills a thread keeps open (the least recently used is closed first)

    def _batch(self, piece: "Piece") -> pa.RecordBatch:
        source, index, _ = piece
        if isinstance(source, pa.RecordBatch):  # held, not spilled
            return source
        return self._reader(source).get_batch(index)

    def _reader(self, path: Path) -> pa.ipc.RecordBatchFileReader:
        """This thread's reader of a spill, opened once (its footer lists every record batch),
        while it is among the thread's READERS most recently used. Read, not mapped: a mapped
        spill's pages would count in the process's memory until it is unmapped."""
        readers: dict[Path, tuple] = self.readers.__dict__.setdefault("by_path", {})
        if path in readers:
            readers[path] = readers.pop(path)  # (now the most recent)
            return readers[path][1]
        if len(readers) >= self.READERS:
            source, _ = readers.pop(next(iter(readers)))
            with self.lock:
                self.opened.remove(source)
            source.close()
        source = pa.OSFile(str(path))
        with self.lock:
            self.opened.append(source)
        readers[path] = (source, pa.ipc.open_file(source))
        return readers[path][1]

    def _encode_sorted(self, target: Path, batches: list[pa.RecordBatch]) -> None:
        """A month that fits in one row group, in the order of its projection window (declared
        in the footer): when the window is new, the projection is this file as it is."""
        rows = pa.Table.from_batches(batches, self.schema)
        order = window_order(self.config, rows)
        # sorted by its key columns made whole (Arrow sorts a table of many small chunks
        # several times slower: 0.13 s -> 0.03 s for 1M rows in 165 months of 9 chunks)
        keys = pa.table({name: rows[name].combine_chunks() for name, _ in order})
        rows = rows.take(pc.sort_indices(keys, sort_keys=order))  # nulls last
        sorting = pq.SortingColumn.from_ordering(rows.schema, order)
        options = parquet_options(rows.schema)
        with pq.ParquetWriter(target, rows.schema, sorting_columns=sorting, **options) as out:
            out.write_table(rows, row_group_size=max(rows.num_rows, 1))

    def _close_spills(self) -> None:
        """Close every open spill (after a failure too: an error here must not hide it)."""
        for source in self.opened:
            with contextlib.suppress(Exception):
                source.close()
        self.opened.clear()

    def _store_file(self, item: tuple[str, str]) -> None:
        key, path = item
        self.store.put_file(key, Path(path), move=True, durable=False)  # (synced in `close`)

    def abort(self) -> None:
        """Remove every scratch file (and what was already stored of this event). Runs after a
        failure, a full disk say."""
        self.held.clear()
        self._close_spills()
        shutil.rmtree(self.scratch, ignore_errors=True)
        for _, path in self.done:
            Path(path).unlink(missing_ok=True)
        self.store.delete_prefix(layout.event(self.config.dataset_id, self.version))


def prepare(
    store: ObjectStore,
    config: DatasetConfig,
    partition: str,
    normalized: "pa.Table | Rows",
    inputs: dict[str, Any],
    counts: dict[str, int],
    now: dt.datetime,
    checks: dict[str, Any] | None = None,
    fence: int | None = None,
) -> Prepared:
    """Diff the normalized rows against the index, batch by batch, writing the new and revised
    ones as the event data of a new version, then its manifest (not yet `current`)."""
    dataset_id = config.dataset_id
    rows_in = TableRows(normalized) if isinstance(normalized, pa.Table) else normalized
    source_schema = rows_in.schema  # read once (a staged file's footer)
    columns = [f.name for f in source_schema if f.name not in HIDDEN_COLUMNS]
    schema = digest_schema(pa.schema([source_schema.field(c) for c in columns]))
    current, etag = read_current(store, dataset_id)
    check_key_change(dataset_id, current, config.primary_keys)
    check_type_changes(dataset_id, (current or {}).get("schema"), hex_schema(schema))
    index = heal(store, config, current)
    if index is None:  # the stored index was up to date: read it
        index = load_index(store, dataset_id, current)[0]

    parent = current["version"] if current else None
    version = new_version(now, parent)
    writer = EventWriter(store, config, version)
    writer.schema = schema.append(pa.field(OP, pa.string())).append(pa.field(VERSION, pa.string()))
    added = revised = repeated = 0
    if isinstance(rows_in, StagedRows):  # (under the lock: `current` cannot move meanwhile)
        rows_in, repeated = rows_in.unpublished(current)
    key_parts: list[Parts] = []
    row_parts: list[Parts] = []
    marks = (current or {}).get("high_water_marks")
    try:
        for batch in map(digest_columns, rows_in.batches(columns)):  # (hex given: as bytes)
            is_new, is_revised, keys, hashes = diff(index, batch, config.incremental.revisions)
            chosen = is_new | is_revised
            added += int(is_new.sum())
            revised += int(is_revised.sum())
            repeated += int((~chosen).sum())
            if not chosen.any():
                continue
            event = batch if chosen.all() else batch.filter(pa.array(chosen))  # (a first load)
            ops = pc.if_else(pa.array(is_new[chosen]), "insert", "update")
            event = event.append_column(OP, ops).append_column(
                VERSION, repeated_value(version, event.num_rows, pa.string())
            )
            writer.write(event.cast(writer.schema))
            key_parts.append(tuple(k[chosen] for k in keys))
            row_parts.append(tuple(r[chosen] for r in hashes))
            marks = high_water_marks(config, event, marks)
    except BaseException:
        writer.abort()
        raise
    prepared = Prepared(
        config,
        current,
        etag,
        index,
        key_parts,
        row_parts,
        added,
        revised,
        repeated,
    )
    if added + revised == 0 and not config.publish.publish_empty:
        writer.abort()
        return prepared
    try:
        files = writer.close()
    except BaseException:
        writer.abort()
        raise
    failpoint("after_data")
    prepared.files = files
    prepared.windows = frozenset(writer.windows)
    prepared.manifest = {
        "version": version,
        "parent_version": parent,
        "dataset_id": dataset_id,
        "partition": partition,
        "created_at": now.astimezone(dt.UTC).isoformat(),
        "code_version": CODE_VERSION,
        "inputs": inputs,
        "counts": {**counts, "added": added, "revised": revised, "repeated": repeated},
        "schema_hash": schema_hash(hex_schema(schema)),  # (hashes as people see them: hex)
        "schema": {f.name: str(f.type) for f in hex_schema(schema)},
        "primary_keys": config.primary_keys,
        "time_column": config.normalize.time_column
        if config.normalize.time_column in columns
        else "collection_date",
        "high_water_marks": dict(sorted((marks or {}).items())),
        "rows_total": _rows_total(current, added),
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
    # The index is merged and written on a thread while the projections are made (both are
    # derived from the events, each healed on its own); its arrays go once it is written
    with ThreadPoolExecutor(max_workers=1) as writing:
        written = writing.submit(_merge_index, store, prepared)
        if config.publish.object_store:  # (else no projections: only the events, as a ledger)
            _apply_projections(store, config, prepared.files, prepared.windows)
            _set_projection_version(store, dataset_id, manifest["version"])
        written.result()


def _merge_index(store: ObjectStore, prepared: Prepared) -> None:
    """The key index with the committed version's keys, written (`prepared.index` is spent:
    a committed version is not prepared again)."""
    assert prepared.manifest is not None
    version = prepared.manifest["version"]
    index = prepared.index.merged(prepared.keys, prepared.row_hashes, version)
    prepared.index = KeyIndex.empty()
    _write_index(store, prepared.config.dataset_id, index, version)


def publish(
    store: ObjectStore,
    locks: Locks,
    config: DatasetConfig,
    partition: str,
    normalized: "pa.Table | Rows",
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
        pa.default_memory_pool().release_unused()  # the batches are gone: give their memory back
        if prepared.manifest is not None:
            commit(store, prepared, lease)
    parent = prepared.parent_manifest["version"] if prepared.parent_manifest else None
    return PublishResult(
        dataset_id=config.dataset_id,
        version=prepared.version or parent,
        parent=parent,
        committed=prepared.manifest is not None,
        rows_added=prepared.added,
        rows_revised=prepared.revised,
        rows_repeated=prepared.repeated,
        manifest=prepared.manifest or prepared.parent_manifest,
    )
