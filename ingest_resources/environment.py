"""Where the stores are, read from the environment in one place:

- INGEST_STORE_ROOT: the local store's folder, and the file locks' (default `.ingest_store`),
- INGEST_STORE_URL: `s3://bucket/prefix`, the store on S3 instead of the local folder,
- INGEST_LOCK_TABLE: a DynamoDB table for the locks instead of local files,
- AWS_ENDPOINT_URL: an S3/DynamoDB/SNS-compatible server instead of AWS,
- INGEST_POSTGRES_URL: the warehouse (no loads when unset).

An empty INGEST_STORE_URL, INGEST_LOCK_TABLE, AWS_ENDPOINT_URL or INGEST_POSTGRES_URL counts as
unset.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STORE_ROOT = ".ingest_store"


@dataclass(frozen=True)
class StoreEnvironment:
    store_root: Path
    store_url: str | None = None
    lock_table: str | None = None
    endpoint_url: str | None = None
    warehouse_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "StoreEnvironment":
        """The settings in `environ` (default: this process's environment)."""
        env = os.environ if environ is None else environ
        return cls(
            store_root=Path(env.get("INGEST_STORE_ROOT", DEFAULT_STORE_ROOT)).resolve(),
            store_url=env.get("INGEST_STORE_URL") or None,
            lock_table=env.get("INGEST_LOCK_TABLE") or None,
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            warehouse_url=env.get("INGEST_POSTGRES_URL") or None,
        )
