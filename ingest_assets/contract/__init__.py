"""The dataset contract: what one dataset YAML may say, and how a folder of them is loaded.

Modules, from the bottom up:
    names        patterns, built-in parser and normalizer names, stages, check kinds
    cron         checking a 5-field cron expression (`schedule`)
    base         `Strict` (the models' base: unknown keys refused, frozen) and `field_error`
    source       `Source` and its blocks: `Pagination`, `Retry`, `Breaker`
    partition_rules  what partitions a source allows (a placeholder, a snapshot, files)
    models       `DatasetConfig` and every other block of the YAML
    problems     `Problem` (file, field, message), `ConfigProblems`, messages of bounded size
    yaml_budget  YAML read within a budget (size, nesting, aliases), duplicate keys refused
    loading      files and folders into configs: `load_config_file`, `load_config_dir`, `ConfigSet`
    secrets      `${ENV}` placeholders resolved at run time, and masked out of messages
    json_schema  the JSON Schema of a dataset YAML (`ingest schema`), from the models

May import: pydantic, PyYAML, `ingest_resources.errors` (the error hierarchy) and
`ingest_resources.postgres_names` (the 63-byte limit); nothing else from `ingest_assets` or
`ingest_resources`, and never Dagster. Every other package may import it.
"""

from ingest_assets.contract.loading import (
    ConfigSet,
    config_files,
    duplicate_ids,
    load_config_dir,
    load_config_file,
    load_configs,
    load_each,
    parse_config,
)
from ingest_assets.contract.models import (
    Checks,
    DatasetConfig,
    Incremental,
    Lock,
    Normalize,
    Notify,
    Parse,
    ParseConfig,
    Partitions,
    PostgresTarget,
    Publish,
    Sensor,
    SeriesMapEntry,
    Transform,
)
from ingest_assets.contract.names import (
    BUILTIN_NORMALIZERS,
    BUILTIN_PARSERS,
    SERIES_CODE,
    TYPE_PATTERN,
)
from ingest_assets.contract.problems import ConfigProblems, Problem
from ingest_assets.contract.secrets import MissingEnvError, Secrets
from ingest_assets.contract.source import Breaker, Pagination, Retry, Source

__all__ = [
    "BUILTIN_NORMALIZERS",
    "BUILTIN_PARSERS",
    "SERIES_CODE",
    "TYPE_PATTERN",
    "Breaker",
    "Checks",
    "ConfigProblems",
    "ConfigSet",
    "DatasetConfig",
    "Incremental",
    "Lock",
    "MissingEnvError",
    "Normalize",
    "Notify",
    "Pagination",
    "Parse",
    "ParseConfig",
    "Partitions",
    "PostgresTarget",
    "Problem",
    "Publish",
    "Retry",
    "Secrets",
    "Sensor",
    "SeriesMapEntry",
    "Source",
    "Transform",
    "config_files",
    "duplicate_ids",
    "load_config_dir",
    "load_config_file",
    "load_configs",
    "load_each",
    "parse_config",
]
