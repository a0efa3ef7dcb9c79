"""Landing zones through the stages: the run's new and changed files, fetched into raw/ (each
content-addressed) with a listing of them as the raw object; parsed one after the other into one
table, each row knowing its file; recorded in the files ledger by the publish that takes them.

What is new (eventstore.files.Ledger): a file whose name, size and change stamp (mtime or ETag)
are not the ledger's, and whose bytes are not what the ledger has for its name; a name not seen
before whose content (sha256, or S3 ETag) was ingested under another name is a renamed copy and
adds nothing. A changed file is read again (its rows go through the anti-join: revisions); a
deleted file unpublishes nothing. Nothing new: the partition is recorded as empty
(`raw.record_empty`).
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout
from ingest_assets.contract import DatasetConfig, Secrets
from ingest_assets.eventstore.files import FileEntry, Ledger, published_ledger
from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import CELL_COLUMN, ROW_COLUMN, parse_batches
from ingest_assets.parsers.table import BATCH_BYTES
from ingest_assets.sources.fetch import fetch
from ingest_assets.sources.listing import LandingFile, Zone, list_files, named_files, zone
from ingest_assets.sources.windows import window_for
from ingest_assets.stages.raw import record_empty, store_fetched
from ingest_assets.stages.staged import StageError
from ingest_assets.stages.state import RawInfo, write_latest
from ingest_resources.errors import DataError
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime

FILES_PARTITION = "files"


def published_partition(config: DatasetConfig, partition: str) -> str:
    """The partition a version records. `files` partitions all record FILES_PARTITION: where
    two files hold one key, the file ingested later wins (a changed file's rows are
    revisions), whatever the names of the runs' files; each run still stages under its own."""
    return FILES_PARTITION if config.partitions.kind == "files" else partition


def landing_zone(config: DatasetConfig, partition: str) -> Zone:
    """The zone a partition reads: the glob with a time partition's placeholders filled."""
    window = window_for(config, partition, None) if config.partitions.is_time else None
    return zone(config, window)


def new_files(
    config: DatasetConfig,
    where: Zone,
    ledger: Ledger,
    names: Sequence[str] | None = None,
    bounded: bool = True,
) -> list[LandingFile]:
    """The files not ingested as they are (by the cheap signs), oldest name first: of `names`
    (`files` partitions: all of them), or of the whole listing (at most
    `source.max_files_per_run` when `bounded`)."""
    if names is not None:
        return [
            f for f in named_files(config, where, names) if not ledger.done(f.name, f.size, f.stamp)
        ]
    found = [f for f in list_files(config, where) if not ledger.done(f.name, f.size, f.stamp)]
    bound = config.source.max_files_per_run
    return found[:bound] if bound and bounded else found


def _one_file(config: DatasetConfig, file: LandingFile) -> DatasetConfig:
    """The config that fetches this one file (a `file` path or an `s3` key)."""
    if config.source.kind == "s3":
        bucket, _, key = file.location.removeprefix("s3://").partition("/")
        update = {"bucket": bucket, "key": key, "glob": None, "url": None}
    else:
        update = {"path": file.location, "glob": None}
    return config.model_copy(update={"source": config.source.model_copy(update=update)})


FETCH_THREADS = 8  # an S3 zone's GETs at once (each waits on the network)


def run_landing_raw(
    rt: Runtime,
    config: DatasetConfig,
    partition: str,
    secrets: Secrets | None = None,
    names: Sequence[str] | None = None,
) -> RawInfo:
    """Fetch the partition's new files into raw/ and write their listing (the raw object)."""
    where = landing_zone(config, partition)
    ledger = published_ledger(rt.store, config.dataset_id)
    landed: list[dict[str, object]] = []

    def fetch_one(file: LandingFile) -> tuple[LandingFile, tuple[str, str, int]]:
        fetched = fetch(_one_file(config, file), secrets)
        if config.source.kind == "s3" and fetched.etag:  # the bytes read: changed since listed?
            file = replace(file, stamp=f"etag:{fetched.etag.strip(chr(34))}")
        # (many small files: synced together below, not one fsync each)
        return file, store_fetched(rt.store, config, partition, fetched, durable=False)

    threads = FETCH_THREADS if config.source.kind == "s3" else rt.store.concurrency
    pool = ThreadPoolExecutor(max_workers=threads)
    try:  # (in order; the first error raises, and the files not started are not fetched)
        fetched_files = list(pool.map(fetch_one, new_files(config, where, ledger, names)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for file, (key, sha256, size) in fetched_files:
        if ledger.same_content(file.name, sha256):  # a copy, or a file touched but unchanged
            continue
        entry = FileEntry(file.name, file.location, size, file.stamp, sha256)
        landed.append({**asdict(entry), "raw_key": key})
    rt.store.sync(str(f["raw_key"]) for f in landed)
    if not landed:
        return record_empty(rt.store, config, partition, f"no new file in {where.glob}")
    body = json.dumps({"glob": where.glob, "files": landed}, indent=1).encode()
    sha256 = hashlib.sha256(body).hexdigest()
    key = layout.raw(config.dataset_id, partition, sha256, "files.json")
    rt.store.put_if_absent(key, body)
    info = RawInfo(
        key=key,
        sha256=sha256,
        bytes=sum(int(str(f["size"])) for f in landed),
        source=f"{where.glob} ({len(landed)} new file{'s' if len(landed) != 1 else ''})",
        etag=None,
        last_modified=None,
        fetched_at=dt.datetime.now(dt.UTC).isoformat(),
    )
    write_latest(rt.store, config.dataset_id, partition, info)
    return info


def _listing(store: ObjectStore, raw: RawInfo) -> list[dict[str, object]]:
    files = json.loads(store.get(raw.key))["files"]
    return list(files)


def landed_entries(store: ObjectStore, raw: RawInfo) -> tuple[FileEntry, ...]:
    """The files a run's raw listing holds, as the ledger records them."""
    fields = FileEntry.__dataclass_fields__
    return tuple(
        FileEntry(**{k: v for k, v in f.items() if k in fields})  # type: ignore[arg-type]
        for f in _listing(store, raw)
    )


def landing_batches(store: ObjectStore, config: DatasetConfig, raw: RawInfo) -> Iterator[pa.Table]:
    """Every file of the listing parsed, one after the other, as one stream of batches of about
    BATCH_BYTES (small files taken together: a part per file would make 10,000 parts): `_row`
    numbered on across files, `_cell` naming the file and its row (a quarantined row's
    `source_ref`), and `transform.source_file_column` holding the file when it is set."""
    gathered: list[pa.Table] = []
    size = 0
    for batch in _file_after_file(store, config, raw):
        gathered.append(batch)
        size += batch.nbytes
        if size >= BATCH_BYTES:
            yield pa.concat_tables(gathered).combine_chunks()
            gathered, size = [], 0
    if gathered:
        yield pa.concat_tables(gathered).combine_chunks()


def _file_after_file(store: ObjectStore, config: DatasetConfig, raw: RawInfo) -> Iterator[pa.Table]:
    offset = 0
    schema: pa.Schema | None = None
    for item in _listing(store, raw):
        location = str(item["location"])
        context = ParseContext(config, location)
        last = 0
        with store.local_file(str(item["raw_key"])) as path:
            for batch in _file_batches(path, context):
                rows = batch[ROW_COLUMN].cast(pa.int64())
                last = max(last, int(pc.max(rows).as_py() or 0))
                batch = _tagged(batch, config, location, rows, offset)
                schema = schema or batch.schema
                yield _aligned(batch, schema, config, location)
        offset += last


def _file_batches(path: Path, context: ParseContext) -> Iterator[pa.Table]:
    """One file's batches; read whole by the general reader when Arrow's refuses it before
    its first batch (as `parsed` does for a single file)."""
    started = False
    try:
        for batch in parse_batches(path, context):
            started = True
            yield batch
    except pa.ArrowInvalid as exc:
        if started:
            raise StageError(
                f"dataset {context.config.dataset_id}: {context.source_name}: {exc}"
            ) from None
        context.notes.clear()
        yield from parse_batches(path, context, whole=True)


def _tagged(
    batch: pa.Table, config: DatasetConfig, location: str, rows: pa.Array, offset: int
) -> pa.Table:
    cells = (
        batch[CELL_COLUMN].to_pylist()
        if CELL_COLUMN in batch.column_names
        else [f"row {n}" for n in rows.to_pylist()]
    )
    refs = pa.array([f"{location}: {cell}" for cell in cells], pa.string())
    batch = batch.set_column(
        batch.schema.get_field_index(ROW_COLUMN), ROW_COLUMN, pc.add(rows, offset)
    )
    if CELL_COLUMN in batch.column_names:
        batch = batch.set_column(batch.schema.get_field_index(CELL_COLUMN), CELL_COLUMN, refs)
    else:
        batch = batch.append_column(CELL_COLUMN, refs)
    column = config.transform.source_file_column
    if column:
        batch = batch.append_column(column, pa.repeat(pa.scalar(location), batch.num_rows))
    return batch


def _aligned(batch: pa.Table, schema: pa.Schema, config: DatasetConfig, location: str) -> pa.Table:
    """The batch in the first file's columns: a file of other columns is refused, naming it."""
    if set(batch.column_names) != set(schema.names):
        added = sorted(set(batch.column_names) - set(schema.names))
        gone = sorted(set(schema.names) - set(batch.column_names))
        raise DataError(
            f"dataset {config.dataset_id}: {location}: its columns differ from the run's first "
            f"file's (new {added}, missing {gone}); a landing zone's files share one layout"
        )
    try:
        return batch.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StageError(
            f"dataset {config.dataset_id}: {location}: its column types differ from the run's "
            f"first file's: {exc}"
        ) from None


def published_files(rt: Runtime, config: DatasetConfig) -> Ledger:
    """The files ledger of the published chain (what the sensor and `ingest run` compare with)."""
    return published_ledger(rt.store, config.dataset_id)
