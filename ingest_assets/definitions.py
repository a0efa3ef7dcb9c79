"""The code location: every YAML in INGEST_CONFIG_DIR becomes a group of assets."""

import gc

import dagster as dg

from ingest_assets import settings
from ingest_assets.automation import build_automation
from ingest_assets.configs import config_files, load_configs
from ingest_assets.factory import build_assets
from ingest_resources.resource import IngestResource


def build_definitions(configs=None) -> dg.Definitions:
    configs = load_configs(config_files(settings.config_dir())) if configs is None else configs
    sensors, schedules = build_automation(configs)
    return dg.Definitions(
        assets=build_assets(configs),
        sensors=sensors,
        schedules=schedules,
        resources={"ingest": IngestResource.from_env()},
        executor=dg.in_process_executor,
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
        return build_definitions()
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


defs = load_definitions()
