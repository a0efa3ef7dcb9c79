"""ingest_resources: what the pipeline needs from the outside world, behind small interfaces.

    errors.py          the IngestError hierarchy (ConfigError, SourceError, DataError, StoreError,
                       WarehouseError), each with `retryable`: the base of every error Ingest raises
    environment.py     StoreEnvironment: INGEST_STORE_ROOT/URL, INGEST_LOCK_TABLE, AWS_ENDPOINT_URL,
                       INGEST_POSTGRES_URL, read in this one place
    object_store.py    the ObjectStore interface (get, put, compare-and-swap, Parquet in batches)
    parquet_writing.py how every Parquet file is written (parquet_options, HASH_FIELD)
    local_store.py     LocalObjectStore (a folder, atomic renames, file locks), write_atomic
    s3_store.py        S3ObjectStore (conditional writes, multipart, ranged footer reads)
    locks.py           one writer per dataset: leases with fencing tokens (files or DynamoDB)
    notify.py          the message after a publish (SNS, or the log)
    http/              the HTTP client: retries, circuit breaker, deadline, redirects that keep
                       credentials at home, bounded bodies; FetchError says what is retryable
    postgres_names.py  PostgreSQL's 63-byte names, and the name a longer column is loaded under
    warehouse/         PostgreSQL loads: ledger, table creation and evolution, binary COPY,
                       advisory locks, what the server said
    runtime.py         Runtime (store, locks, notifier, warehouse), built from the environment
    resource.py        IngestResource, the Dagster resource that builds the Runtime

May import: the standard library and third-party I/O libraries (pyarrow, httpx, psycopg2, pgpq,
boto3/botocore, filelock); dagster only in resource.py. Nothing from ingest_assets: the assets
depend on the resources, never the other way round. boto3 and psycopg2 are imported only when
the environment asks for S3, DynamoDB, SNS or the warehouse (runtime.py).
"""
