"""Where the configs and the project are, from the environment (docs/contract.md,
"Environment variables"). Pure: no Dagster."""

import os
from pathlib import Path


def config_dir() -> Path:
    return Path(os.environ.get("INGEST_CONFIG_DIR", "dataset_configs")).resolve()


def project_root() -> Path:
    """Relative `source.path`s resolve here: INGEST_PROJECT_ROOT, else the config dir's parent."""
    explicit = os.environ.get("INGEST_PROJECT_ROOT")
    return Path(explicit).resolve() if explicit else config_dir().parent


def store_root() -> Path:
    return Path(os.environ.get("INGEST_STORE_ROOT", ".ingest_store")).resolve()


def store_url() -> str | None:
    return os.environ.get("INGEST_STORE_URL") or None
