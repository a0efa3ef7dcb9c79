"""The object store: keys like `datasets/<id>/events/<v>/manifest.json`, on local disk
(`local_store`) or S3 (`s3_store`), behind the `ObjectStore` interface defined here.

Immutable objects are written once; the `current` pointer is replaced by compare-and-swap.
Parquet objects are written as `parquet_writing` says, and read back in batches of about
BATCH_BYTES of rows.
"""

import builtins
import hashlib
import math
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingest_resources.errors import StoreError
from ingest_resources.parquet_writing import conform, parquet_options

# --- a file's bytes, read in chunks: what every file hash and copy reads them by

CHUNK_BYTES = 1 << 20


def file_chunks(path: Path) -> Iterator[memoryview]:
    """The file's bytes, a chunk at a time, read into one buffer (no new bytes object per
    chunk: a third less time to hash 46 MB)."""
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as source:
        while count := source.readinto(buffer):
            yield view[:count]


def file_sha256(path: Path) -> tuple[str, int]:
    """The file's sha256 (hex) and size, read in chunks."""
    digest, size = hashlib.sha256(), 0
    for chunk in file_chunks(path):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class CasConflict(StoreError):
    """The object changed since it was read: another writer won the race."""

    retryable = True


class ObjectStore(ABC):
    """What the pipeline needs from a store; keys are `/`-separated and relative to the root."""

    # objects worth reading or writing at once, each by its own thread: a network store hides
    # its latency behind many; a local disk gains nothing past the cores (each thread holds
    # its object, and Arrow's allocator keeps memory per thread)
    concurrency = 8

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """Content and ETag, or None when the key does not exist."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write (or overwrite) a key atomically: readers see the old or the new content."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write a key that must not exist yet; False (and nothing written) if it does."""

    @abstractmethod
    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        """Replace `key` only if its ETag is still `etag` (None: only if it does not exist).

        Returns the new ETag; raises CasConflict when another writer got there first.
        """

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix` (recursive), sorted."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    @abstractmethod
    def stat_list(self, prefix: str, hidden: bool = False) -> dict[str, tuple[int, float]]:
        """Every key under `prefix` (recursive) with its size and modification time (seconds
        since the epoch). `hidden`: a local store's scratch files (`.name`) too."""

    def list_sizes(self, prefix: str) -> dict[str, int]:
        return {key: size for key, (size, _) in self.stat_list(prefix).items()}

    def list_folders(self, prefix: str) -> builtins.list[str]:
        """The names of the folders just below `prefix`, sorted."""
        base = prefix.rstrip("/") + "/"
        return sorted(
            {
                key[len(base) :].split("/", 1)[0]
                for key in self.list(prefix)
                if "/" in key[len(base) :]
            }
        )

    def sha256(self, key: str) -> str:
        """The sha256 of the object's bytes, read in chunks (KeyError if there is none)."""
        with self.local_file(key) as path:
            return file_sha256(path)[0]

    @abstractmethod
    def describe(self) -> str: ...

    def write_parquet(self, key: str, table: pa.Table, durable: bool = True) -> None:
        """`durable=False`: not yet safe from a crash when this returns (a local store skips
        the fsync): derived state a crash may lose, or an object `sync`ed before anything
        points to it."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **parquet_options(table.schema))
        self._put(key, sink.getvalue().to_pybytes(), durable)

    def _put(self, key: str, data: bytes, durable: bool) -> None:
        self.put(key, data)

    def read_parquet(self, key: str, columns: builtins.list[str] | None = None) -> pa.Table:
        # a ParquetFile reads one object directly; read_table would set up a dataset first
        return pq.ParquetFile(pa.BufferReader(self.get(key))).read(columns=columns)

    # --- large objects, in bounded memory -------------------------------------------------------

    def put_file(
        self,
        key: str,
        path: Path,
        move: bool = False,
        durable: bool = True,
        immutable: bool = False,
    ) -> bool:
        """Store a local file under `key`; with `move`, the file is the store's to take (a
        scratch file: moved into place or deleted once stored), else it is left as it is.
        `durable=False` as for `write_parquet`. `immutable`: only if `key` does not exist yet
        (S3: If-None-Match); False when it did (nothing written). Else True."""
        written = self._upload(key, Path(path), immutable)
        if move:
            Path(path).unlink(missing_ok=True)
        return written

    def sync(self, keys: Iterable[str]) -> None:
        """Make objects stored with `durable=False` safe from a crash, all at once (a network
        store's objects are when they are stored)."""
        return None

    def _upload(self, key: str, path: Path, immutable: bool = False) -> bool:
        if immutable:
            return self.put_if_absent(key, path.read_bytes())
        self.put(key, path.read_bytes())
        return True

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        """A local path holding the object's bytes, for readers that stream from a file."""
        with tempfile.TemporaryDirectory(prefix="ingest-") as folder:
            path = Path(folder) / Path(key).name
            self._download(key, path)
            yield path

    def _download(self, key: str, path: Path) -> None:
        """Write the object's bytes to `path` (KeyError if there is no such object)."""
        path.write_bytes(self.get(key))

    def scratch_folder(self, key: str) -> Path | None:
        """Where to write a file before `put_file` (None: the system's temporary folder)."""
        return None

    def write_parquet_batches(
        self, key: str, batches: Iterable[pa.Table], schema: pa.Schema | None = None
    ) -> tuple[int, pa.Schema | None]:
        """Write tables one after another into one Parquet object, holding one at a time.
        The schema is `schema` or the first table's; later tables are cast to it. Returns the
        row count and the schema (None and nothing written when there was no table at all)."""
        folder = self.scratch_folder(key)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".write-", suffix=".parquet")
        os.close(fd)
        rows, writer, pending = 0, None, None
        # a table is encoded and compressed on a thread (Arrow releases the GIL) while the
        # next one is made: two tables are held at most
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            for table in batches:
                if writer is None:
                    schema = schema or table.schema
                    writer = pq.ParquetWriter(name, schema, **parquet_options(schema))
                if table.schema != schema:
                    table = conform(key, table, schema)
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_table, table)
                rows += table.num_rows
            if pending is not None:
                pending.result()
            if writer is None:
                if schema is None:
                    return 0, None
                writer = pq.ParquetWriter(name, schema, **parquet_options(schema))
            writer.close()
            writer = None
            self.put_file(key, Path(name), move=True)
        finally:
            pool.shutdown()
            if writer is not None:
                writer.close()
            Path(name).unlink(missing_ok=True)
        return rows, schema

    def iter_parquet(
        self,
        key: str,
        columns: builtins.list[str] | None = None,
        batch_rows: int | None = None,
        by_row_group: bool = False,
    ) -> Iterator[pa.Table]:
        """The object's rows in tables of `batch_rows` rows (by default as many as make about
        BATCH_BYTES of data, so wide rows come in smaller batches), with the file's schema.
        `by_row_group`: no table spans two row groups, and each row group is cut by its own
        size, so a row group yields the same tables whatever the rest of the file holds."""
        with self.local_file(key) as path:
            # pre_buffer would keep every row group read so far cached: memory grows with the file
            parquet = pq.ParquetFile(path, pre_buffer=False)
            schema = parquet.schema_arrow
            if columns is not None:
                schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
            metadata = parquet.metadata
            every = list(range(metadata.num_row_groups))
            spans = [[group] for group in every] if by_row_group else [None]
            for groups in spans:
                rows = batch_rows or _rows_per_batch(metadata, groups or every, by_row_group)
                batches = parquet.iter_batches(batch_size=rows, columns=columns, row_groups=groups)
                for batch in batches:
                    yield pa.Table.from_batches([batch], schema=schema)

    def parquet_metadata(self, key: str) -> pq.FileMetaData:
        """A Parquet object's footer: schema, row groups, sorting columns."""
        with self.local_file(key) as path:
            return pq.read_metadata(path)

    def parquet_rows(self, key: str) -> int:
        return int(self.parquet_metadata(key).num_rows)

    def parquet_schema(self, key: str) -> pa.Schema:
        return self.parquet_metadata(key).schema.to_arrow_schema()

    def copy(self, source: str, key: str, durable: bool = True) -> None:
        """Write the object at `source` under `key` too (an immutable object that a derived
        one equals, byte for byte)."""
        self._put(key, self.get(source), durable)


BATCH_BYTES = 16 << 20  # uncompressed bytes of rows handled at a time
BATCH_ROWS = (10_000, 250_000)  # whatever the row width


def _rows_per_batch(metadata: pq.FileMetaData, groups: list[int], stable: bool = False) -> int:
    """Rows that make about BATCH_BYTES. `stable`: rounded up to a power of two (at most twice
    the bytes), so that a row group that grew (more rows of the same width) is still cut at the
    same places."""
    row_groups = [metadata.row_group(i) for i in groups]
    row_bytes = sum(g.total_byte_size for g in row_groups) / max(
        sum(g.num_rows for g in row_groups), 1
    )
    low, high = BATCH_ROWS
    rows = min(high, max(low, BATCH_BYTES / max(row_bytes, 1.0)))
    return int(min(high, max(low, 2 ** math.ceil(math.log2(rows))))) if stable else int(rows)
