"""The code location: the project's defs folder (`ingest_assets/defs/`, what `dg` loads too),
whose `defs.yaml` turns every YAML in INGEST_CONFIG_DIR into a group of assets through the
`IngestDatasets` component. `workspace.yaml` and `dagster ... -m ingest_assets.definitions`
load this module; `dg` finds it as the project's code location target (pyproject, `[tool.dg]`).

A file that cannot be loaded never stops the others: every valid dataset is loaded, and the
problems are reported where a user looks (`config_errors`, in orchestration/location.py).
"""

import gc
import importlib
import warnings
from pathlib import Path

import dagster as dg

from ingest_assets.orchestration.location import (
    CONFIG_ERRORS,
    CONFIG_ERRORS_KEY,
    DatasetConfigProblems,
    build_definitions,
    config_errors,
)

DEFS_MODULE = "ingest_assets.defs"  # as pyproject.toml's [tool.dg.project] names it

__all__ = [
    "CONFIG_ERRORS",
    "CONFIG_ERRORS_KEY",
    "DatasetConfigProblems",
    "build_definitions",
    "config_errors",
    "defs",
    "load_definitions",
]


def project_root() -> Path:
    """The `dg` project: the checkout holding this package (an editable install); a package
    installed on its own (an image) has none above it: the working directory, where the code
    location runs (workspace.yaml's `working_directory`)."""
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


def defs_folder() -> dg.Definitions:
    """The defs folder's definitions with the project's component tree (what the UI shows of
    it), as `dg.load_from_defs_folder` builds them but for the catalogue of every component
    type installed (its "library" metadata): that imports each registered component package
    (dagster-aws's pulls in boto3), 0.6 s more for every process that loads the location, a
    run worker included. Dagster's own code marks its code references beta; we use them as
    Dagster does, so its warnings are not ours to print on every load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        tree = dg.ComponentTree.from_module(
            defs_module=importlib.import_module(DEFS_MODULE), project_root=project_root()
        )
        return dg.Definitions.merge(
            tree.build_defs(tree.defs_module_path), dg.Definitions(component_tree=tree)
        )


def load_definitions() -> dg.Definitions:
    """The code location as a process loads it, once: built with the cyclic garbage collector
    paused, then frozen (`gc.freeze`), since every object built here lives as long as the
    process. Otherwise each full collection walks them all again, while Dagster resolves the
    repository and, in a code server, snapshots it: for 1,000 datasets that is about a third of
    the load (bench/README.md)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return defs_folder()
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


defs = load_definitions()
