"""The Dagster wiring: the only package (with `cli/` and `definitions.py`) that imports Dagster.

- factory.py: one contract -> its assets (keys, partitions, deps, check specs, retry policy);
  load-time only, so a code location with many datasets loads without the data libraries
- assets.py: what each asset does when it runs: call its stage, turn the result into metadata,
  map an `IngestError` to a retry (retryable) or a `Failure` with its message
- automation.py: sensors (new source data) and cron schedules
- landing_sensor.py: a landing zone's sensor (new files, one run per file for `files`)
- partitions.py: the contract's partitions as Dagster partitions definitions (time, or a
  dynamic one per `files` dataset)
- metadata.py: previews, column schemas, the per-series chart
- location.py: contracts -> the code location's `Definitions` (the `ingest` resource bound, the
  files left out shown as `ingest/config_errors`); `components/` and the tests build with it
- pools.py: the concurrency pools of a dataset's steps (one writer per dataset, fetches per host)
- executors.py: the executor INGEST_EXECUTOR chooses (in_process, multiprocess, celery)
- celery_worker.py: the Celery app of the workers (`celery -A ... worker`), imported by them only

May import every other package of ingest_assets and ingest_resources; nothing imports it but
`cli/`, `components/` and `definitions.py`.
"""
