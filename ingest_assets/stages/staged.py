"""What the stages share: where staged outputs live, their errors, the preview they show, and
the fingerprints that say whether an output was made from these inputs (Arrow's allocator is
chosen here, once, for every stage)."""

import contextlib
import datetime as dt
import errno
import functools
import hashlib
import importlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from ingest_assets import layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore.chain import read_current
from ingest_assets.eventstore.commit import CODE_VERSION
from ingest_assets.parsers.base import HIDDEN_COLUMNS
from ingest_resources.errors import DataError, IngestError, StoreError
from ingest_resources.object_store import ObjectStore

if TYPE_CHECKING:  # (state imports this module)
    from ingest_assets.stages.state import CheckRecord


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

META = "meta.json"  # beside a staged normalized partition: state.NormalizedMeta
RAW_META = b"ingest.raw"  # the parsed data's footer: the state.RawInfo it was parsed from
PART = "part-00000.parquet"


class StageError(IngestError):
    """A stage cannot run (its input is missing) or its output fails the contract."""


class ChecksFailedError(StageError, DataError):
    """The staged normalized partition failed a check of severity `error`: it is not published."""

    def __init__(self, message: str, failed: "dict[str, CheckRecord]"):
        super().__init__(message)
        self.failed = failed


class DiskFullError(StageError, StoreError):
    """The disk (or the quota) filled up while a stage wrote: the message names the dataset,
    the stage, the key being written and what was published."""


PREVIEW_HEAD = 20


@dataclass(frozen=True)
class Staged:
    """A stage's output as the UI shows it: row count, schema and the first rows (the data
    itself stays in the store, read in batches)."""

    num_rows: int
    schema: pa.Schema
    head: pa.Table
    notes: tuple[str, ...] = ()  # what the parser read leniently or guessed (parsed stage)

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)


class HeadKeeper:
    """Passes batches through, keeping the first rows for the preview."""

    def __init__(self, batches: Iterable[pa.Table]):
        self.batches = batches
        self.tables: list[pa.Table] = []
        self.rows = 0

    def __iter__(self) -> Iterator[pa.Table]:
        for batch in self.batches:
            if self.rows < PREVIEW_HEAD:
                self.tables.append(batch.slice(0, PREVIEW_HEAD - self.rows))
                self.rows += self.tables[-1].num_rows
            yield batch

    def table(self, schema: pa.Schema) -> pa.Table:
        if not self.tables:
            return schema.empty_table()
        return pa.concat_tables(self.tables, promote_options="permissive")


def visible(table: pa.Table) -> pa.Table:
    hidden = [c for c in HIDDEN_COLUMNS if c in table.column_names]
    return table.drop_columns(hidden) if hidden else table


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
WRITING = "ingest_key"  # set on an OSError by a write of `naming_writes`: the key it wrote
_KEY_ARGUMENT = {  # the store's writes, and where each takes the key it writes
    "put": 0,
    "put_if_absent": 0,
    "put_if_match": 0,
    "put_file": 0,
    "write_parquet": 0,
    "write_parquet_batches": 0,
    "copy": 1,
}


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC or EDQUOT, as Python raises it or as Arrow does (an OSError whose errno may be
    unset, with "[errno 28]" in its text)."""
    if not isinstance(exc, OSError):
        return False
    if exc.errno in DISK_FULL:
        return True
    text = str(exc).lower()
    return any(f"[errno {number}]" in text for number in DISK_FULL)


class _NamingWrites:
    """The store, but an OSError raised by one of its writes carries the key it was writing
    (attribute WRITING): a full disk's error names no file (neither Python's `write` nor
    Arrow's), and the stage's message must say what was being written. Everything else is
    the store's own."""

    def __init__(self, store: ObjectStore):
        self._store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in _KEY_ARGUMENT:
            return method
        position = _KEY_ARGUMENT[name]

        @functools.wraps(method)
        def write(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except OSError as exc:
                if getattr(exc, WRITING, None) is None:
                    key = kwargs.get("key", args[position] if len(args) > position else None)
                    setattr(exc, WRITING, key)
                raise

        return write


def naming_writes(store: ObjectStore) -> ObjectStore:
    """`store`, its writes' errors naming their keys (see `_NamingWrites`)."""
    if isinstance(store, _NamingWrites):
        return store
    return cast(ObjectStore, _NamingWrites(store))  # (a proxy: every method is `store`'s)


def nothing_published(version: str | None) -> str:
    """What a stage that stopped before publishing left published, in words."""
    if version is None:
        return "nothing was published (nothing is published yet)"
    return f"nothing was published (the published version is still {version})"


def unchanged_version(store: ObjectStore, dataset_id: str) -> str:
    """`nothing_published` of the version now current."""
    try:
        current, _ = read_current(store, dataset_id)
    except Exception as exc:  # noqa: BLE001 - the message is what matters here
        return f"nothing was published (the published version could not be read: {exc})"
    return nothing_published(current.version if current else None)


@contextlib.contextmanager
def reporting_full_disk(
    store: ObjectStore,
    config: DatasetConfig,
    stage: str,
    partition: str,
    output: str,
    published: Callable[[], str] | None = None,
) -> Iterator[ObjectStore]:
    """Run a stage's writes; a full disk (ENOSPC, EDQUOT) becomes a DiskFullError naming the
    dataset, the stage, the key being written (else `output`, what the stage writes) and
    `published()`: what is published now (by default: nothing was, this stage does not
    publish). Yields the store whose write errors name their keys."""
    try:
        yield naming_writes(store)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        key = getattr(exc, WRITING, None) or output
        where = f" (file {exc.filename})" if exc.filename else ""
        full = "the disk quota is exceeded" if exc.errno == errno.EDQUOT else "the disk is full"
        reason = os.strerror(exc.errno) if exc.errno in DISK_FULL else "no space left"
        state = published() if published else unchanged_version(store, config.dataset_id)
        raise DiskFullError(
            f"dataset {config.dataset_id}: stage {stage}, partition {partition!r}: {full} "
            f"writing {key} in {store.describe()}{where}: {reason}; {state}. Free some space "
            f"(`ingest gc {config.dataset_id}` removes old scratch files) and run the partition "
            "again"
        ) from exc


def discard(store: ObjectStore, key: str) -> None:
    """Remove one object, if it is still there (another run may have removed it first)."""
    with contextlib.suppress(FileNotFoundError):
        store.delete_prefix(key)


def stage_key(
    store: ObjectStore, config: DatasetConfig, stage: str, partition: str, before: str
) -> str:
    key = f"{layout.staging(config.dataset_id, stage, partition)}/{PART}"
    if not store.exists(key):
        raise StageError(
            f"dataset {config.dataset_id}: no {stage} data for partition {partition!r}; "
            f"materialize {config.dataset_id}/{before} first"
        )
    return key


def made_of(sha256: str, content_type: str | None) -> str:
    """What a partition's rows are made of: the raw bytes, and the response's content type (a
    feed's or JSON's encoding may come from its charset)."""
    return sha256 + (f"; {content_type}" if content_type else "")


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


def _fingerprint(config: DatasetConfig, first: str, contract: dict[str, Any]) -> str:
    plugins = [
        _source_hash(name) for name in (config.parser, config.normalize.plugin) if ":" in name
    ]
    text = json.dumps([first, contract, _code_hash(), plugins], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


DATA_PACKAGES = ("parsers", "rows", "contract", "stages")  # what turns a file into rows
DATA_MODULES = ("eventstore/keyindex.py",)
# Libraries whose upgrade may change the rows: parsing, typing, time zones
DATA_LIBRARIES = ("pyarrow", "pandas", "numpy", "tzdata", "python-calamine", "feedparser")


@functools.cache
def _code_hash() -> str:
    """The source of the modules that decide parsed and normalized rows: an upgrade (or a local
    edit) that changes them makes every input new again."""
    package = Path(__file__).parents[1]  # ingest_assets/
    files = sorted(
        [
            *(f for name in DATA_PACKAGES for f in (package / name).glob("*.py")),
            *(package / n for n in DATA_MODULES),
        ]
    )
    libraries = [f"{name}=={_version(name)}" for name in DATA_LIBRARIES]
    digest = hashlib.sha256(" ".join([CODE_VERSION, *libraries]).encode())
    for path in files:
        digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
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
