"""Where the datasets are, from the environment: the config folder and the project root
(docs/contract.md, "Environment variables"). The stores' settings are read by
ingest_resources.environment. Pure: no Dagster."""

import os
from pathlib import Path


def config_dir() -> Path:
    return Path(os.environ.get("INGEST_CONFIG_DIR", "dataset_configs")).resolve()


def project_root() -> Path:
    """Relative `source.path`s resolve here: INGEST_PROJECT_ROOT, else the config dir's parent."""
    explicit = os.environ.get("INGEST_PROJECT_ROOT")
    return Path(explicit).resolve() if explicit else config_dir().parent
