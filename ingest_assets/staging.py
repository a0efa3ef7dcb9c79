"""What the stages share: where staged outputs live, their errors, the preview they show, and
the fingerprints that say whether an output was made from these inputs (Arrow's allocator is
chosen here, once, for every stage)."""

import contextlib
import datetime as dt
import functools
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pyarrow as pa

from ingest_assets import layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore.commit import CODE_VERSION
from ingest_assets.parsers.base import HIDDEN_COLUMNS
from ingest_resources.object_store import ObjectStore


def _arrow_allocator() -> None:
    """Arrow's buffers from jemalloc rather than its default mimalloc, unless
    ARROW_DEFAULT_MEMORY_POOL says otherwise. Every run is a fresh process, and mimalloc's first
    allocations there cost up to 0.6 s of a million-row parse (1.36 s cold vs 0.70 s with
    jemalloc); over whole runs of 1M rows, alternated, about 5% less work (bench/README.md)."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_arrow_allocator()

META = "meta.json"  # beside a staged normalized partition: raw info, counts, checks
RAW_META = b"ingest.raw"
PART = "part-00000.parquet"


class StageError(Exception):
    """A stage cannot run (its input is missing) or its output fails the contract."""


class ChecksFailedError(StageError):
    """The staged normalized partition failed a check of severity `error`: it is not published."""

    def __init__(self, message: str, failed: dict[str, dict]):
        super().__init__(message)
        self.failed = failed


PREVIEW_HEAD = 20


@dataclass(frozen=True)
class Staged:
    """A stage's output as the UI shows it: row count, schema and the first rows (the data
    itself stays in the store, read in batches)."""

    num_rows: int
    schema: pa.Schema
    head: pa.Table

    @property
    def column_names(self) -> list[str]:
        return self.schema.names


class _Head:
    """Passes batches through, keeping the first rows for the preview."""

    def __init__(self, batches):
        self.batches, self.tables, self.rows = batches, [], 0

    def __iter__(self):
        for batch in self.batches:
            if self.rows < PREVIEW_HEAD:
                self.tables.append(batch.slice(0, PREVIEW_HEAD - self.rows))
                self.rows += self.tables[-1].num_rows
            yield batch

    def table(self, schema: pa.Schema) -> pa.Table:
        if not self.tables:
            return schema.empty_table()
        return pa.concat_tables(self.tables, promote_options="permissive")


def _visible(table: pa.Table) -> pa.Table:
    hidden = [c for c in HIDDEN_COLUMNS if c in table.column_names]
    return table.drop_columns(hidden) if hidden else table


def _stage_key(
    store: ObjectStore, config: DatasetConfig, stage: str, partition: str, before: str
) -> str:
    key = f"{layout.staging(config.dataset_id, stage, partition)}/{PART}"
    if not store.exists(key):
        raise StageError(
            f"dataset {config.dataset_id}: no {stage} data for partition {partition!r}; "
            f"materialize {config.dataset_id}/{before} first"
        )
    return key


def input_fingerprint(config: DatasetConfig, raw_sha256: str) -> str:
    """What the parsed, normalized and published data of a partition depend on: the raw bytes,
    the whole contract, the code that turns them into rows (and a plugin's source). Equal
    fingerprints, equal outputs."""
    return _fingerprint(config, raw_sha256, config.model_dump(mode="json"))


# Where and how the bytes are fetched: the rows made of them do not depend on it
FETCH_FIELDS = frozenset(
    {"kind", "url", "path", "bucket", "key", "headers", "params", "pagination"}
    | {"retry", "breaker", "timeout_s", "max_bytes"}
)


def normalized_fingerprint(config: DatasetConfig, day: dt.date) -> str:
    """What a normalized part depends on besides its parsed batch: the contract (but where the
    source is fetched from), the code and the day (collection_date). Parts made under another
    are made again."""
    contract = config.model_dump(mode="json")
    contract["source"] = {k: v for k, v in contract["source"].items() if k not in FETCH_FIELDS}
    return _fingerprint(config, f"normalized parts, collected {day.isoformat()}", contract)


def _fingerprint(config: DatasetConfig, first: str, contract: dict) -> str:
    plugins = [
        _source_hash(name) for name in (config.parser, config.normalize.plugin) if ":" in name
    ]
    text = json.dumps([first, contract, _code_hash(), plugins], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


DATA_MODULES = (
    "normalize.py",
    "hashing.py",
    "dedupe.py",
    "eventstore/keyindex.py",
    "contract.py",
    "stages.py",
    "staging.py",
    "normalized_stage.py",
)
# Libraries whose upgrade may change the rows: parsing, typing, time zones
DATA_LIBRARIES = ("pyarrow", "pandas", "numpy", "tzdata", "python-calamine", "feedparser")


@functools.cache
def _code_hash() -> str:
    """The source of the modules that decide parsed and normalized rows: an upgrade (or a local
    edit) that changes them makes every input new again."""
    package = Path(__file__).parent
    files = sorted([*package.glob("parsers/*.py"), *(package / n for n in DATA_MODULES)])
    libraries = [f"{name}=={_version(name)}" for name in DATA_LIBRARIES]
    digest = hashlib.sha256(" ".join([CODE_VERSION, *libraries]).encode())
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


def _source_hash(reference: str) -> str:
    try:
        module = importlib.import_module(reference.partition(":")[0])
    except ImportError:  # the stage that loads the plugin reports it, naming dataset and field
        return reference
    source = Path(module.__file__ or "")
    return hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else reference
