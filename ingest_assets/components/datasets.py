"""`IngestDatasets`: dataset contracts as a Dagster Component.

In a `defs.yaml`, either a folder of dataset YAMLs:

    type: ingest_assets.components.IngestDatasets
    attributes:
      config_dir: dataset_configs     # relative to the project root; omitted: INGEST_CONFIG_DIR

or one dataset, its contract inline (the keys of docs/contract.md, checked by the same models):

    type: ingest_assets.components.IngestDatasets
    attributes:
      dataset:
        dataset_id: FX_DAILY
        source: {kind: http, url: "https://example.org/fx.csv", format: csv}
        ...

A folder's broken files are reported as `ingest/config_errors` beside the datasets that load
(as `ingest_assets.definitions:defs` always did); an invalid inline contract fails the load
with one line a problem, naming the `defs.yaml` and the field, as `ingest validate` does.
"""

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg

from ingest_assets import settings
from ingest_assets.contract import (
    ConfigProblems,
    DatasetConfig,
    Problem,
    load_config_dir,
    parse_config,
)
from ingest_assets.orchestration.location import build_definitions

INLINE_FIELD = "attributes.dataset"


def skeleton(name: str) -> dict[str, Any]:
    """A valid one-dataset contract to fill in, its dataset_id from the folder's name."""
    dataset_id = re.sub(r"\W", "_", name).upper()[:64]
    return {
        "dataset_id": dataset_id if dataset_id[:1].isalpha() else f"D_{dataset_id}"[:64],
        "description": "what this dataset is (docs/contract.md has every key)",
        "source": {"kind": "http", "url": "https://example.org/data.csv", "format": "csv"},
        "normalize": {"primary_keys": ["id"]},
    }


class OneDatasetScaffolder(dg.Scaffolder):
    """`dg scaffold defs ingest_assets.components.IngestDatasets NAME`: a `defs.yaml` holding one
    dataset to fill in (not a folder: the project's own `defs.yaml` already reads
    INGEST_CONFIG_DIR, and a second reader of it would declare every dataset twice)."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        dg.scaffold_component(request, {"dataset": skeleton(request.target_path.name)})


@dg.scaffold_with(OneDatasetScaffolder)
class IngestDatasets(dg.Component, dg.Resolvable, dg.Model):
    """Ingest datasets as partitioned assets raw -> parsed -> normalized -> published (->
    warehouse), with their checks, sensors and schedules: every dataset YAML of `config_dir`, or
    the one dataset whose contract is `dataset`."""

    config_dir: str | None = None
    """Folder of dataset YAML files, relative to the project root. Omitted (and no `dataset`):
    INGEST_CONFIG_DIR, else `dataset_configs/`."""

    dataset: dict[str, Any] | None = None
    """One dataset's contract, as a dataset YAML file would hold it (docs/contract.md)."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        if self.dataset is None:
            configs, problems = load_config_dir(self.folder(context.project_root))
            return build_definitions(configs, problems)
        if self.config_dir is not None:
            message = "give either `config_dir` (a folder of dataset YAMLs) or `dataset`, not both"
            raise ConfigProblems([Problem(str(defs_yaml(context.path)), "attributes", message)])
        return build_definitions([self.inline_config(defs_yaml(context.path))])

    def folder(self, project_root: Path) -> Path:
        if self.config_dir is None:
            return settings.config_dir()
        return (project_root / self.config_dir).resolve()

    def inline_config(self, file: Path) -> DatasetConfig:
        """The inline contract, validated as a dataset file is: its problems name the `defs.yaml`
        and the field as written there (`attributes.dataset.<path>`)."""
        try:
            return parse_config(self.dataset, str(file))
        except ConfigProblems as exc:
            problems = [
                replace(p, field=f"{INLINE_FIELD}.{p.field}" if p.field else INLINE_FIELD)
                for p in exc.config_problems
            ]
            raise ConfigProblems(problems) from None


def defs_yaml(path: Path) -> Path:
    """The component's `defs.yaml` (Dagster gives its folder, or the file itself)."""
    return path / "defs.yaml" if path.is_dir() else path
