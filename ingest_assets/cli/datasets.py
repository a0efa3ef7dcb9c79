"""The datasets a command names (every valid one, or one by id, or `--all`) and the store runtime."""

import argparse
import sys

from ingest_assets import settings
from ingest_assets.contract import ConfigSet, DatasetConfig, load_config_dir


def _warn_left_out(loaded: ConfigSet) -> None:
    if loaded.problems:
        files = loaded.broken_files
        print(
            f"ingest: warning: {len(files)} dataset config file(s) left out, "
            f"`ingest validate` says why: {', '.join(files)}",
            file=sys.stderr,
        )


def all_configs() -> list[DatasetConfig]:
    """Every valid dataset; a broken file beside them is named, never a reason to stop."""
    loaded = load_config_dir(settings.config_dir())
    _warn_left_out(loaded)
    return loaded.configs


def dataset_config(dataset_id: str) -> DatasetConfig:
    loaded = load_config_dir(settings.config_dir())
    try:
        config = loaded.get(dataset_id)  # ConfigError naming its file and field: exit 1
    except LookupError:
        lines = [f"ingest: no dataset {dataset_id!r} in {settings.config_dir()}"]
        if loaded.problems:
            lines += [
                "these files have problems (one of them may be it):",
                *map(str, loaded.problems),
            ]
        raise SystemExit("\n".join(lines)) from None
    _warn_left_out(loaded)
    return config


def selected_datasets(args: argparse.Namespace) -> list[DatasetConfig]:
    if getattr(args, "all", False):
        if args.dataset:
            raise SystemExit(f"ingest: name a DATASET or give --all, not both ({args.dataset})")
        return all_configs()
    if not args.dataset:
        raise SystemExit("ingest: name a DATASET (or --all)")
    return [dataset_config(args.dataset)]


def store_runtime():
    from ingest_resources.runtime import runtime_from_env

    return runtime_from_env()
