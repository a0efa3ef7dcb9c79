"""What every request shares: the settings, the store (and warehouse), the datasets, the
cache of replayed months, the snapshots of recent versions and the verify verdicts."""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest_api.cache import ByteLru
from ingest_api.catalog import Catalog
from ingest_api.settings import ApiSettings
from ingest_api.snapshot import Month, Snapshot
from ingest_api.verifier import Verifier
from ingest_assets.eventstore import Manifest
from ingest_resources.runtime import Runtime

if TYPE_CHECKING:  # (imported by /health and /stats only: it loads Dagster)
    from ingest_api.dagster_runs import Runs

SNAPSHOTS_KEPT = 64


@dataclass
class ApiState:
    settings: ApiSettings
    runtime: Runtime
    catalog: Catalog
    months: ByteLru[Month]
    verifier: Verifier
    snapshots: OrderedDict[tuple[str, str], Snapshot] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: "Runs | None" = None  # the Dagster instance's runs, opened by /health or /stats

    def snapshot(self, dataset_id: str, version: str | None) -> Snapshot:
        """The dataset as of `version` (default: current); 404 if it is not published."""
        chain = self.catalog.pinned(dataset_id, version)
        return self.snapshot_of(dataset_id, chain)

    def snapshot_of(self, dataset_id: str, chain: tuple[Manifest, ...]) -> Snapshot:
        key = (dataset_id, chain[-1].version)
        with self.lock:
            found = self.snapshots.get(key)
            if found is not None:
                self.snapshots.move_to_end(key)
                return found
        made = Snapshot(self.runtime.store, self.catalog.config(dataset_id), chain, self.months)
        with self.lock:
            self.snapshots[key] = made
            while len(self.snapshots) > SNAPSHOTS_KEPT:
                self.snapshots.popitem(last=False)
        return made
