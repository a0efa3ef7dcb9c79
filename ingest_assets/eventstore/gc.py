"""`ingest gc`: remove what no published version references and no running writer still uses:

- event folders of versions outside the chain (a writer killed before its swap, or that lost
  its race and died before removing its event), once untouched for the lock TTL;
- scratch files (`.write-*`, `.events-*`, `.raw-*`, `*.tmp`, ...) untouched for the lock TTL;
- follow-up plans of versions outside the chain.

It holds the dataset lock, so no publisher of the dataset runs meanwhile, and refuses to run on
a lost `current` or a broken chain (what is referenced could not be told)."""

import time
from dataclasses import dataclass, field

from ingest_assets import layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore.settle import Locks, open_chain
from ingest_resources.object_store import ObjectStore


@dataclass
class GcReport:
    dataset_id: str
    dry_run: bool
    removed: list[str] = field(default_factory=list)  # keys or scratch folders
    files: int = 0
    bytes: int = 0


def _scratch_root(key: str) -> str | None:
    """The key up to its first hidden component (a scratch file or folder), or None."""
    parts = key.split("/")
    for position, part in enumerate(parts):
        if part.startswith("."):
            return "/".join(parts[: position + 1])
    return None


def collect(
    store: ObjectStore,
    locks: Locks,
    config: DatasetConfig,
    dry_run: bool = False,
    min_age_s: float | None = None,
    now: float | None = None,
) -> GcReport:
    dataset_id = config.dataset_id
    report = GcReport(dataset_id, dry_run)
    min_age_s = config.lock.ttl_s if min_age_s is None else min_age_s
    with locks.hold(config.lock_key, config.lock.ttl_s):
        _, _, chain = open_chain(store, dataset_id)
        referenced = {manifest.version for manifest in chain}
        now = time.time() if now is None else now
        entries = store.stat_list(layout.dataset(dataset_id), hidden=True)
        groups: dict[str, list[tuple[str, int, float]]] = {}
        events = layout.events(dataset_id) + "/"
        plans = layout.follow_ups(dataset_id) + "/"
        for key, (size, modified) in entries.items():
            if key.endswith(".lock"):  # a store's own lock files: in use, or harmless
                continue
            scratch = _scratch_root(key)
            if scratch is not None:
                groups.setdefault(scratch, []).append((key, size, modified))
            elif key.startswith(events):
                version = key[len(events) :].split("/", 1)[0]
                if version not in referenced:
                    groups.setdefault(events + version, []).append((key, size, modified))
            elif key.startswith(plans):
                version = key[len(plans) :].removesuffix(".json")
                if version not in referenced:
                    groups.setdefault(key, []).append((key, size, 0.0))
        for prefix, files in sorted(groups.items()):
            if any(now - modified < min_age_s for _, _, modified in files):
                continue  # (in use, maybe: a writer's, or a normalize beside the lock)
            report.removed.append(prefix)
            report.files += len(files)
            report.bytes += sum(size for _, size, _ in files)
            if not dry_run:
                store.delete_prefix(prefix)
    return report
