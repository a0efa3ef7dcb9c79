"""A version's rows as the data of `COPY ... FROM STDIN (FORMAT binary)`: Arrow batches encoded
by pgpq on a thread, a few chunks ahead of the COPY that reads them."""

import queue
import threading
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from pgpq import ArrowToPostgresBinaryEncoder

from ingest_resources.warehouse.columns import WarehouseSchemaError

COPY_CHUNK = 1 << 20  # bytes psycopg2 asks for (and sends) at a time


class _Stopped(Exception):
    """The reader of a `BinaryCopy` is gone."""


class BinaryCopy:
    """The data of `COPY ... FROM STDIN (FORMAT binary)` as a file psycopg2 reads: Arrow
    batches encoded by pgpq on a thread, a few chunks ahead, while the client sends the
    previous ones and the server parses them (psycopg2 sends without the GIL)."""

    AHEAD = 4  # encoded batches waiting at most

    def __init__(self, batches: Iterable[pa.Table], schema: pa.Schema, target: str) -> None:
        self.rows = 0
        self._schema, self._target = schema, target
        self._chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=self.AHEAD)
        self._stop = threading.Event()
        self._pending = memoryview(b"")
        self._ended = False
        self.error: BaseException | None = None  # what stopped the encoding, if anything
        self._thread = threading.Thread(target=self._encode, args=(iter(batches),), daemon=True)
        self._thread.start()

    def _encode(self, batches: Iterator[pa.Table]) -> None:
        try:
            encoder = ArrowToPostgresBinaryEncoder(self._schema)
            self._hand(encoder.write_header())
            for table in batches:
                table = self._conform(table)
                for batch in table.to_batches():
                    self._hand(encoder.write_batch(batch))
                self.rows += table.num_rows
            self._hand(encoder.finish())
            self._hand(None)
        except _Stopped:  # the COPY ended early (it failed): nothing more to read
            return
        except BaseException as exc:  # raised again in the reading thread
            try:
                self._hand(exc)
            except _Stopped:
                return

    def _conform(self, table: pa.Table) -> pa.Table:
        try:
            return pa.table(
                [self._column(table[f.name], f.type) for f in self._schema], self._schema
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as exc:
            raise WarehouseSchemaError(
                f"{self._target}: rows cannot be loaded as "
                f"{', '.join(f'{f.name} {f.type}' for f in self._schema)}: {exc}"
            ) from None

    @staticmethod
    def _column(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            # PostgreSQL keeps microseconds: round to them, as its text input would
            column = pc.round_temporal(column, unit="microsecond").cast(target, safe=False)
        return column.cast(target)

    def _hand(self, item: bytes | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def read(self, size: int = -1) -> bytes:
        while not len(self._pending):
            if self._ended:
                return b""
            item = self._chunks.get()
            if item is None:
                self._ended = True
                return b""
            if isinstance(item, BaseException):
                self._ended, self.error = True, item
                raise item
            self._pending = memoryview(item)
        size = len(self._pending) if size is None or size < 0 else size
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return bytes(chunk)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
