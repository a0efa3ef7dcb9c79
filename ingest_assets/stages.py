"""The stages of a dataset (raw, parsed, normalized, published, warehouse), with or without Dagster.

Each stage reads its input from the object store, writes its output there (Parquet between
stages, never pickles) and returns the metadata a user wants to see. The Dagster assets and
`ingest run` are thin callers of these functions.
"""

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout, publish
from ingest_assets.arrays import repeated
from ingest_assets.checks import CheckInputs, CheckResult, evaluate, needed_columns
from ingest_assets.configs import Secrets
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.dedupe import KeyTracker, judge
from ingest_assets.normalize import (
    KEY_HASH,
    SYSTEM_COLUMNS,
    conflict_reason,
    normalize,
    rejected_rows,
)
from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import (
    CELLS_META,
    HIDDEN_COLUMNS,
    ROW_COLUMN,
    parse_batches,
    require_columns,
)
from ingest_assets.publish import high_water_marks
from ingest_assets.sources import Fetched, fetch
from ingest_assets.staged_parts import (
    PartWriter,
    batch_digest,
    content_named,
    iter_parts,
    part_key,
    part_keys,
    read_parts,
)
from ingest_assets.staged_parts import head as parts_head
from ingest_assets.windows import window_for
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime, local_runtime  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class NormalizeOutcome:
    staged: Staged  # the normalized rows (with `_row`), as the UI shows them
    counts: dict[str, int]
    checks: list[CheckResult]
    quarantine_key: str
    high_water_marks: dict[str, str]
    store: ObjectStore
    keys: list[str]  # the parts of the staged normalized rows, in order

    @property
    def table(self) -> pa.Table:
        """The accepted rows, read whole from the store (for small data and tests)."""
        return _visible(read_parts(self.store, self.keys))

    @property
    def rejected(self) -> pa.Table:
        if self.store.exists(self.quarantine_key):
            return self.store.read_parquet(self.quarantine_key)
        return pa.table({})


def _visible(table: pa.Table) -> pa.Table:
    hidden = [c for c in HIDDEN_COLUMNS if c in table.column_names]
    return table.drop_columns(hidden) if hidden else table


def read_normalized(
    rt: Runtime, config: DatasetConfig, partition: str, columns: list[str] | None = None
) -> pa.Table:
    """The staged normalized rows (only `columns` of them, for a large partition)."""
    staging, meta = normalized_meta(rt.store, config, partition)
    keys = [part["key"] for part in staged_parts(meta, staging)]
    if columns is not None:
        present = set(rt.store.parquet_schema(keys[0]).names)
        return read_parts(rt.store, keys, columns=[c for c in columns if c in present])
    return _visible(read_parts(rt.store, keys))


def normalized_meta(store: ObjectStore, config: DatasetConfig, partition: str) -> tuple[str, dict]:
    """The staged normalized partition's folder and meta.json (which lists its parts)."""
    staging = layout.staging(config.dataset_id, "normalized", partition)
    meta = _read_meta(store, f"{staging}/{META}")
    if meta is not None:
        return staging, meta
    if part_keys(store, staging) or store.exists(f"{staging}/{PART}"):
        raise StageError(
            f"dataset {config.dataset_id}: the normalized data of partition {partition!r} is "
            f"incomplete (no {META}); materialize {config.dataset_id}/normalized again"
        )
    raise StageError(
        f"dataset {config.dataset_id}: no normalized data for partition {partition!r}; "
        f"materialize {config.dataset_id}/normalized first"
    )


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


def run_raw(
    rt: Runtime, config: DatasetConfig, partition: str, secrets: Secrets | None = None
) -> dict[str, Any]:
    current, _ = publish.read_current(rt.store, config.dataset_id)
    fetched = fetch(config, secrets, window_for(config, partition, current))
    if fetched.path is None:
        sha256, size = hashlib.sha256(fetched.content).hexdigest(), len(fetched.content)
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        rt.store.put_if_absent(key, fetched.content)
    else:
        key, sha256, size = _store_raw_file(rt.store, config, partition, fetched)
    info = {
        "key": key,
        "sha256": sha256,
        "bytes": size,
        "source": fetched.source,
        "etag": fetched.etag,
        "last_modified": fetched.last_modified,
        "fetched_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    rt.store.put(
        layout.raw_latest(config.dataset_id, partition), json.dumps(info, indent=2).encode()
    )
    return info


def _store_raw_file(
    store: ObjectStore, config: DatasetConfig, partition: str, fetched: Fetched
) -> tuple[str, str, int]:
    """A local source file into raw/, content-addressed, without loading it whole. Bytes
    already stored are only hashed; new ones are hashed again as they are copied, so the name
    is the sha256 of the bytes stored even if the file changes meanwhile."""
    sha256, size = fetched.sha256_and_size()
    key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
    if store.exists(key):
        return key, sha256, size
    near = layout.raw(config.dataset_id, partition, "pending", fetched.ext)
    folder = store.scratch_folder(near)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".raw-")
    os.close(fd)
    scratch = Path(name)
    try:
        sha256, size = fetched.copy_and_hash(scratch)
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        if not store.exists(key):  # the same bytes are stored once
            store.put_file(key, scratch, move=True)
    finally:
        scratch.unlink(missing_ok=True)
    return key, sha256, size


def _with_meta(batches, key: bytes, value: bytes, ctx: ParseContext, first: list[bool]):
    for batch in batches:
        if first[0]:
            require_columns(batch, ctx)
            first[0] = False
        yield batch.replace_schema_metadata({**(batch.schema.metadata or {}), key: value})


def run_parse(rt: Runtime, config: DatasetConfig, partition: str) -> tuple[Staged, dict[str, Any]]:
    """Parse the raw object into the parsed stage, in batches when the format streams."""
    latest_key = layout.raw_latest(config.dataset_id, partition)
    if not rt.store.exists(latest_key):
        raise StageError(
            f"dataset {config.dataset_id}: no raw data for partition {partition!r}; "
            f"materialize {config.dataset_id}/raw first"
        )
    raw = json.loads(rt.store.get(latest_key))
    raw["fingerprint"] = input_fingerprint(config, raw["sha256"])
    context = ParseContext(config, raw["source"])
    prefix = layout.staging(config.dataset_id, "parsed", partition)
    reused = _reuse(rt.store, f"{prefix}/{PART}", raw["fingerprint"])
    if reused is not None:  # the same bytes under the same contract: parsed already
        return reused, raw
    rt.store.delete_prefix(prefix)
    raw_meta = json.dumps(raw).encode()
    with rt.store.local_file(raw["key"]) as path:
        try:
            head = _Head(
                _with_meta(parse_batches(path, context), RAW_META, raw_meta, context, [True])
            )
            rows, schema = rt.store.write_parquet_batches(f"{prefix}/{PART}", head)
        except pa.ArrowInvalid as exc:  # Arrow reads this CSV differently from pandas
            log.warning(
                "dataset %s: %s: read whole by the general CSV reader (memory grows with the "
                "file): %s",
                config.dataset_id,
                raw["source"],
                str(exc).splitlines()[0],
            )
            whole = parse_batches(path, context, whole=True)
            head = _Head(_with_meta(whole, RAW_META, raw_meta, context, [True]))
            rows, schema = rt.store.write_parquet_batches(f"{prefix}/{PART}", head)
    pa.default_memory_pool().release_unused()
    return Staged(rows, schema, head.table(schema)), raw


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
    "keyindex.py",
    "contract.py",
    "stages.py",
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
    digest = hashlib.sha256(" ".join([publish.CODE_VERSION, *libraries]).encode())
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


def _reuse(store: ObjectStore, key: str, fingerprint: str) -> "Staged | None":
    """The staged output at `key` if it was made from this fingerprint (else None)."""
    if not store.exists(key):
        return None
    schema = store.parquet_schema(key)
    made_from = json.loads((schema.metadata or {}).get(RAW_META, b"{}"))
    if made_from.get("fingerprint") != fingerprint:
        return None
    head = next(store.iter_parquet(key, batch_rows=PREVIEW_HEAD), schema.empty_table())
    return Staged(store.parquet_rows(key), schema, head)


def source_drift(rt: Runtime, config: DatasetConfig, parsed: Staged) -> dict[str, list[str]]:
    """Source columns added or gone since the published version (reported at parse time; the
    schema_drift check decides whether it blocks)."""
    current, _ = publish.read_current(rt.store, config.dataset_id)
    if not current:
        return {"added": [], "missing": []}
    platform = {*SYSTEM_COLUMNS, *config.transform.metadata, "frequency", *HIDDEN_COLUMNS}
    published = set(current.get("schema", {})) - platform
    source = set(parsed.column_names) - platform
    return {"added": sorted(source - published), "missing": sorted(published - source)}


def read_quarantine(
    rt: Runtime, config: DatasetConfig, partition: str | None = None
) -> pa.Table | None:
    """Rejected rows of one partition (or all), with a `partition` column, newest run per partition."""
    if partition:
        prefix = layout.quarantine(config.dataset_id, partition)
    else:
        prefix = f"{layout.dataset(config.dataset_id)}/quarantine"
    tables = []
    for key in rt.store.list(prefix):
        if key.endswith(".parquet"):
            table = rt.store.read_parquet(key)
            name = key.split("/quarantine/", 1)[1].split("/", 1)[0]
            tables.append(
                table.add_column(0, "partition", repeated(name, table.num_rows, pa.string()))
            )
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def _parsed_batches(store: ObjectStore, parsed_key: str, config: DatasetConfig):
    """The parsed rows in batches, each with its digest (None: not to be kept for a later run).
    Batches never span two row groups of the parsed data, so an input that grew at its end
    gives the same batches for its old rows."""
    if config.normalize.plugin not in ("default", "bcra_infomondia"):
        # a plugin may look across rows (fill, diff, pivot): it gets the whole partition
        yield store.read_parquet(parsed_key), None
        return
    empty = True
    for batch in store.iter_parquet(parsed_key, by_row_group=True):
        empty = False
        yield batch, batch_digest(batch, (batch.schema.metadata or {}).get(CELLS_META, b""))
    if empty:
        yield store.parquet_schema(parsed_key).empty_table(), None


@dataclass
class _NormalizedData:
    staged: Staged
    counts: dict[str, int]
    high_water_marks: dict[str, str]
    rejected_head: pa.Table
    parts: list[dict]  # {"key", "rows", "parsed", "digest", "clean"} per part, in order


def run_normalize(
    rt: Runtime, config: DatasetConfig, partition: str, today: dt.date | None = None
) -> NormalizeOutcome:
    """Type, key and check the parsed rows, batch by batch; rejected rows go to quarantine.
    Parsed data with the fingerprint of the staged normalized data is not normalized again
    (its checks are: they depend on the published version and the clock), and a batch of it
    that a part already holds, under the same contract and day, is not either."""
    store = rt.store
    parsed_key = _stage_key(store, config, "parsed", partition, "parsed")
    raw = _raw_of(store, config, partition, parsed_key)
    staging = layout.staging(config.dataset_id, "normalized", partition)
    meta_key = f"{staging}/{META}"
    quarantine_key = f"{layout.quarantine(config.dataset_id, partition)}/{PART}"
    day = today or dt.datetime.now(dt.UTC).date()
    earlier = _read_meta(store, meta_key)
    data = _reuse_normalized(store, staging, earlier, quarantine_key, raw, day)
    if data is None:
        store.delete_prefix(meta_key)  # no meta until every part is written: publish waits
        data = _normalize_partition(
            store, config, parsed_key, staging, quarantine_key, day, earlier
        )
    keys = [part["key"] for part in data.parts]
    schema = data.staged.schema
    current, _ = publish.read_current(store, config.dataset_id)
    visible_schema = pa.schema([f for f in schema if f.name not in HIDDEN_COLUMNS])
    needed = [c for c in needed_columns(config) if c in visible_schema.names]
    rows = data.counts["normalized"]
    inputs = CheckInputs(
        table=read_parts(store, keys, columns=needed)
        if needed
        else pa.table({"_": pa.nulls(rows)}).drop_columns(["_"]),
        rejected=data.rejected_head,
        rows_parsed=data.counts["parsed"],
        published_schema=(current or {}).get("schema"),
        now=dt.datetime.now(dt.UTC),
        schema=visible_schema,
        rows_rejected=data.counts["rejected"],
        repeated_keys=0,
    )
    results = evaluate(config, inputs)
    meta = {
        "day": day.isoformat(),  # of collection_date: reused the same day only
        "raw": raw,
        "counts": data.counts,
        "checks": {r.name: r.as_dict() for r in results},
        "high_water_marks": data.high_water_marks,
        "made_with": normalized_fingerprint(config, day),
        "parts": data.parts,
    }
    store.put(meta_key, json.dumps(meta, default=str).encode())
    for stale in set(part_keys(store, staging)) - set(keys):  # now no list names them
        store.delete_prefix(stale)
    pa.default_memory_pool().release_unused()
    return NormalizeOutcome(
        data.staged, data.counts, results, quarantine_key, data.high_water_marks, store, keys
    )


def _read_meta(store: ObjectStore, meta_key: str) -> dict | None:
    if not store.exists(meta_key):
        return None
    try:
        return json.loads(store.get(meta_key))
    except (json.JSONDecodeError, UnicodeDecodeError):  # a damaged file: made again
        return None


def staged_parts(meta: dict, staging: str) -> list[dict]:
    """The parts a normalized meta.json lists (one `part-00000.parquet` before parts had a list)."""
    return meta.get("parts") or [{"key": f"{staging}/{PART}", "digest": None, "clean": False}]


def _raw_of(store: ObjectStore, config: DatasetConfig, partition: str, parsed_key: str) -> dict:
    """The raw info the parsed data was made from, refreshed by the latest fetch of the same
    bytes (its time, ETag and Last-Modified) when parsing was skipped for it."""
    raw = json.loads((store.parquet_schema(parsed_key).metadata or {}).get(RAW_META, b"{}"))
    latest_key = layout.raw_latest(config.dataset_id, partition)
    if store.exists(latest_key):
        latest = json.loads(store.get(latest_key))
        if latest.get("sha256") == raw.get("sha256"):
            return {**latest, "fingerprint": raw.get("fingerprint")}
    return raw


def _reuse_normalized(
    store: ObjectStore,
    staging: str,
    meta: dict | None,
    quarantine_key: str,
    raw: dict,
    day: dt.date,
) -> "_NormalizedData | None":
    fingerprint = raw.get("fingerprint")
    if not fingerprint or meta is None:
        return None
    if meta.get("raw", {}).get("fingerprint") != fingerprint or meta.get("day") != day.isoformat():
        return None
    parts = staged_parts(meta, staging)
    keys = [part["key"] for part in parts]
    if not all(store.exists(key) for key in keys):
        return None
    schema = store.parquet_schema(keys[0])
    rejected = (
        store.read_parquet(quarantine_key).slice(0, 20)
        if store.exists(quarantine_key)
        else pa.table({})
    )
    counts = meta["counts"]
    staged = Staged(counts["normalized"], schema, parts_head(store, keys, PREVIEW_HEAD))
    return _NormalizedData(staged, counts, meta.get("high_water_marks", {}), rejected, parts)


def _kept(store: ObjectStore, key: str, earlier: dict | None, schema: pa.Schema | None) -> bool:
    """Whether the part at `key`, as `earlier` (its entry in the last meta.json) describes it,
    can stand for the batch: it had nothing rejected or repeated, and has the run's schema."""
    if earlier is None or not earlier.get("clean") or earlier.get("key") != key:
        return False
    if not store.exists(key):
        return False
    return schema is None or store.parquet_schema(key).equals(schema, check_metadata=False)


def _normalize_partition(
    store: ObjectStore,
    config: DatasetConfig,
    parsed_key: str,
    staging: str,
    quarantine_key: str,
    day: dt.date,
    earlier: dict | None,
) -> _NormalizedData:
    """One part per parsed batch: kept from the last run when it holds the same batch (digest),
    made under the same contract, code and day, else normalized now."""
    made_with = normalized_fingerprint(config, day)
    same_making = earlier is not None and earlier.get("made_with") == made_with
    kept = (
        {part["digest"]: part for part in (earlier or {}).get("parts", [])} if same_making else {}
    )
    state = {
        "parsed": 0,
        "duplicates": 0,
        "rejected": [],
        "keys": KeyTracker(),
        "conflicting": frozenset(),
        "hwm": {},
    }
    parts: list[dict] = []
    schema: pa.Schema | None = None
    writer = PartWriter(store)
    try:
        for index, (batch, digest) in enumerate(_parsed_batches(store, parsed_key, config)):
            key = part_key(staging, index, f"{digest}:{made_with}" if digest else None)
            if digest is not None and _kept(store, key, kept.get(digest), schema):
                parts.append(kept[digest])
                schema = schema or store.parquet_schema(key)
                _track_kept(store, config, key, kept[digest], state)
                continue
            result = normalize(batch, config, day)
            table = result.table if schema is None else _conform_part(key, result.table, schema)
            schema = schema or table.schema
            clean = not (
                result.rejected.num_rows or result.duplicates_dropped or result.conflicting_keys
            )
            _track(config, batch.num_rows, result, state)
            parts.append(
                {
                    "key": key,
                    "rows": table.num_rows,
                    "parsed": batch.num_rows,
                    "digest": digest,
                    "clean": clean,
                }
            )
            writer.write(key, table)
    finally:
        writer.close()
    assert schema is not None
    rows = sum(part["rows"] for part in parts)
    conflicts, repeats = _dedupe_across_batches(
        store, parts, state["keys"], state["conflicting"], parsed_key
    )
    rows -= repeats.size + conflicts.num_rows
    keys = [part["key"] for part in parts]
    if conflicts.num_rows:  # rows left out after the batches were counted: marks again
        state["hwm"] = {}
        for table in _part_columns(store, keys, config):
            state["hwm"] = high_water_marks(config, table, state["hwm"])
    rejected = state["rejected"] + ([conflicts] if conflicts.num_rows else [])
    store.delete_prefix(quarantine_key.rsplit("/", 1)[0])
    rows_rejected = sum(t.num_rows for t in rejected)
    all_rejected = pa.concat_tables(rejected, promote_options="permissive") if rejected else None
    if all_rejected is not None:
        store.write_parquet(quarantine_key, all_rejected)
    counts = {
        "parsed": state["parsed"],
        "rejected": rows_rejected,
        "duplicates": state["duplicates"] + int(repeats.size),
        "normalized": rows,
    }
    rejected_head = all_rejected.slice(0, 20) if all_rejected is not None else pa.table({})
    staged = Staged(rows, schema, parts_head(store, keys, PREVIEW_HEAD))
    return _NormalizedData(staged, counts, state["hwm"], rejected_head, parts)


def _conform_part(key: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A later part in the first part's schema (a column all null in one batch, say)."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StageError(f"{key}: a batch's columns differ from the first batch's: {exc}") from None


def _track(config: DatasetConfig, parsed_rows: int, result, state: dict) -> None:
    state["parsed"] += parsed_rows
    state["duplicates"] += result.duplicates_dropped
    if result.rejected.num_rows:
        state["rejected"].append(result.rejected)
    state["keys"].add(result.table[KEY_HASH])
    state["conflicting"] |= result.conflicting_keys
    state["hwm"] = high_water_marks(config, result.table, state["hwm"])


def _track_kept(store: ObjectStore, config: DatasetConfig, key: str, part: dict, state: dict):
    """A kept part's keys and newest times, read back (its batch was not normalized again)."""
    state["parsed"] += part["parsed"]
    for table in _part_columns(store, [key], config, with_keys=True):
        state["keys"].add(table[KEY_HASH])
        state["hwm"] = high_water_marks(config, table, state["hwm"])


def _part_columns(store: ObjectStore, keys: list[str], config: DatasetConfig, with_keys=False):
    """The parts' columns that high-water marks (and, `with_keys`, repeats) are found from."""
    names = set(store.parquet_schema(keys[0]).names)
    wanted = [SERIES_CODE, config.normalize.time_column] + ([KEY_HASH] if with_keys else [])
    yield from iter_parts(store, keys, columns=[c for c in wanted if c in names])


def _dedupe_across_batches(
    store: ObjectStore,
    parts: list[dict],
    tracker: KeyTracker,
    conflicting: frozenset[str],
    parsed_key: str,
) -> tuple[pa.Table, np.ndarray]:
    """Keys repeated across batches (rare): drop exact repeats, quarantine conflicts, rewrite
    the parts that held them. Returns (the quarantined rows, the dropped positions)."""
    candidates = tracker.candidates(conflicting)
    if candidates.size == 0:
        return pa.table({}), np.zeros(0, dtype=np.int64)
    rows = _take_positions(store, parts, candidates)
    repeats, rejected, groups = judge(rows, candidates, conflicting)
    drop = np.union1d(repeats, rejected)
    if drop.size == 0:
        return pa.table({}), repeats
    in_conflict = rows.filter(pa.array(np.isin(candidates, rejected)))
    row_of = dict(zip(candidates.tolist(), rows[ROW_COLUMN].to_pylist(), strict=True))
    reason_of = {}
    for key_hash, row in zip(
        in_conflict[KEY_HASH].to_pylist(), in_conflict[ROW_COLUMN].to_pylist(), strict=True
    ):
        reason_of[row] = conflict_reason(", ".join(str(row_of[p]) for p in groups[key_hash]))
    # quarantined as the source has them: the parsed rows (text, cells), by source row number
    source = _parsed_rows(store, parsed_key, list(reason_of))
    count = source.num_rows
    reasons = [reason_of[row] for row in source[ROW_COLUMN].to_pylist()]
    cells = json.loads((store.parquet_schema(parsed_key).metadata or {}).get(CELLS_META, b"{}"))
    conflicts = rejected_rows(
        source, reasons, ["conflicting_duplicate"] * count, [None] * count, cells
    )
    _drop_positions(store, parts, drop)
    return conflicts, repeats


def _parsed_rows(store: ObjectStore, parsed_key: str, rows: list[int]) -> pa.Table:
    wanted = pa.array(rows, pa.int64())
    parts = [
        batch.filter(pc.is_in(batch[ROW_COLUMN], value_set=wanted))
        for batch in store.iter_parquet(parsed_key)
    ]
    return pa.concat_tables(parts).combine_chunks()


def _part_spans(parts: list[dict], positions: np.ndarray):
    """(index, part, positions within it) for every part that holds some of the global
    `positions`."""
    start = 0
    for index, part in enumerate(parts):
        end = start + part["rows"]
        local = positions[(positions >= start) & (positions < end)] - start
        if local.size:
            yield index, part, local
        start = end


def _take_positions(store: ObjectStore, parts: list[dict], positions: np.ndarray) -> pa.Table:
    return pa.concat_tables(
        [
            store.read_parquet(part["key"]).take(pa.array(local))
            for _, part, local in _part_spans(parts, positions)
        ]
    )


def _drop_positions(store: ObjectStore, parts: list[dict], positions: np.ndarray) -> None:
    """Rewrite the parts that hold `positions` without those rows (no longer their batch's
    normalized rows as such: not kept for a later run)."""
    for index, part, local in list(_part_spans(parts, positions)):
        table = store.read_parquet(part["key"])
        keep = np.ones(table.num_rows, dtype=bool)
        keep[local] = False
        key = part_key(part["key"].rsplit("/", 1)[0], index, None)  # a new part
        store.write_parquet(key, table.filter(pa.array(keep)))
        part.update(key=key, rows=int(keep.sum()), clean=False)


def blocking_failures(checks: dict[str, dict]) -> dict[str, dict]:
    return {name: r for name, r in checks.items() if not r["passed"] and r["severity"] == "error"}


def run_publish(rt: Runtime, config: DatasetConfig, partition: str) -> publish.PublishResult:
    staging, meta = normalized_meta(rt.store, config, partition)
    raw, counts, checks = meta["raw"], meta["counts"], meta["checks"]
    failed = blocking_failures(checks)
    if failed:
        summary = "; ".join(f"{name}: {r['detail']}" for name, r in failed.items())
        raise ChecksFailedError(
            f"dataset {config.dataset_id}, partition {partition}: not published, blocking checks "
            f"failed on the normalized data: {summary}. Fix the source or the contract and re-run "
            f"the partition (rejected rows are in {layout.quarantine(config.dataset_id, partition)}/).",
            failed,
        )
    inputs = {
        k: raw.get(k)
        for k in ("sha256", "bytes", "etag", "last_modified", "source", "fetched_at", "fingerprint")
    }
    current, _ = publish.read_current(rt.store, config.dataset_id)
    if (
        current
        and raw.get("fingerprint")
        and current["inputs"].get("fingerprint") == raw["fingerprint"]
    ):
        # `current` was published from this very input: every row is there, unchanged
        with rt.locks.hold(config.lock_key, config.lock.ttl_s):
            publish.heal(rt.store, config, current)
        return publish.PublishResult(
            dataset_id=config.dataset_id,
            version=current["version"],
            parent=current["version"],
            committed=False,
            rows_added=0,
            rows_revised=0,
            rows_repeated=counts["normalized"],
            manifest=current,
        )
    parts = tuple(
        (part["key"], part["rows"] if content_named(part["key"]) and "rows" in part else -1)
        for part in staged_parts(meta, staging)
    )
    inputs["parts"] = [key for key, _ in parts]  # what this version is published from
    result = publish.publish(
        rt.store,
        rt.locks,
        config,
        partition,
        publish.StagedRows(rt.store, parts),
        inputs,
        counts,
        checks,
    )
    if not result.committed:
        return result
    error = rt.notifier.notify(config.notify.sns_topic_arn, result.manifest)
    return dataclasses.replace(result, notification_error=error)


@dataclass(frozen=True)
class WarehouseOutcome:
    table: str
    versions_loaded: list[str]
    rows_inserted: int
    rows_updated: int
    skipped: str | None = None


def run_warehouse(rt: Runtime, config: DatasetConfig) -> WarehouseOutcome:
    """Load every published version the warehouse ledger does not have yet, oldest first (one
    transaction each): a missed or repeated run converges, and only new/revised rows travel."""
    target = config.publish.postgres
    assert target is not None
    name = f"{target.schema_}.{target.table}"
    if rt.warehouse is None:
        return WarehouseOutcome(name, [], 0, 0, skipped="INGEST_POSTGRES_URL is not set")
    current, _ = publish.read_current(rt.store, config.dataset_id)
    loaded = rt.warehouse.loaded_versions(config.dataset_id)
    versions, inserted, updated = [], 0, 0
    for manifest in publish.version_chain(rt.store, config.dataset_id, current):
        if manifest["version"] in loaded:
            continue
        rows = (rt.store.read_parquet(key) for key in manifest["files"])  # a month at a time
        result = rt.warehouse.load(
            config.dataset_id,
            manifest["version"],
            manifest.get("partition"),
            rows,
            config.primary_keys,
            target.schema_,
            target.table,
        )
        if not result.already_loaded:
            versions.append(manifest["version"])
            inserted += result.inserted
            updated += result.updated
    return WarehouseOutcome(name, versions, inserted, updated)


def rebuild_warehouse(rt: Runtime, config: DatasetConfig) -> WarehouseOutcome:
    """Disaster recovery: drop the dataset's rows and ledger entries, reload from the store."""
    target = config.publish.postgres
    if rt.warehouse is None or target is None:
        raise StageError(
            f"dataset {config.dataset_id}: needs publish.postgres and INGEST_POSTGRES_URL"
        )
    rt.warehouse.forget(config.dataset_id, target.schema_, target.table)
    return run_warehouse(rt, config)
