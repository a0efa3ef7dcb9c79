"""The Dagster resource that hands the assets their object store, locks and notifier."""

from typing import TYPE_CHECKING

import dagster as dg

from ingest_resources.environment import StoreEnvironment

if TYPE_CHECKING:  # the runtime imports boto3 and the stores: only when an asset runs
    from ingest_resources.runtime import Runtime


class IngestResource(dg.ConfigurableResource["IngestResource"]):  # hands the asset itself
    """Local store and file locks by default; S3 and DynamoDB when `store_url`/`lock_table` are set.

    `endpoint_url` points the AWS clients at an S3/DynamoDB/SNS-compatible server.
    """

    store_root: str
    store_url: str | None = None
    lock_table: str | None = None
    endpoint_url: str | None = None
    warehouse_url: str | None = None

    @classmethod
    def from_env(cls) -> "IngestResource":
        return cls.from_environment(StoreEnvironment.from_env())

    @classmethod
    def from_environment(cls, env: StoreEnvironment) -> "IngestResource":
        return cls(
            store_root=str(env.store_root),
            store_url=env.store_url,
            lock_table=env.lock_table,
            endpoint_url=env.endpoint_url,
            warehouse_url=env.warehouse_url,
        )

    def runtime(self) -> "Runtime":
        from ingest_resources.runtime import build_runtime

        return build_runtime(
            self.store_root, self.store_url, self.lock_table, self.endpoint_url, self.warehouse_url
        )
