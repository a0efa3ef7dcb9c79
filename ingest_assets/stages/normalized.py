"""The normalized stage: typed, keyed and checked rows, staged as one part per parsed batch.

A part is named after what it is made of (its parsed batch's digest and how it was made) and is
never rewritten in place; `meta.json` lists the parts of the last complete run. A later run keeps
a part whose batch it meets again under the same contract, code and day (an input that grew at
its end normalizes only its new batches); rejected rows go to quarantine with a reason.
A date/time column of text is read in one format over the whole input: the contract's, the
published version's (kept), or one inferred from all its values before the batches are
normalized.
"""

import dataclasses
import datetime as dt
import json
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from ingest_assets import layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore import Manifest, read_current
from ingest_assets.parsers.base import CELLS_META, HIDDEN_COLUMNS
from ingest_assets.rows.checks import CheckInputs, CheckResult, evaluate, needed_columns
from ingest_assets.rows.hashing import hex_schema
from ingest_assets.rows.normalize import Normalized, normalize
from ingest_assets.stages.batches import Tally, conform_part, dedupe_across, input_formats
from ingest_assets.stages.parts import (
    PART_NAME,
    PartWriter,
    batch_digest,
    part_key,
    part_keys,
    read_parts,
)
from ingest_assets.stages.parts import head as parts_head
from ingest_assets.stages.staged import (
    META,
    PART,
    PREVIEW_HEAD,
    Staged,
    StageError,
    discard,
    normalized_fingerprint,
    nothing_published,
    reporting_full_disk,
    stage_key,
    visible,
)
from ingest_assets.stages.state import (
    CheckRecord,
    Counts,
    NormalizedMeta,
    RawInfo,
    StagedPart,
    read_latest,
    read_meta,
    single_part,
    write_meta,
)
from ingest_resources import progress
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime

NORMALIZE_AHEAD = 2  # batches normalized at once: as many as there are cores to share here


@dataclass(frozen=True)
class NormalizeOutcome:
    staged: Staged  # the normalized rows (with `_row`), as the UI shows them
    counts: Counts
    checks: list[CheckResult]
    quarantine_key: str
    high_water_marks: dict[str, str]
    store: ObjectStore
    keys: list[str]  # the parts of the staged normalized rows, in order
    # the format each date/time column of text was read with (contract, kept or inferred)
    formats: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def table(self) -> pa.Table:
        """The accepted rows, read whole from the store (for small data and tests)."""
        return visible(read_parts(self.store, self.keys))

    @property
    def rejected(self) -> pa.Table:
        if self.store.exists(self.quarantine_key):
            return self.store.read_parquet(self.quarantine_key)
        return pa.table({})


def read_normalized(
    rt: Runtime, config: DatasetConfig, partition: str, columns: list[str] | None = None
) -> pa.Table:
    """The staged normalized rows (only `columns` of them, for a large partition)."""
    keys = normalized_meta(rt.store, config, partition).part_keys
    if columns is not None:
        present = set(rt.store.parquet_schema(keys[0]).names)
        return read_parts(rt.store, keys, columns=[c for c in columns if c in present])
    return visible(read_parts(rt.store, keys))


def normalized_meta(store: ObjectStore, config: DatasetConfig, partition: str) -> NormalizedMeta:
    """The staged normalized partition's meta.json (which lists its parts)."""
    staging = layout.staging(config.dataset_id, "normalized", partition)
    meta = read_meta(store, staging)
    if meta is not None:
        return meta
    if part_keys(store, staging) or store.exists(f"{staging}/{PART}"):
        raise StageError(
            f"dataset {config.dataset_id}: the normalized data of partition {partition!r} is "
            f"incomplete (no {META}); materialize {config.dataset_id}/normalized again"
        )
    raise StageError(
        f"dataset {config.dataset_id}: no normalized data for partition {partition!r}; "
        f"materialize {config.dataset_id}/normalized first"
    )


def _parsed_batches(
    store: ObjectStore, parsed_key: str, config: DatasetConfig
) -> Iterator[tuple[pa.Table, str | None]]:
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
    counts: Counts
    high_water_marks: dict[str, str]
    rejected_head: pa.Table
    parts: list[StagedPart]  # in order
    formats: dict[str, str]


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
    current, _ = read_current(rt.store, config.dataset_id)  # (read once: checks, messages)
    published = nothing_published(current.version if current else None)
    with reporting_full_disk(
        rt.store, config, "normalized", partition, f"{staging}/", lambda: published
    ) as store:
        outcome = _run_normalize(store, config, partition, staging, today, current)
    pa.default_memory_pool().release_unused()
    return dataclasses.replace(outcome, store=rt.store)


def _run_normalize(
    store: ObjectStore,
    config: DatasetConfig,
    partition: str,
    staging: str,
    today: dt.date | None,
    current: Manifest | None,
) -> NormalizeOutcome:
    parsed_key = stage_key(store, config, "parsed", partition, "parsed")
    raw = _raw_of(store, config, partition, parsed_key)
    quarantine_key = f"{layout.quarantine(config.dataset_id, partition)}/{PART}"
    day = today or dt.datetime.now(dt.UTC).date()
    earlier = read_meta(store, staging)
    kept = current.formats if current else {}
    data = _reuse_normalized(store, earlier, quarantine_key, raw, day, kept)
    if data is None:
        data = _normalize_partition(
            store, config, parsed_key, (staging, quarantine_key), day, earlier, raw, kept
        )
    keys = [part.key for part in data.parts]
    schema = data.staged.schema
    visible_schema = pa.schema([f for f in schema if f.name not in HIDDEN_COLUMNS])
    needed = [c for c in needed_columns(config) if c in visible_schema.names]
    rows = data.counts.normalized
    inputs = CheckInputs(
        table=read_parts(store, keys, columns=needed)
        if needed
        else pa.table({"_": pa.nulls(rows)}).drop_columns(["_"]),
        rejected=data.rejected_head,
        rows_parsed=data.counts.parsed,
        published_schema=current.schema if current else None,
        now=dt.datetime.now(dt.UTC),
        schema=hex_schema(visible_schema),
        rows_rejected=data.counts.rejected,
        repeated_keys=0,
    )
    results = evaluate(config, inputs)
    meta = NormalizedMeta(
        day=day,  # of collection_date: reused the same day only
        raw=raw,
        counts=data.counts,
        checks={r.name: CheckRecord.of(r) for r in results},
        high_water_marks=data.high_water_marks,
        parts=data.parts,
        formats=data.formats,
    )
    write_meta(store, staging, meta)
    _remove_old_parts(store, config, staging, keys, earlier)
    return NormalizeOutcome(
        data.staged,
        data.counts,
        results,
        quarantine_key,
        data.high_water_marks,
        store,
        keys,
        data.formats,
    )


def _remove_old_parts(
    store: ObjectStore,
    config: DatasetConfig,
    staging: str,
    keys: list[str],
    earlier: NormalizedMeta | None,
) -> None:
    """Once this run's list is written: the parts the list before it named and no list names
    now (an overlapping run's list may have replaced this one's meanwhile: its parts stay),
    and parts no list names that are older than the lock TTL (left by a run that crashed, or
    made by an overlapping run whose list lost). A part another run is writing or listing now
    is never removed."""
    stored = read_meta(store, staging)  # (None: as if it listed the single part of old)
    listed = set(keys) | set(stored.part_keys if stored else [single_part(staging).key])
    old = set(earlier.part_keys) - listed if earlier else set()
    cutoff = time.time() - config.lock.ttl_s
    for key, (_, modified) in store.stat_list(staging).items():
        if PART_NAME.search(key) and key not in listed and modified < cutoff:
            old.add(key)
    for key in sorted(old):
        discard(store, key)


def _raw_of(store: ObjectStore, config: DatasetConfig, partition: str, parsed_key: str) -> RawInfo:
    """The raw info the parsed data was made from, refreshed by the latest fetch of the same
    bytes (its time, ETag and Last-Modified) when parsing was skipped for it."""
    raw = RawInfo.of_parsed(store.parquet_schema(parsed_key))
    if raw is None:
        raise StageError(f"{parsed_key}: the parsed data does not say what it was parsed from")
    latest = read_latest(store, config.dataset_id, partition)
    if latest is not None and latest.sha256 == raw.sha256:
        return dataclasses.replace(latest, fingerprint=raw.fingerprint)
    return raw


def _reuse_normalized(
    store: ObjectStore,
    meta: NormalizedMeta | None,
    quarantine_key: str,
    raw: RawInfo,
    day: dt.date,
    kept: dict[str, str],
) -> "_NormalizedData | None":
    fingerprint = raw.fingerprint
    if not fingerprint or meta is None:
        return None
    if meta.raw.fingerprint != fingerprint or meta.day != day:
        return None
    if any(meta.formats.get(name, fmt) != fmt for name, fmt in kept.items()):
        return None  # (read before the published version kept another format)
    keys = meta.part_keys
    if not all(store.exists(key) for key in keys):
        return None
    schema = store.parquet_schema(keys[0])
    rejected = (
        store.read_parquet(quarantine_key).slice(0, 20)
        if store.exists(quarantine_key)
        else pa.table({})
    )
    counts = meta.counts
    staged = Staged(counts.normalized, schema, parts_head(store, keys, PREVIEW_HEAD))
    return _NormalizedData(
        staged, counts, meta.high_water_marks, rejected, meta.parts, meta.formats
    )


def _kept(
    store: ObjectStore, key: str, earlier: StagedPart | None, schema: pa.Schema | None
) -> bool:
    """Whether the part at `key`, as `earlier` (its entry in the last meta.json) describes it,
    can stand for the batch: it had nothing rejected or repeated, and has the run's schema."""
    if earlier is None or not earlier.clean:
        return False
    if not store.exists(key):
        return False
    return schema is None or store.parquet_schema(key).equals(schema, check_metadata=False)


def _normalize_partition(
    store: ObjectStore,
    config: DatasetConfig,
    parsed_key: str,
    keys_of: tuple[str, str],
    day: dt.date,
    earlier: NormalizedMeta | None,
    raw: RawInfo,
    kept_formats: dict[str, str],
) -> _NormalizedData:
    """One part per parsed batch: kept from the last run when it holds the same batch (digest),
    made under the same contract, code, day and time formats (all in the part's name), else
    normalized now. A part of no batch of its own (a plugin's whole partition) is named after
    the parsed data's fingerprint instead: two runs of one input make parts of the same names.
    `keys_of`: the partition's staging folder and quarantine key."""
    staging, quarantine_key = keys_of
    builtin = config.normalize.builtin  # (a plugin's columns are its own: it has one batch)
    given = (
        input_formats(store, parsed_key, config, kept_formats) if builtin else dict(kept_formats)
    )
    formats = dict(given)
    made_with = normalized_fingerprint(config, day)
    if given:
        made_with += f":formats {json.dumps(given, sort_keys=True)}"
    whole = f"whole:{raw.fingerprint}:{made_with}" if raw.fingerprint else None
    kept = {part.key: part for part in earlier.parts} if earlier else {}
    tally = Tally(config)
    parts: list[StagedPart] = []
    schema: pa.Schema | None = None
    writer = PartWriter(store)

    def settle(
        batch: pa.Table, digest: str | None, key: str, normalizing: "Future[Normalized] | None"
    ) -> None:
        """The batch's part, in order: kept, or normalized (ahead, on a thread, or now)."""
        nonlocal schema
        if normalizing is None and _kept(store, key, kept.get(key), schema):
            parts.append(kept[key])
            schema = schema or store.parquet_schema(key)
            tally.add_kept(store, kept[key])
            return
        if normalizing is None:
            result = normalize(batch, config, day, given, not builtin)
        else:
            result = normalizing.result()
        formats.update(result.formats)
        table = result.table if schema is None else conform_part(key, result.table, schema)
        schema = schema or table.schema
        clean = not (
            result.rejected.num_rows or result.duplicates_dropped or result.conflicting_keys
        )
        tally.add(batch.num_rows, result)
        parts.append(StagedPart(key, table.num_rows, batch.num_rows, digest, clean))
        writer.write(key, table)

    # Batches are normalized NORMALIZE_AHEAD at a time (Arrow and DuckDB work without the GIL),
    # and settled in their order. One the last run may have made a part of is decided when its
    # turn comes (against the schema of the parts before it), and normalized then if need be.
    pool = ThreadPoolExecutor(max_workers=NORMALIZE_AHEAD)
    ahead: deque[tuple[pa.Table, str | None, str, Future[Normalized] | None]] = deque()
    try:
        for index, (batch, digest) in enumerate(_parsed_batches(store, parsed_key, config)):
            progress.add(rows=batch.num_rows)
            key = part_key(staging, index, f"{digest}:{made_with}" if digest else whole)
            earlier_part = kept.get(key)
            maybe_kept = digest is not None and earlier_part is not None and earlier_part.clean
            normalizing = (
                None
                if maybe_kept
                else pool.submit(normalize, batch, config, day, given, not builtin)
            )
            ahead.append((batch, digest, key, normalizing))
            while len(ahead) >= NORMALIZE_AHEAD:
                settle(*ahead.popleft())
        while ahead:
            settle(*ahead.popleft())
    finally:
        pool.shutdown(cancel_futures=True)
        writer.close()
    assert schema is not None
    rows = sum(part.rows for part in parts if part.rows is not None)  # (all are counted)
    conflicts, dropped = dedupe_across(store, parts, tally, parsed_key)
    rows -= dropped
    keys = [part.key for part in parts]
    if conflicts.num_rows:  # rows left out after the batches were counted: marks again
        tally.mark_again(store, keys)
    rejected = tally.rejected + ([conflicts] if conflicts.num_rows else [])
    rows_rejected = sum(t.num_rows for t in rejected)
    all_rejected = pa.concat_tables(rejected, promote_options="permissive") if rejected else None
    if all_rejected is not None:  # replaces the last run's, whole
        store.write_parquet(quarantine_key, all_rejected)
    else:
        discard(store, quarantine_key)
    counts = Counts(
        parsed=tally.parsed,
        rejected=rows_rejected,
        duplicates=tally.duplicates,
        normalized=rows,
    )
    rejected_head = all_rejected.slice(0, 20) if all_rejected is not None else pa.table({})
    staged = Staged(rows, schema, parts_head(store, keys, PREVIEW_HEAD))
    return _NormalizedData(staged, counts, tally.high_water_marks, rejected_head, parts, formats)
