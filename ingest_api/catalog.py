"""The datasets the API serves: their configs (loaded once, from INGEST_CONFIG_DIR), and their
published chains read through the event store's API (`read_current`, `version_chain`).

Client input never becomes a path: a dataset id is looked up among the loaded configs, and a
version among the manifests of the dataset's chain; anything else is a 404 (or a 422 when it
cannot be a version at all)."""

import re
import threading
from collections import OrderedDict

from ingest_api.errors import BadParameter, NotFound, Unavailable
from ingest_assets import eventstore
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore import Manifest
from ingest_resources.object_store import ObjectStore

VERSION_PATTERN = r"^\d{8}T\d{6,12}Z$"  # as eventstore.diff.VERSION_FORMAT writes them
CHAINS_KEPT = 128  # (dataset, head version) chains kept: manifests never change


class Catalog:
    def __init__(self, store: ObjectStore, configs: list[DatasetConfig]) -> None:
        self.store = store
        self.configs = {config.dataset_id: config for config in configs}
        self.chains: OrderedDict[tuple[str, str], tuple[Manifest, ...]] = OrderedDict()
        self.lock = threading.Lock()

    def ids(self) -> list[str]:
        return sorted(self.configs)

    def config(self, dataset_id: str) -> DatasetConfig:
        found = self.configs.get(dataset_id)
        if found is None:
            raise NotFound(f"no dataset {dataset_id!r} (GET /datasets lists them)")
        return found

    def current(self, dataset_id: str) -> Manifest | None:
        """The current manifest (None: nothing published yet); a store that cannot be read
        (a lost `current`, an unreadable manifest) is a 503 naming what is wrong."""
        try:
            head, _ = eventstore.read_current(self.store, dataset_id)
        except eventstore.EventStoreError as exc:
            raise Unavailable(str(exc)) from None
        return head

    def chain(self, dataset_id: str, head: Manifest) -> tuple[Manifest, ...]:
        """The chain up to `head`, oldest first (kept: a version's chain never changes)."""
        key = (dataset_id, head.version)
        with self.lock:
            found = self.chains.get(key)
            if found is not None:
                self.chains.move_to_end(key)
                return found
        try:
            chain = tuple(eventstore.version_chain(self.store, dataset_id, head))
        except eventstore.EventStoreError as exc:
            raise Unavailable(str(exc)) from None
        with self.lock:
            self.chains[key] = chain
            while len(self.chains) > CHAINS_KEPT:
                self.chains.popitem(last=False)
        return chain

    def pinned(self, dataset_id: str, version: str | None = None) -> tuple[Manifest, ...]:
        """The chain up to `version` (default: current). 404 when nothing is published or the
        version is not on the current chain (an orphan, a version `ingest repair` dropped)."""
        self.config(dataset_id)
        if version is not None and not re.match(VERSION_PATTERN, version):
            raise BadParameter(
                f"version {version[:40]!r}: expected a version such as 20261122T023109974447Z "
                f"(GET /datasets/{dataset_id}/versions lists them)"
            )
        head = self.current(dataset_id)
        if head is None:
            raise NotFound(f"dataset {dataset_id}: nothing published yet")
        chain = self.chain(dataset_id, head)
        if version is None or version == head.version:
            return chain
        for index, manifest in enumerate(chain):
            if manifest.version == version:
                return chain[: index + 1]
        raise NotFound(
            f"dataset {dataset_id}: no published version {version!r} "
            f"(GET /datasets/{dataset_id}/versions lists them)"
        )
