"""Event data: the rows of one version, one immutable Parquet file per (year, month) of the time
column, each recorded with its size and sha256 for the manifest (chain.py checks them)."""

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest_assets import layout
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.eventstore.manifest import EventFile
from ingest_assets.eventstore.parallel import CPU_THREADS, in_parallel
from ingest_assets.rows.hashing import KEY_HASH
from ingest_resources.object_store import ObjectStore, file_sha256
from ingest_resources.parquet_writing import parquet_options

OP, VERSION = "op", "version"


def time_column(config: DatasetConfig, table: "pa.Table | pa.Schema") -> str:
    name = config.normalize.time_column
    names = table.names if isinstance(table, pa.Schema) else table.column_names
    return name if name in names else "collection_date"


def year_month(table: pa.Table, column: str) -> tuple[pa.Array, pa.Array]:
    values = table[column]
    return pc.year(values), pc.month(values)


def window_order(config: DatasetConfig, table: "pa.Table | pa.Schema") -> list[tuple[str, str]]:
    """The order of a projection window's rows (and of an event file small enough to be sorted
    as one): by time, then key_hash; rows without a time last."""
    return [(time_column(config, table), "ascending"), (KEY_HASH, "ascending")]


def read_event_rows(
    store: ObjectStore, files: list[str], columns: list[str] | None = None
) -> pa.Table | None:
    tables = [store.read_parquet(key, columns=columns) for key in files]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


# (year, month) of the time column; (None, None): rows without a time
Month = tuple[int | None, int | None]
# A month's record batch for EventWriter, and its bytes: spilled (spill file, its index there,
# bytes), or still held in memory (the batch, 0, bytes)
Piece = tuple[Path | pa.RecordBatch, int, int]


class EventWriter:
    """The event rows of one version, one Parquet file per (year, month) of the time column.

    Rows arrive in batches that cover many months, a few rows each. They are held up to
    HOLD_BYTES, then spilled, month after month, to one scratch Arrow IPC file (a copy, no
    encoding). `close` then encodes each month, from its record batches in every spill and
    those still held (the last rows are never spilled: an event of less than HOLD_BYTES is
    encoded from memory), in large row groups, months side by side. Small row groups written as
    batches came cost twice to write and to read again (projections, the warehouse, exports); a
    spill file per month would cost a file creation for every month of every spill."""

    GROUP_BYTES = 64 << 20  # rows encoded at a time (one row group) when a month is written
    HOLD_BYTES = 64 << 20  # rows held in memory before they are spilled

    def __init__(self, store: ObjectStore, config: DatasetConfig, version: str, schema: pa.Schema):
        self.store, self.config, self.version = store, config, version
        self.schema = schema  # of every event row (op and version included)
        # per month, in the order rows came: (spill file, record batch, its bytes)
        self.spills: dict[Month, list[Piece]] = {}
        self.scratch = Path(tempfile.mkdtemp(prefix=".events-", dir=self._scratch_root()))
        self.spill_names = itertools.count()  # a new name for every spill file
        self.done: list[tuple[str, str]] = []  # (key, local Parquet file)
        self.stored: list[EventFile] = []
        self.windows: set[str] = set()  # months written as their projection window is
        self.held: dict[Month, list[pa.Table]] = {}  # rows not spilled yet, per month
        self.held_bytes = 0
        self.readers = threading.local()  # spill readers, each thread its own
        self.opened: list[pa.NativeFile] = []
        self.lock = threading.Lock()

    def _scratch_root(self) -> Path | None:
        folder = self.store.scratch_folder(layout.event(self.config.dataset_id, self.version))
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write(self, rows: pa.Table) -> None:
        years, months = year_month(rows, time_column(self.config, rows))
        month_code = pc.fill_null(
            pc.add(pc.multiply(years.cast(pa.int64()), 100), months.cast(pa.int64())), -1
        )
        order = pc.sort_indices(month_code)  # stable; a counting sort for so few codes
        ordered, codes = rows.take(order), month_code.take(order).to_numpy(zero_copy_only=False)
        bounds = np.flatnonzero(np.diff(codes)) + 1
        for start, stop in zip(
            np.concatenate([[0], bounds]), np.concatenate([bounds, [len(codes)]]), strict=True
        ):
            code = int(codes[start])
            month: Month = (None, None) if code < 0 else (code // 100, code % 100)
            self.held.setdefault(month, []).append(ordered.slice(start, stop - start))
        self.held_bytes += ordered.nbytes
        if self.held_bytes >= self.HOLD_BYTES:
            self._spill_held()

    def _spill_held(self) -> None:
        """The held rows to one spill file, month after month (each month's rows in the order
        they came, a record batch for each batch they came in): a few large writes, and a
        month's rows side by side when it is encoded."""
        if not self.held:
            return
        path = self.scratch / f".{next(self.spill_names)}.arrow"  # (hidden)
        spill = pa.ipc.new_file(str(path), self.schema)
        found: list[tuple[Month, int, int]] = []
        try:
            for month, tables in self.held.items():
                for table in tables:
                    for batch in table.to_batches():
                        spill.write_batch(batch)
                        found.append((month, len(found), batch.nbytes))
        except BaseException:
            with contextlib.suppress(Exception):  # (a full disk fails the close too)
                spill.close()
            raise
        spill.close()
        for month, index, size in found:
            self.spills.setdefault(month, []).append((path, index, size))
        self.held.clear()
        self.held_bytes = 0

    def close(self) -> list[EventFile]:
        """Store every month's file (immutable event data); returns them with their sizes and
        sha256, sorted by key."""
        months = {month: list(pieces) for month, pieces in self.spills.items()}
        for month, tables in self.held.items():  # the rows held last, after their spills
            batches = (b for t in tables for b in t.to_batches())
            months.setdefault(month, []).extend((b, 0, b.nbytes) for b in batches)
        self.held.clear()  # (each month's rows go once it is encoded)
        self.held_bytes = 0
        # A month is stored (renamed into place, or uploaded) as soon as it is encoded, on its
        # own threads: the waits on the network overlap the next months' encoding. On disk,
        # the months are made durable together once all are stored, before the manifest.
        with ThreadPoolExecutor(max_workers=self.store.concurrency) as storing:
            stored: list[Future[None]] = []

            def encode_then_store(item: tuple[Month, list[Piece]]) -> None:
                stored.append(storing.submit(self._store_file, self._encode(item)))
                item[1].clear()

            try:
                in_parallel(encode_then_store, list(months.items()), workers=CPU_THREADS)
            finally:
                self._close_spills()
            for future in stored:
                future.result()
        shutil.rmtree(self.scratch, ignore_errors=True)
        files = sorted(self.stored, key=lambda file: file.key)
        self.store.sync([file.key for file in files])
        return files

    def _encode(self, item: tuple[Month, list[Piece]]) -> tuple[str, str]:
        """One month's record batches, in order, into one Parquet file of GROUP_BYTES row
        groups (read a group at a time): (its key, the local file)."""
        month, pieces = item
        key = layout.event_data(self.config.dataset_id, self.version, *month)
        folder = self.store.scratch_folder(key)  # beside the object: stored by a rename
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".event-", suffix=".parquet")
        os.close(fd)
        target = Path(name)
        self.done.append((key, name))  # (before writing: an abort removes it)
        if sum(size for _, _, size in pieces) <= self.GROUP_BYTES:
            self._encode_sorted(target, [self._batch(piece) for piece in pieces])
            if SERIES_CODE not in self.schema.names:  # (else the windows are of each series)
                self.windows.add(key)
            return key, name
        with pq.ParquetWriter(target, self.schema, **parquet_options(self.schema)) as out:
            group: list[pa.RecordBatch] = []
            size = 0
            for piece in pieces:
                group.append(self._batch(piece))
                size += piece[2]
                if size >= self.GROUP_BYTES:
                    out.write_table(pa.Table.from_batches(group, self.schema))
                    group, size = [], 0
            if group:
                out.write_table(pa.Table.from_batches(group, self.schema))
        return key, name

    READERS = 64  # spills a thread keeps open (the least recently used is closed first)

    def _batch(self, piece: "Piece") -> pa.RecordBatch:
        source, index, _ = piece
        if isinstance(source, pa.RecordBatch):  # held, not spilled
            return source
        return self._reader(source).get_batch(index)

    def _reader(self, path: Path) -> pa.ipc.RecordBatchFileReader:
        """This thread's reader of a spill, opened once (its footer lists every record batch),
        while it is among the thread's READERS most recently used. Read, not mapped: a mapped
        spill's pages would count in the process's memory until it is unmapped."""
        readers: dict[Path, tuple[pa.NativeFile, pa.ipc.RecordBatchFileReader]] = (
            self.readers.__dict__.setdefault("by_path", {})
        )
        if path in readers:
            readers[path] = readers.pop(path)  # (now the most recent)
            return readers[path][1]
        if len(readers) >= self.READERS:
            source, _ = readers.pop(next(iter(readers)))
            with self.lock:
                self.opened.remove(source)
            source.close()
        source = pa.OSFile(str(path))
        with self.lock:
            self.opened.append(source)
        readers[path] = (source, pa.ipc.open_file(source))
        return readers[path][1]

    def _encode_sorted(self, target: Path, batches: list[pa.RecordBatch]) -> None:
        """A month that fits in one row group, in the order of its projection window (declared
        in the footer): when the window is new, the projection is this file as it is."""
        rows = pa.Table.from_batches(batches, self.schema)
        order = window_order(self.config, rows)
        # sorted by its key columns made whole (Arrow sorts a table of many small chunks
        # several times slower: 0.13 s -> 0.03 s for 1M rows in 165 months of 9 chunks)
        keys = pa.table({name: rows[name].combine_chunks() for name, _ in order})
        rows = rows.take(pc.sort_indices(keys, sort_keys=order))  # nulls last
        sorting = pq.SortingColumn.from_ordering(rows.schema, order)
        options = parquet_options(rows.schema)
        with pq.ParquetWriter(target, rows.schema, sorting_columns=sorting, **options) as out:
            out.write_table(rows, row_group_size=max(rows.num_rows, 1))

    def _close_spills(self) -> None:
        """Close every open spill (after a failure too: an error here must not hide it)."""
        for source in self.opened:
            with contextlib.suppress(Exception):
                source.close()
        self.opened.clear()

    def _store_file(self, item: tuple[str, str]) -> None:
        """Record the file's size and sha256 (read back while the page cache holds it), then
        store it, refusing to replace an object (synced in `close`)."""
        key, path = item
        sha256, size = file_sha256(Path(path))
        if not self.store.put_file(key, Path(path), move=True, durable=False, immutable=True):
            raise FileExistsError(f"{self.store.describe()}: event file {key} exists already")
        with self.lock:
            self.stored.append(EventFile(key, size, sha256))

    def abort(self) -> None:
        """Remove every scratch file (and what was already stored of this event). Runs after a
        failure, a full disk say."""
        self.held.clear()
        self._close_spills()
        shutil.rmtree(self.scratch, ignore_errors=True)
        for _, path in self.done:
            Path(path).unlink(missing_ok=True)
        self.store.delete_prefix(layout.event(self.config.dataset_id, self.version))
