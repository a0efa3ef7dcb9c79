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

May import every other package of ingest_assets and ingest_resources; nothing imports it but
`cli/` and `definitions.py`.
"""
