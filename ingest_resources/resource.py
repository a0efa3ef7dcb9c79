"""The Dagster resource that hands the assets their object store and locks."""

import dagster as dg

from ingest_assets import settings
from ingest_assets.stages import Runtime, local_runtime


class IngestResource(dg.ConfigurableResource):
    """Embedded default: a local store directory with file locks (INGEST_STORE_ROOT)."""

    store_root: str

    @classmethod
    def from_env(cls) -> "IngestResource":
        return cls(store_root=str(settings.store_root()))

    def runtime(self) -> Runtime:
        return local_runtime(self.store_root)
