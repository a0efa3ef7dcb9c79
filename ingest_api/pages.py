"""Pages of a snapshot's rows, in scan order (month, then time, key_hash), and the
cursors between them.

A position is (month, rows of that month already returned, under the request's filters). The
rows of a month as of a version never change, so a position names the same row on every
call: a scan resumed from a cursor returns each row of its pinned version exactly once,
whatever was published meanwhile. The cursor also carries a prefix of the last row's key
hash, checked on resume (a mismatch would mean the store changed under the version: a 409)."""

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from ingest_api.cursor import Cursor
from ingest_api.errors import BadParameter, Conflict
from ingest_api.filters import Filters
from ingest_api.snapshot import Snapshot
from ingest_assets.rows.hashing import KEY_HASH

LAST_KEY_BYTES = 8
AHEAD = 2  # months read ahead by a bulk read


@dataclass(frozen=True)
class Position:
    month: int  # index into the filtered months
    offset: int


def _last_key(rows: pa.Table, index: int) -> str:
    value = rows[KEY_HASH][index].as_py()
    return value[:LAST_KEY_BYTES].hex() if isinstance(value, bytes) else ""


class Scan:
    """One request's walk over a snapshot under its filters."""

    def __init__(self, snapshot: Snapshot, filters: Filters) -> None:
        self.snapshot, self.filters = snapshot, filters
        self.months = filters.months(snapshot)
        self.fingerprint = filters.digest()

    def rows_of(self, index: int) -> pa.Table:
        return self.filters.apply(self.snapshot, self.snapshot.month(self.months[index]))

    def start(self, cursor: Cursor | None) -> Position:
        if cursor is None:
            return Position(0, 0)
        snapshot = self.snapshot
        if cursor.dataset != snapshot.dataset_id or cursor.filters != self.fingerprint:
            raise BadParameter(
                "cursor: made for another dataset or other filters (series, from, to, q): "
                "repeat the filters of the request that returned it"
            )
        if cursor.part not in self.months:
            raise BadParameter("cursor: names a month this scan does not visit")
        position = Position(self.months.index(cursor.part), cursor.offset)
        if cursor.offset:
            rows = self.rows_of(position.month)
            if cursor.offset > rows.num_rows or (
                cursor.last and _last_key(rows, cursor.offset - 1) != cursor.last
            ):
                raise Conflict(
                    f"dataset {snapshot.dataset_id}: the rows of version {snapshot.version} "
                    f"in {cursor.part} are not those the cursor was made on (the store "
                    "changed under a published version: run `ingest verify`)"
                )
        return position

    def cursor(self, position: Position, last: str) -> Cursor:
        return Cursor(
            dataset=self.snapshot.dataset_id,
            version=self.snapshot.version,
            filters=self.fingerprint,
            part=self.months[position.month],
            offset=position.offset,
            last=last,
        )

    def page(self, position: Position, size: int) -> tuple[list[pa.Table], Cursor | None]:
        """Up to `size` rows from `position`, and the cursor of the next row (None: no row
        is left; months are read ahead until one is found)."""
        pieces: list[pa.Table] = []
        taken, last = 0, ""
        month, offset = position.month, position.offset
        rows, rows_month = None, -1
        while month < len(self.months):
            if rows_month != month:
                rows, rows_month = self.rows_of(month), month
            assert rows is not None
            if offset < rows.num_rows:
                if taken == size:
                    return pieces, self.cursor(Position(month, offset), last)
                count = min(size - taken, rows.num_rows - offset)
                pieces.append(rows.slice(offset, count))
                taken += count
                offset += count
                last = _last_key(rows, offset - 1)
                continue
            month, offset = month + 1, 0
        return pieces, None

    def stream(
        self,
        position: Position,
        prepare: Callable[[pa.Table], pa.Table],
        chunk_rows: int = 65_536,
    ) -> Iterator[pa.Table]:
        """Every row from `position` on, a month (cut in chunks) at a time, each month made
        ready to send by `prepare`. The next AHEAD months are read, replayed and prepared on
        threads while this one is sent (Arrow works outside Python's lock)."""

        def ready(month: int) -> pa.Table:
            rows = self.rows_of(month)
            return prepare(rows.slice(position.offset) if month == position.month else rows)

        with ThreadPoolExecutor(max_workers=AHEAD) as pool:
            coming = deque(
                pool.submit(ready, month)
                for month in range(position.month, min(position.month + AHEAD, len(self.months)))
            )
            following = position.month + len(coming)
            while coming:
                rows = coming.popleft().result()
                if following < len(self.months):
                    coming.append(pool.submit(ready, following))
                    following += 1
                for start in range(0, rows.num_rows, chunk_rows):
                    yield rows.slice(start, chunk_rows)
