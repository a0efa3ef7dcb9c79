"""Ingest as a Dagster Component, for `dg` projects: `IngestDatasets` turns a folder of dataset
YAMLs (or one dataset written inline in a `defs.yaml`) into the assets, checks, sensors and
schedules of `orchestration.location.build_definitions`, with the `ingest` resource bound.

    datasets.py   the `IngestDatasets` component (a `dg.Component` and `dg.Resolvable` model)

Registered for `dg list components` by the `dagster_dg_cli.registry_modules` entry point
(pyproject.toml). Imports Dagster, `contract/`, `settings` and `orchestration/`; nothing imports
it but Dagster's loader (through `ingest_assets/defs/`).
"""

from ingest_assets.components.datasets import IngestDatasets

__all__ = ["IngestDatasets"]
