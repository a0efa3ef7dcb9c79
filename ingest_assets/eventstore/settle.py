"""Before a publish (under the dataset lock): the chain, whole, and what a run before left
undone brought up to its head: the key index, the projections and planned follow-ups."""

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore import follow_ups, projections
from ingest_assets.eventstore import index as key_index
from ingest_assets.eventstore.chain import read_current, require_whole, version_chain
from ingest_assets.eventstore.guard import Guard, guard_of, unguarded
from ingest_assets.eventstore.keyindex import KeyIndex
from ingest_assets.eventstore.manifest import Manifest
from ingest_resources.locks import Lease, LeaseLost
from ingest_resources.object_store import ObjectStore


class Locks(Protocol):
    def hold(
        self, key: str, ttl_s: float, wait_s: float | None = None
    ) -> AbstractContextManager[Lease]: ...


def settle(
    store: ObjectStore,
    config: DatasetConfig,
    chain: list[Manifest],
    guard: Guard = unguarded,
    notify: follow_ups.Notify | None = None,
) -> tuple[KeyIndex | None, list[str]]:
    """Bring what is derived from the chain up to its head and finish planned follow-ups
    (under the dataset lock). Returns the index when it had to be read, and what failed (the
    projections and notifications never block a publish: they are tried again next time)."""
    index = key_index.heal(store, config.dataset_id, chain, guard)
    errors: list[str] = []
    try:
        projections.refresh(store, config, chain, guard)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - reported; rebuilt from the events next time
        errors.append(f"dataset {config.dataset_id}: projections not brought up to date: {exc}")
    by_version = {manifest.version: manifest for manifest in chain}
    for version, tasks in follow_ups.pending(store, config.dataset_id).items():
        manifest = by_version.get(version)
        if manifest is None:  # its swap never happened (or lost the race): nothing to finish
            follow_ups.drop(store, config.dataset_id, version)
            continue
        todo: dict[str, Callable[[], None]] = {
            follow_ups.RECORD: functools.partial(follow_ups.record, store, manifest, guard)
        }
        if follow_ups.NOTIFY in tasks:
            todo[follow_ups.NOTIFY] = follow_ups.notifier_task(notify, manifest)
        failed = follow_ups.run(todo, f"dataset {config.dataset_id}: published version {version}")
        errors += follow_ups.settled(store, manifest, failed)
    return index, errors


def open_chain(
    store: ObjectStore, dataset_id: str
) -> tuple[Manifest | None, str | None, list[Manifest]]:
    """`current`, its ETag and its chain, whole (else CurrentLost or BrokenChain)."""
    current, etag = read_current(store, dataset_id)
    chain = version_chain(store, dataset_id, current)
    require_whole(store, dataset_id, chain)
    return current, etag, chain


def bring_up_to_date(
    store: ObjectStore, locks: Locks, config: DatasetConfig, notify: follow_ups.Notify | None = None
) -> tuple[Manifest | None, list[str]]:
    """Under the dataset lock, settle the chain as a publish would (a run with nothing to
    publish still heals what a run before left behind). Returns `current` and what failed."""
    with locks.hold(config.lock_key, config.lock.ttl_s) as lease:
        current, _, chain = open_chain(store, config.dataset_id)
        return current, settle(store, config, chain, guard_of(lease), notify)[1]
