"""The Dagster resource that hands the assets their object store, locks and notifier."""

import os
from typing import TYPE_CHECKING

import dagster as dg

from ingest_assets import settings

if TYPE_CHECKING:  # the runtime imports boto3 and the stores: only when an asset runs
    from ingest_resources.runtime import Runtime


class IngestResource(dg.ConfigurableResource):
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
        return cls(
            store_root=str(settings.store_root()),
            store_url=settings.store_url(),
            lock_table=os.environ.get("INGEST_LOCK_TABLE") or None,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            warehouse_url=os.environ.get("INGEST_POSTGRES_URL") or None,
        )

    def runtime(self) -> "Runtime":
        from ingest_resources.runtime import build_runtime

        return build_runtime(
            self.store_root, self.store_url, self.lock_table, self.endpoint_url, self.warehouse_url
        )
