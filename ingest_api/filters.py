"""The rows' filters (`series`, `from`, `to`, `q`) and the columns asked for, checked against
a snapshot and applied to a month's rows."""

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ingest_api.cursor import digest
from ingest_api.errors import BadParameter
from ingest_api.snapshot import UNKNOWN, Month, Snapshot
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH

MAX_Q = 200  # characters of a text search
MAX_SERIES = 1000  # series in one request


def parse_time(name: str, text: str | None) -> dt.date | dt.datetime | None:
    """An ISO 8601 date (`2024-01-31`) or date and time (`2024-01-31T12:00:00Z`; naive: UTC)."""
    if text is None or text == "":
        return None
    try:
        if len(text) <= 10:
            return dt.date.fromisoformat(text)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadParameter(
            f"{name}={text[:40]!r}: expected an ISO 8601 date (2024-01-31) or date and time "
            "(2024-01-31T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _start_of(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Filters:
    series: tuple[str, ...] = ()
    start: dt.date | dt.datetime | None = None  # `from`, inclusive
    end: dt.date | dt.datetime | None = None  # `to`, inclusive (a date: the whole day)
    q: str | None = None

    @classmethod
    def parse(
        cls, series: list[str] | None, start: str | None, end: str | None, q: str | None
    ) -> "Filters":
        wanted = tuple(sorted(set(series or [])))
        if len(wanted) > MAX_SERIES:
            raise BadParameter(f"series: at most {MAX_SERIES} in one request")
        if q is not None and len(q) > MAX_Q:
            raise BadParameter(f"q: at most {MAX_Q} characters")
        filters = cls(wanted, parse_time("from", start), parse_time("to", end), q or None)
        if filters.start and filters.end and filters.lower() > filters.upper_exclusive():
            raise BadParameter(f"from={start} is after to={end}")
        return filters

    def lower(self) -> dt.datetime:
        return _start_of(self.start) if self.start else dt.datetime.min.replace(tzinfo=dt.UTC)

    def upper_exclusive(self) -> dt.datetime:
        """The first instant after `to`: a date covers its whole day."""
        if self.end is None:
            return dt.datetime.max.replace(tzinfo=dt.UTC)
        if isinstance(self.end, dt.datetime):
            return self.end.astimezone(dt.UTC) + dt.timedelta(microseconds=1)
        return _start_of(self.end) + dt.timedelta(days=1)

    def digest(self) -> str:
        return digest(list(self.series), self.start, self.end, self.q)

    def months(self, snapshot: Snapshot) -> list[str]:
        """The snapshot's months that may hold rows within `from` and `to`."""
        if self.start is None and self.end is None:
            return snapshot.months
        low = self.lower().strftime("%Y-%m") if self.start else ""
        high = (self.upper_exclusive() - dt.timedelta(microseconds=1)).strftime("%Y-%m")
        return [m for m in snapshot.months if m != UNKNOWN and low <= m <= high]

    def apply(self, snapshot: Snapshot, month: Month) -> pa.Table:
        rows = month.rows
        if self.series:
            rows = self._series(snapshot, month)
        if (self.start or self.end) and rows.num_rows:
            rows = rows.filter(self._time_mask(rows[snapshot.time_column]))
        if self.q and rows.num_rows:
            rows = rows.filter(self._text_mask(rows))
        return rows

    def _series(self, snapshot: Snapshot, month: Month) -> pa.Table:
        if snapshot.series_column is None:  # one series, named after the dataset
            if snapshot.dataset_id in self.series:
                return month.rows
            return month.rows.slice(0, 0)
        column = month.rows[snapshot.series_column]
        return month.rows.filter(pc.is_in(column, value_set=pa.array(self.series, column.type)))

    def _time_mask(self, column: pa.ChunkedArray) -> pa.ChunkedArray:
        kind = column.type
        if pa.types.is_timestamp(kind):
            zone = dt.UTC if kind.tz else None

            def bound(moment: dt.datetime) -> pa.Scalar:
                clipped = min(max(moment, dt.datetime(1, 1, 2, tzinfo=dt.UTC)), _LAST)
                return pa.scalar(clipped.astimezone(dt.UTC).replace(tzinfo=zone), kind)

            low, high = bound(self.lower()), bound(self.upper_exclusive())
            return pc.and_(pc.greater_equal(column, low), pc.less(column, high))
        if pa.types.is_date(kind):
            low_day = self.lower().date() if self.start else dt.date.min
            high = self.upper_exclusive()
            high_day = (high - dt.timedelta(microseconds=1)).date() if self.end else dt.date.max
            return pc.and_(
                pc.greater_equal(column, pa.scalar(low_day, kind)),
                pc.less_equal(column, pa.scalar(high_day, kind)),
            )
        raise BadParameter(f"from/to: the time column {column!r} is not a date or timestamp")

    def _text_mask(self, rows: pa.Table) -> pa.ChunkedArray:
        mask = None
        for field in rows.schema:
            if field.name in (KEY_HASH, ROW_HASH) or not (
                pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
            ):
                continue
            found = pc.fill_null(
                pc.match_substring(rows[field.name], self.q, ignore_case=True), False
            )
            mask = found if mask is None else pc.or_(mask, found)
        if mask is None:
            return pa.chunked_array([pa.array([False] * rows.num_rows)])
        return mask


_LAST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def select_columns(snapshot: Snapshot, columns: list[str] | None) -> list[str]:
    """The columns asked for (`columns=a,b` or repeated), in the order given; every column
    when none is named. An unknown column is a 422 naming the known ones."""
    names = snapshot.schema.names
    if not columns:
        return list(names)
    wanted = [name for item in columns for name in item.split(",") if name]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise BadParameter(
            f"columns: no column {unknown[0][:80]!r} in dataset {snapshot.dataset_id} "
            f"(its columns: {', '.join(names)})"
        )
    return list(dict.fromkeys(wanted))
