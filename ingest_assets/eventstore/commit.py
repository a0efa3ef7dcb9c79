"""Exactly-once publishing: diff, immutable event version, CAS pointer swap, follow-ups.

1. Read `current` and its chain (refused when `current` was lost or the chain is broken), move
   the lease's fence above every fence in the chain, and settle what a run before left
   undone: the key index, the projections and any planned follow-ups.
2. Anti-join the normalized rows on `key_hash`: unknown keys are inserts, known keys with a new
   `row_hash` are updates (unless `incremental.revisions: ignore`, or the key's row came from a
   later partition), the rest cost nothing.
3. Write the event's data and manifest (immutable), plan the follow-ups, then replace `current`
   only if it still has the ETag read in 1. A writer that lost the race removes its event and
   changes nothing. Then the follow-ups (follow_ups.py).
"""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore import follow_ups, projections
from ingest_assets.eventstore import index as key_index
from ingest_assets.eventstore.diff import (
    check_key_change,
    check_type_changes,
    diff,
    high_water_marks,
    new_version,
    schema_hash,
    superseding_versions,
)
from ingest_assets.eventstore.errors import PublishConflict, StaleWriter
from ingest_assets.eventstore.events import OP, VERSION, EventWriter
from ingest_assets.eventstore.files import FILES_INPUT, FileEntry, write_part
from ingest_assets.eventstore.guard import Guard, guard_of
from ingest_assets.eventstore.keyindex import KeyIndex
from ingest_assets.eventstore.manifest import Manifest
from ingest_assets.eventstore.parallel import failpoint
from ingest_assets.eventstore.rows import Rows, StagedRows, TableRows
from ingest_assets.eventstore.settle import Locks, open_chain, settle
from ingest_assets.parsers.base import HIDDEN_COLUMNS
from ingest_assets.rows.hashing import Parts, digest_columns, digest_schema, hex_schema
from ingest_resources import progress
from ingest_resources.locks import Lease, LeaseLost
from ingest_resources.object_store import CasConflict, ObjectStore

CODE_VERSION = "ingest-0.1.0"


@dataclass(frozen=True)
class PublishResult:
    dataset_id: str
    version: str | None  # the current version after this publish
    parent: str | None
    committed: bool  # False: nothing new, no version written
    rows_added: int
    rows_revised: int
    rows_repeated: int
    manifest: Manifest | None
    rows_superseded: int = 0  # rows a later partition had published other values for
    follow_up_errors: tuple[str, ...] = ()  # "published vN; follow-up X failed: ..."


@dataclass
class Prepared:
    """An event version written to the store but not yet pointed to by `current`."""

    config: DatasetConfig
    parent: Manifest | None
    parent_etag: str | None
    chain: list[Manifest]
    index: KeyIndex
    keys: list[Parts] = field(default_factory=list)  # key and row hashes of the event rows
    row_hashes: list[Parts] = field(default_factory=list)
    added: int = 0
    revised: int = 0
    repeated: int = 0
    superseded: int = 0
    manifest: Manifest | None = None
    windows: frozenset[str] = frozenset()  # files that are, as they are, their month's window
    follow_up_errors: list[str] = field(default_factory=list)

    @property
    def version(self) -> str | None:
        return self.manifest.version if self.manifest else None


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
    lease: Lease | None = None,
    notify: follow_ups.Notify | None = None,
    formats: dict[str, str] | None = None,  # per time column, over the parent's (manifest)
    landed: tuple[FileEntry, ...] = (),  # a landing zone's files this version ingests
) -> Prepared:
    """Diff the normalized rows against the index, batch by batch, writing the new and revised
    ones as the event data of a new version, then its manifest (not yet `current`)."""
    dataset_id = config.dataset_id
    rows_in = TableRows(normalized) if isinstance(normalized, pa.Table) else normalized
    source_schema = rows_in.schema  # read once (a staged file's footer)
    columns = [f.name for f in source_schema if f.name not in HIDDEN_COLUMNS]
    schema = digest_schema(pa.schema([source_schema.field(c) for c in columns]))
    current, etag, chain = open_chain(store, dataset_id)
    failpoint("after_reading_current")
    check_key_change(dataset_id, current.primary_keys if current else None, config.primary_keys)
    check_type_changes(dataset_id, current.schema if current else None, hex_schema(schema))
    guard = guard_of(lease)
    if lease is not None:
        highest = max((manifest.fence or 0 for manifest in chain), default=0)
        lease.advance(highest + 1)  # (a no-op unless the counter was reset or lost)
        fence = lease.fence
    index, errors = settle(store, config, chain, guard, notify)
    if index is None:  # the stored index was up to date: read it
        index = key_index.load(store, dataset_id, chain)[0]
    superseding = superseding_versions(
        index, {manifest.version: manifest.partition for manifest in chain}, partition
    )

    parent = current.version if current else None
    version = new_version(now, parent)
    event_schema = schema.append(pa.field(OP, pa.string())).append(pa.field(VERSION, pa.string()))
    writer = EventWriter(store, config, version, event_schema)
    prepared = Prepared(config, current, etag, chain, index, follow_up_errors=errors)
    if isinstance(rows_in, StagedRows):  # (under the lock: `current` cannot move meanwhile)
        rows_in, prepared.repeated = rows_in.unpublished(current)
    marks = current.high_water_marks if current else None
    try:
        for batch in map(digest_columns, rows_in.batches(columns)):  # (hex given: as bytes)
            progress.add(rows=batch.num_rows)
            is_new, is_revised, is_superseded, keys, hashes = diff(
                index, batch, config.incremental.revisions, superseding
            )
            chosen = is_new | is_revised
            prepared.added += int(is_new.sum())
            prepared.revised += int(is_revised.sum())
            prepared.superseded += int(is_superseded.sum())
            prepared.repeated += int((~chosen & ~is_superseded).sum())
            if not chosen.any():
                continue
            event = batch if chosen.all() else batch.filter(pa.array(chosen))  # (a first load)
            ops = pc.if_else(pa.array(is_new[chosen]), "insert", "update")
            event = event.append_column(OP, ops).append_column(
                VERSION, pa.repeat(pa.scalar(version, pa.string()), event.num_rows)
            )
            writer.write(event.cast(writer.schema))
            prepared.keys.append(tuple(k[chosen] for k in keys))
            prepared.row_hashes.append(tuple(r[chosen] for r in hashes))
            marks = high_water_marks(config, event, marks)
    except BaseException:
        writer.abort()
        raise
    if prepared.added + prepared.revised == 0 and not config.publish.publish_empty and not landed:
        writer.abort()  # (files read, even without new rows, are recorded: read once)
        return prepared
    try:
        files = writer.close()
    except BaseException:
        writer.abort()
        raise
    if landed:  # the files ledger's part, committed with the version (eventstore.files)
        inputs = {**inputs, FILES_INPUT: write_part(store, dataset_id, version, landed)}
    failpoint("after_data")
    prepared.windows = frozenset(writer.windows)
    published = current.latest_partition if current else None  # (MANIFEST_FORMAT_1: None)
    latest = max(p for p in (partition, published) if p)
    prepared.manifest = Manifest(
        version=version,
        parent_version=parent,
        dataset_id=dataset_id,
        partition=partition,
        created_at=now.astimezone(dt.UTC).isoformat(),
        code_version=CODE_VERSION,
        files=tuple(files),
        inputs=inputs,
        counts={
            **counts,
            "added": prepared.added,
            "revised": prepared.revised,
            "repeated": prepared.repeated,
            "superseded": prepared.superseded,
        },
        schema_hash=schema_hash(hex_schema(schema)),  # (hashes as people see them: hex)
        schema={f.name: str(f.type) for f in hex_schema(schema)},
        primary_keys=config.primary_keys,
        time_column=config.normalize.time_column
        if config.normalize.time_column in columns
        else "collection_date",
        high_water_marks=dict(sorted((marks or {}).items())),
        rows_total=(current.rows_total if current else 0) + prepared.added,
        checks=checks or {},
        fence=fence,
        latest_partition=latest,
        formats={**(current.formats if current else {}), **(formats or {})},
    )
    body = prepared.manifest.to_bytes()
    if not store.put_if_absent(layout.manifest(dataset_id, version), body):
        raise PublishConflict(f"dataset {dataset_id}: event version {version} already exists")
    failpoint("after_manifest")
    return prepared


def _check_fence(prepared: Prepared, lease: Lease | None) -> None:
    """Fencing: refuse if this writer's lease is gone, or a newer lease holder published the parent."""
    assert prepared.manifest is not None
    dataset_id, version = prepared.config.dataset_id, prepared.version
    parent_fence = prepared.parent.fence if prepared.parent else None
    try:
        if lease is not None:
            lease.check()
        mine = prepared.manifest.fence
        if parent_fence is not None and mine is not None and parent_fence > mine:
            raise LeaseLost(
                f"current was published under fence {parent_fence}, newer than this writer's {mine}"
            )
    except LeaseLost as exc:
        raise StaleWriter(
            f"dataset {dataset_id}: refusing to publish version {version}: {exc}; nothing was changed"
        ) from None


def commit(
    store: ObjectStore,
    prepared: Prepared,
    lease: Lease | None = None,
    notify: follow_ups.Notify | None = None,
) -> list[str]:
    """Swap `current` to the prepared version, then do its follow-ups. Returns the follow-ups
    that failed ("published vN; follow-up X failed: ..."): the version is published all the
    same, and the next run finishes them.

    `lease` (from the dataset lock) is checked just before the swap: a writer whose lease
    expired withdraws its event instead of publishing over a newer writer, and writes nothing
    more, derived files included."""
    config, manifest = prepared.config, prepared.manifest
    assert manifest is not None
    dataset_id = config.dataset_id
    failpoint("before_swap")
    tasks = [follow_ups.RECORD, follow_ups.INDEX, follow_ups.PROJECTIONS, follow_ups.NOTIFY]
    try:
        _check_fence(prepared, lease)
        follow_ups.plan(store, manifest, tasks)
        store.put_if_match(layout.current(dataset_id), manifest.to_bytes(), prepared.parent_etag)
    except (CasConflict, StaleWriter) as exc:
        store.delete_prefix(layout.event(dataset_id, manifest.version))
        follow_ups.drop(store, dataset_id, manifest.version)
        if isinstance(exc, StaleWriter):
            raise
        raise PublishConflict(
            f"dataset {dataset_id}: lost the race to publish version {manifest.version}: {exc}; "
            "nothing was changed, re-run to publish on top of the new version"
        ) from None
    failpoint("after_swap")
    guard = guard_of(lease)
    chain = [*prepared.chain, manifest]

    def make_projections() -> None:
        if not config.publish.object_store:  # (only the events, as a ledger)
            return
        done = projections.state_version(store, dataset_id)
        if done != (prepared.parent.version if prepared.parent else None):
            projections.refresh(store, config, chain, guard)  # (behind: settle failed)
            return
        try:
            projections.apply(store, config, manifest.file_keys, prepared.windows, guard)
        except projections.UNREADABLE:  # a window that cannot be read: all anew
            projections.rebuild(store, config, chain, guard)
            return
        failpoint("after_projections")
        projections.set_state(store, dataset_id, manifest.version, guard)

    # The index is merged and written on a thread while the projections are made (both are
    # derived from the events, each healed on its own); its arrays go once it is written
    with ThreadPoolExecutor(max_workers=1) as writing:
        written = writing.submit(_merge_index, store, prepared, guard)
        failed = follow_ups.run(
            {
                follow_ups.RECORD: lambda: follow_ups.record(store, manifest, guard),
                follow_ups.PROJECTIONS: make_projections,
                follow_ups.INDEX: written.result,
                follow_ups.NOTIFY: follow_ups.notifier_task(notify, manifest),
            },
            f"dataset {dataset_id}: published version {manifest.version}",
        )
    return follow_ups.settled(store, manifest, failed)


def _merge_index(store: ObjectStore, prepared: Prepared, guard: Guard) -> None:
    """The key index with the committed version's keys, written (`prepared.index` is spent:
    a committed version is not prepared again)."""
    assert prepared.manifest is not None
    version = prepared.manifest.version
    if key_index.indexed_version(store, prepared.config.dataset_id) != (
        prepared.parent.version if prepared.parent else None
    ):
        prepared.index = KeyIndex.empty()  # (settle could not write it: healed next time)
        key_index.heal(
            store, prepared.config.dataset_id, [*prepared.chain, prepared.manifest], guard
        )
        return
    index = prepared.index.merged(prepared.keys, prepared.row_hashes, version)
    prepared.index = KeyIndex.empty()
    key_index.write(store, prepared.config.dataset_id, index, version, guard)


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
    notify: follow_ups.Notify | None = None,
    formats: dict[str, str] | None = None,
    landed: tuple[FileEntry, ...] = (),
) -> PublishResult:
    """Publish the new and revised rows of `normalized` as one event version, exactly once."""
    now = now or dt.datetime.now(dt.UTC)
    errors: list[str] = []
    with locks.hold(config.lock_key, config.lock.ttl_s) as lease:
        prepared = prepare(
            store,
            config,
            partition,
            normalized,
            inputs,
            counts,
            now,
            checks,
            None,
            lease,
            notify,
            formats,
            landed,
        )
        errors += prepared.follow_up_errors
        pa.default_memory_pool().release_unused()  # the batches are gone: give their memory back
        if prepared.manifest is not None:
            errors += commit(store, prepared, lease, notify)
    parent = prepared.parent.version if prepared.parent else None
    return PublishResult(
        dataset_id=config.dataset_id,
        version=prepared.version or parent,
        parent=parent,
        committed=prepared.manifest is not None,
        rows_added=prepared.added,
        rows_revised=prepared.revised,
        rows_repeated=prepared.repeated,
        manifest=prepared.manifest or prepared.parent,
        rows_superseded=prepared.superseded,
        follow_up_errors=tuple(errors),
    )
