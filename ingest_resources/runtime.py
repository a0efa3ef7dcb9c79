"""What the stages need from the outside world, chosen by the environment (`environment`):
a local directory and file locks by default; S3 (INGEST_STORE_URL) and DynamoDB locks
(INGEST_LOCK_TABLE) in production, at AWS or at AWS_ENDPOINT_URL.

boto3 and psycopg2 are imported when the environment asks for S3, DynamoDB, SNS or the
warehouse, not by every run of a dataset on the local store (they cost a run about 0.2 s).
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest_resources.environment import StoreEnvironment
from ingest_resources.local_store import LocalObjectStore
from ingest_resources.locks import DynamoLocks, LocalLocks
from ingest_resources.notify import Notifier
from ingest_resources.object_store import ObjectStore

if TYPE_CHECKING:
    from ingest_resources.warehouse import Warehouse


@dataclass(frozen=True)
class Runtime:
    store: ObjectStore
    locks: Any  # LocalLocks or DynamoLocks: `hold(key, ttl_s)` yielding a Lease
    notifier: Notifier
    warehouse: "Warehouse | None" = None  # INGEST_POSTGRES_URL


@cache
def aws_client(service: str, endpoint_url: str | None = None) -> Any:  # boto3 has no types
    """A boto3 client; boto3 also honours AWS_ENDPOINT_URL by itself. S3's retries as
    dagster_aws's S3Resource sets them (5 attempts, standard mode)."""
    import boto3

    if service == "s3":
        from botocore.config import Config

        retries = Config(retries={"max_attempts": 5, "mode": "standard"})
        return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=retries)
    return boto3.client(service, endpoint_url=endpoint_url)


def endpoint_url() -> str | None:
    return StoreEnvironment.from_env().endpoint_url


def build_runtime(
    store_root: str | Path,
    store_url: str | None = None,
    lock_table: str | None = None,
    endpoint: str | None = None,
    warehouse_url: str | None = None,
) -> Runtime:
    if store_url:
        from ingest_resources.s3_store import S3ObjectStore

        store: ObjectStore = S3ObjectStore.from_url(aws_client("s3", endpoint), store_url)
    else:
        store = LocalObjectStore(store_root)
    root = Path(store_root).resolve()
    locks = (
        DynamoLocks(aws_client("dynamodb", endpoint), lock_table)
        if lock_table
        else LocalLocks(root / ".locks")
    )
    warehouse = None
    if warehouse_url:
        from ingest_resources.warehouse import Warehouse

        warehouse = Warehouse(warehouse_url)
    return Runtime(
        store=store,
        locks=locks,
        notifier=Notifier(lambda: aws_client("sns", endpoint)),
        warehouse=warehouse,
    )


def local_runtime(root: str | Path) -> Runtime:
    return build_runtime(root)


def runtime_from_env() -> Runtime:
    env = StoreEnvironment.from_env()
    return build_runtime(
        env.store_root, env.store_url, env.lock_table, env.endpoint_url, env.warehouse_url
    )
