"""The normalized stage: typed, keyed and checked rows, staged as one part per parsed batch.

A part is named after what it is made of (its parsed batch's digest and how it was made) and is
never rewritten in place; `meta.json` lists the parts of the last complete run. A later run keeps
a part whose batch it meets again under the same contract, code and day (an input that grew at
its end normalizes only its new batches); rejected rows go to quarantine with a reason.
"""

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.eventstore import read_current
from ingest_assets.eventstore.diff import high_water_marks
from ingest_assets.parsers.base import CELLS_META, HIDDEN_COLUMNS, ROW_COLUMN
from ingest_assets.rows.checks import CheckInputs, CheckResult, evaluate, needed_columns
from ingest_assets.rows.dedupe import KeyTracker, judge
from ingest_assets.rows.hashing import hex_schema
from ingest_assets.rows.normalize import KEY_HASH, conflict_reason, normalize, rejected_rows
from ingest_assets.stages.parts import (
    PART_NAME,
    PartWriter,
    batch_digest,
    iter_parts,
    part_key,
    part_keys,
    read_parts,
)
from ingest_assets.stages.parts import head as parts_head
from ingest_assets.stages.staged import (
    META,
    PART,
    PREVIEW_HEAD,
    RAW_META,
    Staged,
    StageError,
    _visible,
    discard,
    normalized_fingerprint,
    reporting_full_disk,
    stage_key,
)
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime

NORMALIZE_AHEAD = 2  # batches normalized at once: as many as there are cores to share here


@dataclass(frozen=True)
class NormalizeOutcome:
    staged: Staged  # the normalized rows (with `_row`), as the UI shows them
    counts: dict[str, int]
    checks: list[CheckResult]
    quarantine_key: str
    high_water_marks: dict[str, str]
    store: ObjectStore
    keys: list[str]  # the parts of the staged normalized rows, in order

    @property
    def table(self) -> pa.Table:
        """The accepted rows, read whole from the store (for small data and tests)."""
        return _visible(read_parts(self.store, self.keys))

    @property
    def rejected(self) -> pa.Table:
        if self.store.exists(self.quarantine_key):
            return self.store.read_parquet(self.quarantine_key)
        return pa.table({})


def read_normalized(
    rt: Runtime, config: DatasetConfig, partition: str, columns: list[str] | None = None
) -> pa.Table:
    """The staged normalized rows (only `columns` of them, for a large partition)."""
    staging, meta = normalized_meta(rt.store, config, partition)
    keys = [part["key"] for part in staged_parts(meta, staging)]
    if columns is not None:
        present = set(rt.store.parquet_schema(keys[0]).names)
        return read_parts(rt.store, keys, columns=[c for c in columns if c in present])
    return _visible(read_parts(rt.store, keys))


def normalized_meta(store: ObjectStore, config: DatasetConfig, partition: str) -> tuple[str, dict]:
    """The staged normalized partition's folder and meta.json (which lists its parts)."""
    staging = layout.staging(config.dataset_id, "normalized", partition)
    meta = _read_meta(store, f"{staging}/{META}")
    if meta is not None:
        return staging, meta
    if part_keys(store, staging) or store.exists(f"{staging}/{PART}"):
        raise StageError(
            f"dataset {config.dataset_id}: the normalized data of partition {partition!r} is "
            f"incomplete (no {META}); materialize {config.dataset_id}/normalized again"
        )
    raise StageError(
        f"dataset {config.dataset_id}: no normalized data for partition {partition!r}; "
        f"materialize {config.dataset_id}/normalized first"
    )


def _parsed_batches(store: ObjectStore, parsed_key: str, config: DatasetConfig):
    """The parsed rows in batches, each with its digest (None: not to be kept for a later run).
    Batches never span two row groups of the parsed data, so an input that grew at its end
    gives the same batches for its old rows."""
    if not config.normalize.builtin:
        # a plugin may look across rows (fill, diff, pivot): it gets the whole partition
        yield store.read_parquet(parsed_key), None
        return
    empty = True
    for batch in store.iter_parquet(parsed_key, by_row_group=True):
        empty = False
        yield batch, batch_digest(batch, (batch.schema.metadata or {}).get(CELLS_META, b""))
    if empty:
        yield store.parquet_schema(parsed_key).empty_table(), None


@dataclass
class _NormalizedData:
    staged: Staged
    counts: dict[str, int]
    high_water_marks: dict[str, str]
    rejected_head: pa.Table
    parts: list[dict]  # {"key", "rows", "parsed", "digest", "clean"} per part, in order


def run_normalize(
    rt: Runtime, config: DatasetConfig, partition: str, today: dt.date | None = None
) -> NormalizeOutcome:
    """Type, key and check the parsed rows, batch by batch; rejected rows go to quarantine.
    Parsed data with the fingerprint of the staged normalized data is not normalized again
    (its checks are: they depend on the published version and the clock), and a batch of it
    that a part already holds, under the same contract and day, is not either.

    Runs of one partition may overlap (a sensor, a schedule, a user): a run removes nothing
    another may be reading. The last meta.json stays until this run's replaces it whole, parts
    are named after what they hold (two runs of one input write the same parts), and old parts
    go by name once the new list is written."""
    staging = layout.staging(config.dataset_id, "normalized", partition)
    with reporting_full_disk(rt.store, config, "normalized", partition, f"{staging}/") as store:
        outcome = _run_normalize(store, config, partition, staging, today)
    pa.default_memory_pool().release_unused()
    return dataclasses.replace(outcome, store=rt.store)


def _run_normalize(
    store: ObjectStore,
    config: DatasetConfig,
    partition: str,
    staging: str,
    today: dt.date | None,
) -> NormalizeOutcome:
    parsed_key = stage_key(store, config, "parsed", partition, "parsed")
    raw = _raw_of(store, config, partition, parsed_key)
    meta_key = f"{staging}/{META}"
    quarantine_key = f"{layout.quarantine(config.dataset_id, partition)}/{PART}"
    day = today or dt.datetime.now(dt.UTC).date()
    earlier = _read_meta(store, meta_key)
    data = _reuse_normalized(store, staging, earlier, quarantine_key, raw, day)
    if data is None:
        data = _normalize_partition(
            store, config, parsed_key, staging, quarantine_key, day, earlier, raw
        )
    keys = [part["key"] for part in data.parts]
    schema = data.staged.schema
    current, _ = read_current(store, config.dataset_id)
    visible_schema = pa.schema([f for f in schema if f.name not in HIDDEN_COLUMNS])
    needed = [c for c in needed_columns(config) if c in visible_schema.names]
    rows = data.counts["normalized"]
    inputs = CheckInputs(
        table=read_parts(store, keys, columns=needed)
        if needed
        else pa.table({"_": pa.nulls(rows)}).drop_columns(["_"]),
        rejected=data.rejected_head,
        rows_parsed=data.counts["parsed"],
        published_schema=current.schema if current else None,
        now=dt.datetime.now(dt.UTC),
        schema=hex_schema(visible_schema),
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
        "parts": data.parts,
    }
    store.put(meta_key, json.dumps(meta, default=str).encode())
    _remove_old_parts(store, config, staging, keys, earlier)
    return NormalizeOutcome(
        data.staged, data.counts, results, quarantine_key, data.high_water_marks, store, keys
    )


def _remove_old_parts(
    store: ObjectStore, config: DatasetConfig, staging: str, keys: list[str], earlier: dict | None
) -> None:
    """Once this run's list is written: the parts the list before it named and no list names
    now (an overlapping run's list may have replaced this one's meanwhile: its parts stay),
    and parts no list names that are older than the lock TTL (left by a run that crashed, or
    made by an overlapping run whose list lost). A part another run is writing or listing now
    is never removed."""
    stored = _read_meta(store, f"{staging}/{META}") or {}
    listed = set(keys) | {part["key"] for part in staged_parts(stored, staging)}
    old = {part["key"] for part in staged_parts(earlier, staging)} - listed if earlier else set()
    cutoff = time.time() - config.lock.ttl_s
    for key, (_, modified) in store.stat_list(staging).items():
        if PART_NAME.search(key) and key not in listed and modified < cutoff:
            old.add(key)
    for key in sorted(old):
        discard(store, key)


def _read_meta(store: ObjectStore, meta_key: str) -> dict | None:
    if not store.exists(meta_key):
        return None
    try:
        return json.loads(store.get(meta_key))
    except (json.JSONDecodeError, UnicodeDecodeError):  # a damaged file: made again
        return None


def staged_parts(meta: dict, staging: str) -> list[dict]:
    """The parts a normalized meta.json lists (one `part-00000.parquet` before parts had a list)."""
    return meta.get("parts") or [{"key": f"{staging}/{PART}", "digest": None, "clean": False}]


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
    store: ObjectStore,
    staging: str,
    meta: dict | None,
    quarantine_key: str,
    raw: dict,
    day: dt.date,
) -> "_NormalizedData | None":
    fingerprint = raw.get("fingerprint")
    if not fingerprint or meta is None:
        return None
    if meta.get("raw", {}).get("fingerprint") != fingerprint or meta.get("day") != day.isoformat():
        return None
    parts = staged_parts(meta, staging)
    keys = [part["key"] for part in parts]
    if not all(store.exists(key) for key in keys):
        return None
    schema = store.parquet_schema(keys[0])
    rejected = (
        store.read_parquet(quarantine_key).slice(0, 20)
        if store.exists(quarantine_key)
        else pa.table({})
    )
    counts = meta["counts"]
    staged = Staged(counts["normalized"], schema, parts_head(store, keys, PREVIEW_HEAD))
    return _NormalizedData(staged, counts, meta.get("high_water_marks", {}), rejected, parts)


def _kept(store: ObjectStore, key: str, earlier: dict | None, schema: pa.Schema | None) -> bool:
    """Whether the part at `key`, as `earlier` (its entry in the last meta.json) describes it,
    can stand for the batch: it had nothing rejected or repeated, and has the run's schema."""
    if earlier is None or not earlier.get("clean"):
        return False
    if not store.exists(key):
        return False
    return schema is None or store.parquet_schema(key).equals(schema, check_metadata=False)


def _normalize_partition(
    store: ObjectStore,
    config: DatasetConfig,
    parsed_key: str,
    staging: str,
    quarantine_key: str,
    day: dt.date,
    earlier: dict | None,
    raw: dict,
) -> _NormalizedData:
    """One part per parsed batch: kept from the last run when it holds the same batch (digest),
    made under the same contract, code and day (all in the part's name), else normalized now.
    A part of no batch of its own (a plugin's whole partition) is named after the parsed
    data's fingerprint instead: two runs of one input make parts of the same names."""
    made_with = normalized_fingerprint(config, day)
    whole = f"whole:{raw['fingerprint']}:{made_with}" if raw.get("fingerprint") else None
    kept = {part["key"]: part for part in (earlier or {}).get("parts", [])}
    state = {
        "parsed": 0,
        "duplicates": 0,
        "rejected": [],
        "keys": KeyTracker(),
        "conflicting": frozenset(),
        "hwm": {},
    }
    parts: list[dict] = []
    schema: pa.Schema | None = None
    writer = PartWriter(store)

    def settle(batch: pa.Table, digest: str | None, key: str, normalizing: Future | None) -> None:
        """The batch's part, in order: kept, or normalized (ahead, on a thread, or now)."""
        nonlocal schema
        if normalizing is None and _kept(store, key, kept.get(key), schema):
            parts.append(kept[key])
            schema = schema or store.parquet_schema(key)
            _track_kept(store, config, key, kept[key], state)
            return
        result = normalize(batch, config, day) if normalizing is None else normalizing.result()
        table = result.table if schema is None else _conform_part(key, result.table, schema)
        schema = schema or table.schema
        clean = not (
            result.rejected.num_rows or result.duplicates_dropped or result.conflicting_keys
        )
        _track(config, batch.num_rows, result, state)
        parts.append(
            {
                "key": key,
                "rows": table.num_rows,
                "parsed": batch.num_rows,
                "digest": digest,
                "clean": clean,
            }
        )
        writer.write(key, table)

    # Batches are normalized NORMALIZE_AHEAD at a time (Arrow and DuckDB work without the GIL),
    # and settled in their order. One the last run may have made a part of is decided when its
    # turn comes (against the schema of the parts before it), and normalized then if need be.
    pool = ThreadPoolExecutor(max_workers=NORMALIZE_AHEAD)
    ahead: deque[tuple] = deque()
    try:
        for index, (batch, digest) in enumerate(_parsed_batches(store, parsed_key, config)):
            key = part_key(staging, index, f"{digest}:{made_with}" if digest else whole)
            maybe_kept = digest is not None and (kept.get(key) or {}).get("clean", False)
            normalizing = None if maybe_kept else pool.submit(normalize, batch, config, day)
            ahead.append((batch, digest, key, normalizing))
            while len(ahead) >= NORMALIZE_AHEAD:
                settle(*ahead.popleft())
        while ahead:
            settle(*ahead.popleft())
    finally:
        pool.shutdown(cancel_futures=True)
        writer.close()
    assert schema is not None
    rows = sum(part["rows"] for part in parts)
    conflicts, repeats = _dedupe_across_batches(
        store, parts, state["keys"], state["conflicting"], parsed_key
    )
    rows -= repeats.size + conflicts.num_rows
    keys = [part["key"] for part in parts]
    if conflicts.num_rows:  # rows left out after the batches were counted: marks again
        state["hwm"] = {}
        for table in _part_columns(store, keys, config):
            state["hwm"] = high_water_marks(config, table, state["hwm"])
    rejected = state["rejected"] + ([conflicts] if conflicts.num_rows else [])
    rows_rejected = sum(t.num_rows for t in rejected)
    all_rejected = pa.concat_tables(rejected, promote_options="permissive") if rejected else None
    if all_rejected is not None:  # replaces the last run's, whole
        store.write_parquet(quarantine_key, all_rejected)
    else:
        discard(store, quarantine_key)
    counts = {
        "parsed": state["parsed"],
        "rejected": rows_rejected,
        "duplicates": state["duplicates"] + int(repeats.size),
        "normalized": rows,
    }
    rejected_head = all_rejected.slice(0, 20) if all_rejected is not None else pa.table({})
    staged = Staged(rows, schema, parts_head(store, keys, PREVIEW_HEAD))
    return _NormalizedData(staged, counts, state["hwm"], rejected_head, parts)


def _conform_part(key: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A later part in the first part's schema (a column all null in one batch, say)."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StageError(f"{key}: a batch's columns differ from the first batch's: {exc}") from None


def _track(config: DatasetConfig, parsed_rows: int, result, state: dict) -> None:
    state["parsed"] += parsed_rows
    state["duplicates"] += result.duplicates_dropped
    if result.rejected.num_rows:
        state["rejected"].append(result.rejected)
    state["keys"].add(result.table[KEY_HASH])
    state["conflicting"] |= result.conflicting_keys
    state["hwm"] = high_water_marks(config, result.table, state["hwm"])


def _track_kept(store: ObjectStore, config: DatasetConfig, key: str, part: dict, state: dict):
    """A kept part's keys and newest times, read back (its batch was not normalized again)."""
    state["parsed"] += part["parsed"]
    for table in _part_columns(store, [key], config, with_keys=True):
        state["keys"].add(table[KEY_HASH])
        state["hwm"] = high_water_marks(config, table, state["hwm"])


def _part_columns(store: ObjectStore, keys: list[str], config: DatasetConfig, with_keys=False):
    """The parts' columns that high-water marks (and, `with_keys`, repeats) are found from."""
    names = set(store.parquet_schema(keys[0]).names)
    wanted = [SERIES_CODE, config.normalize.time_column] + ([KEY_HASH] if with_keys else [])
    yield from iter_parts(store, keys, columns=[c for c in wanted if c in names])


def _dedupe_across_batches(
    store: ObjectStore,
    parts: list[dict],
    tracker: KeyTracker,
    conflicting: frozenset[bytes],
    parsed_key: str,
) -> tuple[pa.Table, np.ndarray]:
    """Keys repeated across batches (rare): drop exact repeats, quarantine conflicts, rewrite
    the parts that held them. Returns (the quarantined rows, the dropped positions)."""
    candidates = tracker.candidates(conflicting)
    if candidates.size == 0:
        return pa.table({}), np.zeros(0, dtype=np.int64)
    rows = _take_positions(store, parts, candidates)
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
    _drop_positions(store, parts, drop)
    return conflicts, repeats


def _parsed_rows(store: ObjectStore, parsed_key: str, rows: list[int]) -> pa.Table:
    wanted = pa.array(rows, pa.int64())
    parts = [
        batch.filter(pc.is_in(batch[ROW_COLUMN], value_set=wanted))
        for batch in store.iter_parquet(parsed_key)
    ]
    return pa.concat_tables(parts).combine_chunks()


def _part_spans(parts: list[dict], positions: np.ndarray):
    """(index, part, positions within it) for every part that holds some of the global
    `positions`."""
    start = 0
    for index, part in enumerate(parts):
        end = start + part["rows"]
        local = positions[(positions >= start) & (positions < end)] - start
        if local.size:
            yield index, part, local
        start = end


def _take_positions(store: ObjectStore, parts: list[dict], positions: np.ndarray) -> pa.Table:
    return pa.concat_tables(
        [
            store.read_parquet(part["key"]).take(pa.array(local))
            for _, part, local in _part_spans(parts, positions)
        ]
    )


def _drop_positions(store: ObjectStore, parts: list[dict], positions: np.ndarray) -> None:
    """Rewrite the parts that hold `positions` without those rows (no longer their batch's
    normalized rows as such: not kept for a later run), each as a part named after the part it
    is made of and the rows left out (the part it replaces stays until no list names it)."""
    for index, part, local in list(_part_spans(parts, positions)):
        table = store.read_parquet(part["key"])
        keep = np.ones(table.num_rows, dtype=bool)
        keep[local] = False
        left_out = hashlib.sha256(np.ascontiguousarray(local, dtype=np.int64).tobytes())
        made_of = f"{part['key']} without {left_out.hexdigest()}"
        key = part_key(part["key"].rsplit("/", 1)[0], index, made_of)
        store.write_parquet(key, table.filter(pa.array(keep)))
        part.update(key=key, rows=int(keep.sum()), clean=False)
