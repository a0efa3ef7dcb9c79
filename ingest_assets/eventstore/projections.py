"""Per-series projections: `projections/windows/<series>/year=YYYY/month=MM/data.parquet` holds
the latest row (by version) of every key whose latest row falls in that series and month, with
the `op` and `version` of the event that wrote it. Derived from the events: never trusted over
them, rebuilt from them when missing, unreadable or behind (`state.json` names the version they
reflect).

Right by construction, whatever order versions are folded in:
- a row replaces another of its key only if its version is newer (a writer replaying an old
  version cannot roll a window back);
- a dataset whose key holds its time column (and its series: always) keeps each key in one
  window for ever: windows are merged one by one;
- otherwise a revision can move a key to another month: every window of a touched series is
  read and the series is laid out again, so a key is never left behind in its old month.
"""

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.eventstore.events import OP, VERSION, time_column, window_order, year_month
from ingest_assets.eventstore.guard import Guard, unguarded
from ingest_assets.eventstore.manifest import Manifest
from ingest_assets.eventstore.parallel import in_parallel
from ingest_assets.rows.hashing import KEY_HASH, digest_columns
from ingest_resources.object_store import ObjectStore

UNREADABLE = (OSError, pa.ArrowException, KeyError)  # a window or state that cannot be read
Window = tuple[str, int | None, int | None]  # series, year, month


def latest_rows(tables: list[pa.Table]) -> pa.Table | None:
    """The row of every key_hash with the newest `version` (among rows of one version, the
    last given), whatever order the tables come in. Without a `version` column, the last."""
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return None
    combined = pa.concat_tables(tables, promote_options="permissive")
    if VERSION in combined.column_names:
        position = pa.array(np.arange(combined.num_rows, dtype=np.int64))
        order = pc.sort_indices(
            pa.table({"v": combined[VERSION], "p": position}),
            sort_keys=[("v", "ascending"), ("p", "ascending")],
        )
        combined = combined.take(order)
    seq = pa.array(np.arange(combined.num_rows, dtype=np.int64))
    last = (
        pa.table({"k": combined[KEY_HASH], "s": seq})
        .group_by("k", use_threads=False)
        .aggregate([("s", "max")])
    )
    return combined.filter(pc.is_in(seq, value_set=last["s_max"]))


def series_of(config: DatasetConfig, table: pa.Table) -> pa.ChunkedArray | pa.Array:
    if SERIES_CODE in table.column_names:
        return pc.fill_null(table[SERIES_CODE], "_unknown")
    return pa.repeat(pa.scalar(config.dataset_id, pa.string()), table.num_rows)


def split_windows(config: DatasetConfig, rows: pa.Table) -> Iterator[tuple[Window, pa.Table]]:
    """Each (series, year, month) of `rows` with its rows. The rows are ordered by one integer
    code per window (series number, year, month) and cut where the code changes: the windows
    are found from the sorted codes themselves, not from a group_by's order of groups."""
    if rows.num_rows == 0:
        return
    years, months = year_month(rows, time_column(config, rows))
    names_of = series_of(config, rows)
    if isinstance(names_of, pa.ChunkedArray):
        names_of = names_of.combine_chunks()
    series = pc.dictionary_encode(names_of)
    names = series.dictionary.to_pylist()
    month_code = pc.fill_null(
        pc.add(pc.multiply(years.cast(pa.int64()), 100), months.cast(pa.int64())), -1
    ).to_numpy(zero_copy_only=False)
    codes = series.indices.to_numpy(zero_copy_only=False).astype(np.int64) * 1_000_000 + (
        month_code + 1
    )
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    ordered = rows.take(pa.array(order))
    bounds = np.flatnonzero(np.diff(codes)) + 1
    for start, stop in zip(
        np.concatenate([[0], bounds]), np.concatenate([bounds, [len(codes)]]), strict=True
    ):
        code = int(codes[start])
        month = code % 1_000_000 - 1
        year, month_ = (None, None) if month < 0 else (month // 100, month % 100)
        yield (names[code // 1_000_000], year, month_), ordered.slice(start, stop - start)


def keeps_keys_in_place(config: DatasetConfig, schema: pa.Schema) -> bool:
    """A key's window can never change: its time column is one of its primary keys."""
    return time_column(config, schema) in config.primary_keys


def _window_key(config: DatasetConfig, window: Window) -> str:
    return layout.projection(config.dataset_id, *window)


def _sorted(config: DatasetConfig, rows: pa.Table) -> pa.Table:
    return rows.sort_by(window_order(config, rows))


def apply(
    store: ObjectStore,
    config: DatasetConfig,
    files: list[str],
    whole: frozenset[str] = frozenset(),
    guard: Guard = unguarded,
) -> None:
    """Fold event files into the windows. `whole`: files known to be, as they are, the window
    of their month (a dataset without series, encoded in window order): a new window is a copy
    of one. Projections skip the fsync (derived state, rebuilt if a crash loses it)."""
    if not files:
        return
    if not keeps_keys_in_place(config, store.parquet_schema(files[0])) and _revises(store, files):
        _lay_out_series(store, config, files, guard)
        return
    existing = set(store.list(layout.projections(config.dataset_id)))
    locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
    locks_lock = threading.Lock()

    def lock_of(key: str) -> threading.Lock:
        with locks_lock:
            return locks[key]

    def copied(file: str) -> bool:
        if file not in whole or config.is_series:
            return False
        key = _window_key(config, (config.dataset_id, *layout.event_month(file)))
        with lock_of(key):
            if key in existing:
                return False
            guard()
            store.copy(file, key, durable=False)
            existing.add(key)
        return True

    def fold(month_files: list[str]) -> None:
        for file in month_files:
            if copied(file):
                continue
            for window, rows in split_windows(config, digest_columns(store.read_parquet(file))):
                key = _window_key(config, window)
                with lock_of(key):
                    if key in existing:  # (a window written before may hold hex)
                        rows = latest_rows([digest_columns(store.read_parquet(key)), rows])
                    guard()
                    store.write_parquet(key, _sorted(config, rows), durable=False)
                    existing.add(key)

    by_month: dict[str, list[str]] = {}
    for file in files:
        by_month.setdefault(file.rsplit("/", 1)[0], []).append(file)
    in_parallel(fold, list(by_month.values()), workers=store.concurrency)


def _revises(store: ObjectStore, files: list[str]) -> bool:
    """Whether the event holds updates (only an update can move a key to another month: an
    insert is a key no window holds yet, when versions are folded in order)."""
    return any(
        pc.any(pc.equal(store.read_parquet(file, columns=[OP])[OP], "update")).as_py()
        for file in files
    )


def _lay_out_series(
    store: ObjectStore, config: DatasetConfig, files: list[str], guard: Guard
) -> None:
    """Every series the files touch, laid out again from its windows and the new rows: a key
    whose revision moved it to another month leaves its old one."""
    new = pa.concat_tables(
        [digest_columns(store.read_parquet(file)) for file in files], promote_options="permissive"
    )
    touched = sorted(set(series_of(config, new).to_pylist()))
    by_series = _windows_by_series(store, config.dataset_id)

    def lay_out(series: str) -> None:
        keys = by_series.get(layout.safe(series), [])
        old = [digest_columns(store.read_parquet(key)) for key in keys]
        mine = new.filter(pc.equal(series_of(config, new), series))
        rows = latest_rows([*old, mine])
        written = set()
        for window, window_rows in split_windows(config, rows):
            key = _window_key(config, window)
            guard()
            store.write_parquet(key, _sorted(config, window_rows), durable=False)
            written.add(key)
        for key in set(keys) - written:  # every key left this month
            guard()
            store.delete_prefix(key)

    in_parallel(lay_out, touched, workers=store.concurrency)


def _windows_by_series(store: ObjectStore, dataset_id: str) -> dict[str, list[str]]:
    root = layout.projections(dataset_id) + "/"
    found: dict[str, list[str]] = {}
    for key in store.list(layout.projections(dataset_id)):
        if key.endswith("/data.parquet"):
            found.setdefault(key[len(root) :].split("/", 1)[0], []).append(key)
    return found


# state.json without a "format" (Ingest up to 8ed5491): its windows may hold rows under the
# wrong series, so its state is taken as unknown and the projections are rebuilt once
PROJECTIONS_FORMAT_1 = 1
PROJECTIONS_FORMAT = 2  # what this Ingest writes


@dataclass(frozen=True)
class ProjectionState:
    """`projections/state.json`: the version the windows reflect, and how many there were."""

    version: str
    format: int = PROJECTIONS_FORMAT
    windows: int | None = None  # None: not recorded

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"version": self.version, "format": self.format, "windows": self.windows}
        ).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> "ProjectionState":
        """ValueError, TypeError or KeyError if it is not a state."""
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data["version"], str):
            raise TypeError("not a projections state")
        return cls(data["version"], data.get("format", PROJECTIONS_FORMAT_1), data.get("windows"))


def _windows(store: ObjectStore, dataset_id: str) -> list[str]:
    return [k for k in store.list(layout.projections(dataset_id)) if k.endswith("/data.parquet")]


def state_version(store: ObjectStore, dataset_id: str, count: bool = False) -> str | None:
    """The version the projections reflect; None if not known (missing, unreadable, or of
    an older format). `count`: None too when windows were removed or added since (the state
    records how many there were)."""
    try:
        state = ProjectionState.from_bytes(store.get(layout.projections_state(dataset_id)))
        if state.format == PROJECTIONS_FORMAT_1:  # (Ingest up to 8ed5491: rebuilt once)
            return None
        if state.format != PROJECTIONS_FORMAT:
            return None
        if count and state.windows != len(_windows(store, dataset_id)):
            return None
        return state.version
    except (KeyError, ValueError, TypeError):
        return None


def set_state(store: ObjectStore, dataset_id: str, version: str, guard: Guard = unguarded) -> None:
    guard()
    state = ProjectionState(version, PROJECTIONS_FORMAT, len(_windows(store, dataset_id)))
    store.put(layout.projections_state(dataset_id), state.to_bytes())


def rebuild(
    store: ObjectStore, config: DatasetConfig, chain: list[Manifest], guard: Guard = unguarded
) -> None:
    """The projections anew from every event of the chain (oldest first)."""
    guard()
    store.delete_prefix(layout.projections(config.dataset_id))
    for manifest in chain:
        apply(store, config, manifest.file_keys, guard=guard)
    if chain:
        set_state(store, config.dataset_id, chain[-1].version, guard)


def refresh(
    store: ObjectStore,
    config: DatasetConfig,
    chain: list[Manifest],
    guard: Guard = unguarded,
) -> int:
    """Bring the projections up to the chain's head: fold the versions they miss, or rebuild
    them all when their state is unknown, not in the chain, or a window cannot be read.
    Returns how many versions were folded. A dataset without projections
    (publish.object_store: false) has none to bring up."""
    if not chain or not config.publish.object_store:
        return 0
    done = state_version(store, config.dataset_id, count=True)
    if done == chain[-1].version:
        return 0
    versions = [manifest.version for manifest in chain]
    if done is None or done not in versions:
        rebuild(store, config, chain, guard)
        return len(chain)
    missing = chain[versions.index(done) + 1 :]
    try:
        for manifest in missing:
            apply(store, config, manifest.file_keys, guard=guard)
    except UNREADABLE:  # a window unreadable: start again
        rebuild(store, config, chain, guard)
        return len(chain)
    set_state(store, config.dataset_id, chain[-1].version, guard)
    return len(missing)


def expected_windows(config: DatasetConfig, latest: pa.Table | None) -> dict[str, pa.Table]:
    """What every window must hold, from the replay of the events (latest row per key)."""
    if latest is None:
        return {}
    return {_window_key(config, window): rows for window, rows in split_windows(config, latest)}
