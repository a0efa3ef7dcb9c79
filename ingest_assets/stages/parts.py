"""A staged output as numbered Parquet parts (`part-00000.parquet`, ...), one per input batch.

A part can outlive the run that wrote it: when the next run meets the same input batch (its
digest) under the same contract, the part is kept instead of made again, so an input that grew
at its end costs only its new batches. No Dagster here; the store does the I/O.
"""

import hashlib
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa

from ingest_resources.object_store import ObjectStore

PART_NAME = re.compile(r"part-(\d+)(?:-[0-9a-f]+)?\.parquet$")


def part_key(folder: str, index: int, made_of: str | None) -> str:
    """A part's key, named after what it is made of (a batch digest and how it was made), or
    new (None): a part is never rewritten in place, so a reader that listed it reads it whole
    or not at all (a run that replaced it deletes it only after its own list is written)."""
    token = hashlib.sha256(made_of.encode()).hexdigest() if made_of else uuid.uuid4().hex
    return f"{folder}/part-{index:05d}-{token[:16]}.parquet"


def content_named(key: str) -> bool:
    """Whether a part's name says what it holds (a part written before parts were named so,
    `part-00000.parquet`, may have been rewritten in place)."""
    found = PART_NAME.search(key.rsplit("/", 1)[-1])
    return found is not None and "-" in found.group(0)[len("part-") :]


def part_keys(store: ObjectStore, folder: str) -> list[str]:
    """The parts stored under `folder`, in order of their number."""
    numbered = []
    for key in store.list(folder):
        found = PART_NAME.search(key.rsplit("/", 1)[-1])
        if found:
            numbered.append((int(found.group(1)), key))
    return [key for _, key in sorted(numbered)]


def iter_parts(
    store: ObjectStore, keys: list[str], columns: list[str] | None = None
) -> Iterator[pa.Table]:
    for key in keys:
        yield from store.iter_parquet(key, columns=columns)


def read_parts(store: ObjectStore, keys: list[str], columns: list[str] | None = None) -> pa.Table:
    tables = [store.read_parquet(key, columns=columns) for key in keys]
    return pa.concat_tables(tables, promote_options="permissive")


def head(store: ObjectStore, keys: list[str], rows: int) -> pa.Table:
    """The first `rows` rows of the parts (for a preview), reading no more than that."""
    tables: list[pa.Table] = []
    wanted = rows
    for key in keys:
        first = next(store.iter_parquet(key, batch_rows=wanted), None)
        if first is not None:
            tables.append(first.slice(0, wanted))
            wanted -= tables[-1].num_rows
        if wanted <= 0:
            break
    if not tables:
        return store.parquet_schema(keys[0]).empty_table()
    return pa.concat_tables(tables, promote_options="permissive")


def batch_digest(table: pa.Table, *context: bytes) -> str:
    """sha256 of a batch's rows (Arrow IPC, schema metadata left out: it holds where the rows came
    from, not what they are) and of `context` (metadata the rows' meaning depends on)."""
    sink = pa.BufferOutputStream()
    bare = table.replace_schema_metadata(None)
    with pa.ipc.new_stream(sink, bare.schema) as writer:
        writer.write_table(bare)
    digest = hashlib.sha256(sink.getvalue())
    for value in context:
        digest.update(len(value).to_bytes(8, "little") + value)
    return digest.hexdigest()


class PartWriter:
    """Writes parts on a thread (Arrow encodes without the GIL) while the next one is made: two
    tables are held at most. The parts are made durable together when it closes."""

    def __init__(self, store: ObjectStore):
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: Future[None] | None = None
        self.written: list[str] = []

    def write(self, key: str, table: pa.Table) -> None:
        self.wait()
        self.pending = self.pool.submit(self.store.write_parquet, key, table, durable=False)
        self.written.append(key)

    def wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown()
        self.store.sync(self.written)
