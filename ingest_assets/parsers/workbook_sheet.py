"""A workbook's sheet (.xlsx, .xls, .ods) as python-calamine reads it, one typed column per
header cell: what a column's cells hold decides its type.

- every non-empty cell a whole number: int64 (`40`, not `40.0`); numbers: float64;
- every one a boolean: bool; every one a date (a date cell, or a date and time at midnight):
  date; dates and times: timestamp (naive: normalize reads it in `normalize.timezone`); a
  time of day: time; a duration: duration;
- anything else (text, or kinds mixed): text, each cell as written or as its value reads
  (`2.5`, `40`, `True`, `2016-01-10T00:00:00`);
- an empty cell is null, whatever the column's type; so is a text cell that is a null
  marker. Text keeps its whitespace unless `strip`.
"""

import datetime as dt
import io
from dataclasses import dataclass
from typing import cast

import pyarrow as pa

from ingest_assets.parsers.base import ROW_COLUMN, ParseContext, ParseError
from ingest_assets.parsers.workbook_guard import reader_failed, refuse_hostile_workbook

INT64_LIMIT = 2**63


@dataclass(frozen=True)
class Sheet:
    name: str
    header: list[str]  # the header row's cells as text
    table: pa.Table  # `_row` and one column per header cell, by position ("0", "1", ...)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dt.date):  # (a datetime is a date)
        return "datetime"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, dt.timedelta):
        return "duration"
    return "text"


def _whole(value: object) -> object:
    """A whole number stored as a float (as a workbook stores every number) as an int."""
    if isinstance(value, float) and value.is_integer() and abs(value) < INT64_LIMIT:
        return int(value)
    return value


def _as_datetime(value: object) -> object:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


def _as_date(value: object) -> dt.date:
    """A date cell's date (a date and time at midnight is a date)."""
    return value.date() if isinstance(value, dt.datetime) else cast(dt.date, value)


def cell_text(value: object) -> str:
    """A cell as text: text as written, a whole number without `.0`, a date as ISO 8601."""
    value = _as_datetime(_whole(value))
    if isinstance(value, dt.datetime | dt.time):
        return value.isoformat()
    return str(value)


def header_text(value: object) -> str:
    """A header cell as the column's name (a date as `2023-03-12 00:00:00`, as pandas names
    it)."""
    value = _as_datetime(_whole(value))
    return "" if value is None else str(value)


def sheet_column(values: list[object]) -> pa.Array:
    """One column's cells (None where empty) as one typed array (see the module's notes)."""
    kinds = {_kind(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values), pa.string())
    if len(kinds) > 1 or kinds == {"text"}:
        return pa.array([None if v is None else cell_text(v) for v in values], pa.string())
    kind = kinds.pop()
    if kind == "number":
        whole = [_whole(v) for v in values]
        if all(v is None or isinstance(v, int) for v in whole):
            return pa.array(whole, pa.int64())
        return pa.array(values, pa.float64())
    if kind == "datetime":
        if all(v is None or cast(dt.datetime, _as_datetime(v)).time() == dt.time() for v in values):
            return pa.array([None if v is None else _as_date(v) for v in values], pa.date32())
        return pa.array([_as_datetime(v) for v in values], pa.timestamp("us"))
    return pa.array(values, {"bool": pa.bool_(), "time": pa.time64("us")}.get(kind))


def _sheet_name(names: list[str], ctx: ParseContext) -> str:
    wanted = ctx.config.source.sheet
    if isinstance(wanted, str):
        if wanted not in names:
            raise ctx.error(
                f"source.sheet {wanted!r} not found; the workbook's sheets are "
                f"{', '.join(repr(n) for n in names)}"
            )
        return wanted
    index = wanted or 0
    if not 0 <= index < len(names):
        raise ctx.error(
            f"source.sheet {index} not found: the workbook has {len(names)} sheet(s) "
            f"({', '.join(repr(n) for n in names)}), counted from 0"
        )
    return names[index]


def _cells(data: bytes, ctx: ParseContext) -> tuple[str, list[list[object]]]:
    """The sheet's name and its rows of cells from A1 ('' where empty)."""
    from python_calamine import CalamineWorkbook

    refuse_hostile_workbook(data, ctx)
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        name = _sheet_name(list(book.sheet_names), ctx)
        grid = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        rows = cast(list[list[object]], grid)
    except ParseError:
        raise
    except BaseException as exc:  # a Rust panic in calamine is a BaseException
        if not reader_failed(exc):
            raise
        raise ctx.error(f"cannot read workbook: {type(exc).__name__}: {exc}") from None
    return name, rows


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_sheet(
    data: bytes, ctx: ParseContext, null_markers: list[str], strip: bool, skip_footer: int
) -> Sheet:
    """The sheet `source.sheet`, its header at `source.header_row`, a row per row below but
    the last `skip_footer` (blank ones counted) and blank rows: the columns are typed by the
    rows that are left, so a footnote does not turn a column of numbers into text."""
    name, rows = _cells(data, ctx)
    header_row = ctx.config.source.header_row
    if len(rows) < header_row:
        return Sheet(name, [], pa.table({ROW_COLUMN: pa.array([], pa.int64())}))
    width = max(len(row) for row in rows)
    header = [header_text(v) for v in rows[header_row - 1]]
    header += [""] * (width - len(header))
    markers = set(null_markers)

    def cell(value: object) -> object:
        if isinstance(value, str):
            value = value.strip() if strip else value
            return None if value == "" or value in markers else value
        return value

    body = rows[header_row : max(len(rows) - skip_footer, header_row)]
    kept = [i for i, row in enumerate(body) if not all(_blank(cell(v)) for v in row)]
    columns = {ROW_COLUMN: pa.array([header_row + 1 + i for i in kept], pa.int64())}
    for index in range(width):
        values = [cell(body[i][index]) if index < len(body[i]) else None for i in kept]
        columns[str(index)] = sheet_column(values)
    return Sheet(name, header, pa.table(columns))
