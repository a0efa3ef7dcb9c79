"""The object store: keys like `datasets/<id>/events/<v>/manifest.json`, on local disk or S3.

Immutable objects are written once; the `current` pointer is replaced by compare-and-swap.
The local store gives the same guarantees with a file lock and atomic renames.
"""

import contextlib
import hashlib
import math
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from ingest_resources.errors import DataError, StoreError


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

    def list_folders(self, prefix: str) -> "list[str]":
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
        digest = hashlib.sha256()
        with self.local_file(key) as path, open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

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

    def read_parquet(self, key: str, columns: "list[str] | None" = None) -> pa.Table:
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
                    table = _conform(key, table, schema)
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
        columns: "list[str] | None" = None,
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
        return self.parquet_metadata(key).num_rows

    def parquet_schema(self, key: str) -> pa.Schema:
        return self.parquet_metadata(key).schema.to_arrow_schema()

    def copy(self, source: str, key: str, durable: bool = True) -> None:
        """Write the object at `source` under `key` too (an immutable object that a derived
        one equals, byte for byte)."""
        self._put(key, self.get(source), durable)


HASH_FIELD = {b"ingest.values": b"hash"}  # field metadata: the values are (parts of) hashes


def _is_hash(field: pa.Field) -> bool:
    return field.name.endswith("_hash") or HASH_FIELD.items() <= (field.metadata or {}).items()


def parquet_options(schema: pa.Schema) -> dict:
    """How every Parquet file of the store is written:
    - zstd level 1 (as small as the default level here, faster); none at all for hashes held
      as bytes or integers (random: zstd cannot shrink them, and a read then copies them once);
    - no dictionary encoding, but for Arrow dictionary columns: zstd over plain values is as
      small or smaller (1M staged CSV rows: 4.8 MB plain, 5.8 MB with dictionaries) and writes
      twice as fast;
    - no min/max statistics for hash columns (named `*_hash`, or marked with HASH_FIELD): every
      value differs and no reader filters on a range of hashes, so they cost time (a quarter of
      a write; most of the key index's) for nothing."""
    plain = [f.name for f in schema if not _is_hash(f)]
    raw = {f.name for f in schema if _is_hash(f) and _random(f)}
    compression: str | dict = "zstd"
    level: int | dict = 1
    if raw and not any(pa.types.is_nested(f.type) for f in schema):  # (a codec per leaf column)
        compression = {f.name: "none" if f.name in raw else "zstd" for f in schema}
        level = {f.name: 1 for f in schema if f.name not in raw}
    dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    return {
        "compression": compression,
        "compression_level": level,
        "use_dictionary": dictionaries or False,
        "write_statistics": plain,
    }


def _random(field: pa.Field) -> bool:
    """Digests as bytes, or marked parts of them (the key index's integers): not text, nor a
    user's number that happens to be named `*_hash`."""
    marked = HASH_FIELD.items() <= (field.metadata or {}).items()
    return pa.types.is_fixed_size_binary(field.type) or (marked and not _is_text(field.type))


def _is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


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


class SchemaMismatch(DataError, ValueError):
    """A batch cannot be written under the schema of the batches before it."""


def _conform(key: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        have = {f.name: str(f.type) for f in table.schema}
        want = {f.name: str(f.type) for f in schema}
        differences = [
            f"{name}: {want.get(name, 'absent')} before, {have.get(name, 'absent')} now"
            for name in sorted(set(have) | set(want))
            if have.get(name) != want.get(name)
        ]
        raise SchemaMismatch(
            f"{key}: a batch has other columns than the first one ({'; '.join(differences)}): "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a file whole or not at all: a temporary file beside it (fsynced if `durable`),
    renamed over it. Readers see the old or the new content, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def content_etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalObjectStore(ObjectStore):
    """A directory on local disk. Writes go to a temporary file renamed into place."""

    concurrency = max(2, os.cpu_count() or 2)

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._root_prefix = os.path.join(self._root, "")

    def _path(self, key: str) -> Path:
        """The key's file. Lexical (no `resolve()`, which costs a system call per folder of
        every key): `..` may not climb out of the root; a symlink the user put inside the root
        (a folder on another disk, say) is followed as the file system follows it."""
        path = os.path.normpath(os.path.join(self._root, key))
        if not (path == self._root or path.startswith(self._root_prefix)):
            raise ValueError(f"object key {key!r} escapes the store root")
        return Path(path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"{self.describe()}: no object {key!r}") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, content_etag(data)

    def _put(self, key: str, data: bytes, durable: bool) -> None:
        write_atomic(self._path(key), data, durable)

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def _lock(self, path: Path) -> FileLock:
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path.with_name(f".{path.name}.lock")))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        with self._lock(path):
            if path.exists():
                return False
            write_atomic(path, data)
            return True

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        path = self._path(key)
        with self._lock(path):
            current = self.get_with_etag(key)
            current_etag = current[1] if current else None
            if current_etag != etag:
                raise CasConflict(
                    f"{key}: expected ETag {etag}, found {current_etag}: another writer published first"
                )
            write_atomic(path, data)
        return content_etag(data)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def copy(self, source: str, key: str, durable: bool = True) -> None:
        """A copy of the bytes (the kernel's copy_file_range: no trip through Python), never a
        hard link: `key` may be a derived file that someone truncates or rewrites in place, and
        that must not reach an immutable `source`."""
        origin, target = self._path(source), self._path(key)
        if not origin.is_file():
            raise KeyError(f"{self.describe()}: no object {source!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(origin, tmp)
            if durable:
                _fsync(Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(
        self,
        key: str,
        path: Path,
        move: bool = False,
        durable: bool = True,
        immutable: bool = False,
    ) -> bool:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = Path(path)
        if not move or source.parent != target.parent:  # never move what is not the store's
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            shutil.copyfile(source, tmp)
            if move:
                source.unlink(missing_ok=True)
            path = Path(tmp)
        if durable:
            _fsync(path)
        if not immutable:
            os.replace(path, target)
            return True
        try:  # a link fails where the target exists: no object is ever replaced
            os.link(path, target)
        except FileExistsError:
            return False
        except OSError:  # a file system without links: the check and the rename, locked
            with self._lock(target):
                if target.exists():
                    return False
                os.replace(path, target)
        finally:
            Path(path).unlink(missing_ok=True)
        return True

    def sync(self, keys: Iterable[str]) -> None:
        """fsync the objects on threads at once: the file system commits them together (165
        month files of an event, one after another: 0.26 s on this machine's disk; at once,
        a few hundredths)."""
        paths = [self._path(key) for key in keys]
        if len(paths) <= 1:
            for path in paths:
                _fsync(path)
            return
        with ThreadPoolExecutor(max_workers=min(32, len(paths))) as pool:
            list(pool.map(_fsync, paths))

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise KeyError(f"{self.describe()}: no object {key!r}")
        yield path

    def scratch_folder(self, key: str) -> Path | None:
        return self._path(key).parent

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        if base.is_file():
            return [prefix]
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    def stat_list(self, prefix: str, hidden: bool = False) -> dict[str, tuple[int, float]]:
        base = self._path(prefix)
        if not base.exists():
            return {}
        found = {}
        for path in [base] if base.is_file() else base.rglob("*"):
            if (hidden or not path.name.startswith(".")) and path.is_file():
                with contextlib.suppress(FileNotFoundError):  # (removed meanwhile)
                    info = path.stat()
                    found[path.relative_to(self.root).as_posix()] = (info.st_size, info.st_mtime)
        return dict(sorted(found.items()))

    def list_folders(self, prefix: str) -> "list[str]":
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def describe(self) -> str:
        return f"local store {self.root}"
