"""`ingest repair`: put back what can be put back from the immutable events.

- `current/manifest.json` lost or unreadable: restored to the newest committed version whose
  whole chain verifies (every manifest, every event file's size and sha256).
- A chain broken at some version (an event file or manifest gone): `current` goes back to the
  newest version below the break, and the versions above it are named (their rows cannot be
  read back; re-run their partitions to publish them again).
- The key index, the projections and planned follow-ups: rebuilt and finished from the events.
"""

from dataclasses import dataclass, field

from ingest_assets import layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore import follow_ups, projections
from ingest_assets.eventstore import index as key_index
from ingest_assets.eventstore.chain import (
    chain_problems,
    committed_versions,
    read_current,
    read_manifest,
    version_chain,
)
from ingest_assets.eventstore.errors import BrokenChain, CurrentLost, EventStoreError
from ingest_assets.eventstore.guard import guard_of
from ingest_assets.eventstore.manifest import Manifest
from ingest_assets.eventstore.settle import Locks, settle
from ingest_resources.object_store import ObjectStore


@dataclass
class RepairReport:
    dataset_id: str
    version: str | None = None  # current after the repair
    actions: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # versions no longer in the chain


def _whole_chain(store: ObjectStore, dataset_id: str, head: Manifest) -> list[Manifest] | None:
    try:
        chain = version_chain(store, dataset_id, head)
    except BrokenChain:
        return None
    return None if chain_problems(store, dataset_id, chain, checksums=True) else chain


def _newest_whole(
    store: ObjectStore, dataset_id: str, versions: list[str]
) -> tuple[Manifest, list[Manifest]] | None:
    for version in sorted(versions, reverse=True):
        try:
            head = read_manifest(store, dataset_id, version)
        except (KeyError, EventStoreError):
            continue
        chain = _whole_chain(store, dataset_id, head)
        if chain is not None:
            return head, chain
    return None


def repair(
    store: ObjectStore,
    locks: Locks,
    config: DatasetConfig,
    notify: follow_ups.Notify | None = None,
) -> RepairReport:
    dataset_id = config.dataset_id
    report = RepairReport(dataset_id)
    with locks.hold(config.lock_key, config.lock.ttl_s) as lease:
        found = store.get_with_etag(layout.current(dataset_id))
        etag = found[1] if found else None
        try:
            current, _ = read_current(store, dataset_id)
            candidates = None
        except CurrentLost:
            current, candidates = None, committed_versions(store, dataset_id)
        if current is None and candidates is None:
            report.actions.append("nothing published yet: nothing to repair")
            return report
        chain: list[Manifest] | None = None
        if current is not None:
            chain = _whole_chain(store, dataset_id, current)
            if chain is None:  # broken: back to the newest whole version below the break
                walk = _ancestors(store, dataset_id, current)
                candidates = [manifest.version for manifest in walk]
                report.dropped = [m.version for m in walk]
        if chain is None:
            best = _newest_whole(store, dataset_id, candidates or [])
            if best is None:
                raise BrokenChain(
                    f"dataset {dataset_id}: no published version has a whole chain; nothing "
                    f"was changed (`ingest verify {dataset_id}` lists what is missing)"
                )
            head, chain = best
            report.dropped = [v for v in report.dropped if v > head.version]
            body = store.get(layout.manifest(dataset_id, head.version))  # (as it was written)
            store.put_if_match(layout.current(dataset_id), body, etag)
            dropped = ", ".join(report.dropped)
            report.actions.append(
                f"{layout.current(dataset_id)} restored to version {head.version}"
                + (f" (dropped {dropped}: their events are not whole)" if dropped else "")
            )
        guard = guard_of(lease)
        # (a stored index may say it is current and still differ: it is rebuilt all the same)
        store.delete_prefix(layout.index(dataset_id))
        key_index.heal(store, dataset_id, chain, guard)
        report.actions.append(f"{layout.index(dataset_id)} rebuilt from the events")
        if config.publish.object_store:
            projections.rebuild(store, config, chain, guard)
            report.actions.append("projections rebuilt from the events")
        for manifest in chain:  # (MANIFEST_FORMAT_1 stores, of Ingest up to 8ed5491, have none)
            follow_ups.record(store, manifest, guard)
        errors = settle(store, config, chain, guard, notify)[1]
        report.actions += errors
        report.version = chain[-1].version
    return report


def _ancestors(store: ObjectStore, dataset_id: str, head: Manifest) -> list[Manifest]:
    """`head` and every ancestor that can still be read, newest first."""
    found = [head]
    while found[-1].parent_version:
        try:
            found.append(read_manifest(store, dataset_id, found[-1].parent_version))
        except (KeyError, EventStoreError):
            break
    return found
