"""Ingest: one YAML per dataset, expanded into Dagster assets raw -> parsed -> normalized ->
published (-> warehouse). Where things are, by package, lowest layer first:

    ingest_resources/        (a sibling package) I/O clients: object stores, S3, locks, HTTP,
                             PostgreSQL, SNS; the error hierarchy (errors.py); the Dagster
                             resource (resource.py). Imports nothing from ingest_assets.
    contract/                the YAML contract: pydantic models, loading, secrets, JSON Schema
    layout.py, settings.py   where each file lives in the store; where configs and the project are
    rows/                    row logic on Arrow tables: typing, normalizing, hashing, the dedupe
                             rule, quarantine rows, checks
    parsers/                 bytes -> Arrow batches, one module per format or parser
    sources/                 fetching a dataset's input (HTTP, S3, local file), partition windows
    eventstore/              the published store: versions, `current`, key index, projections,
                             verify/repair/gc
    stages/                  one module per asset (raw, parsed, normalized, published, warehouse)
                             plus export: read the store, call the pure code, write the store
    orchestration/           the Dagster wiring: asset factory, asset bodies, checks, sensors,
                             schedules, partitions, metadata; `location`, the code location's
                             Definitions
    components/              `IngestDatasets`, the Dagster Component over `orchestration.location`
    defs/                    the `dg` defs folder (YAML only): `datasets/defs.yaml`
    cli/                     the `ingest` command
    definitions.py           `defs`, the code location Dagster loads: the defs folder

The rule between them: everything above `orchestration/` is pure of Dagster (it runs the same
from the CLI, a test or a Dagster step); only `orchestration/`, `components/`, `cli/` and
`definitions.py` import Dagster, and nothing imports them back. tests/test_layering.py checks it.
"""
