"""`series_map` (alias `bcra_infomondia`): a wide workbook to long rows, one series per entry.

Each series has its own date column and value column (letters like `D`, or header names read
from `header_row`, the row above the first data row). Real central-bank workbooks put several
blocks side by side, each with its own `Date` column and different date ranges, with titles and
a second-language header between the header row and the data: rows before a block's first date
are skipped as preamble (a date is what normalize reads as a time: a date cell, ISO-like or d/m/y
text, a year (a number only in an annual series), or the format in normalize.formats.obs_time);
after it, a cell that is not a date is passed on (normalize quarantines it with its row); a row
whose value cell is empty holds no observation and is not emitted.
"""

import datetime as dt
import io
import re
from collections.abc import Sequence

import pandas as pd
from python_calamine import CalamineWorkbook

from ingest_assets.contract import SERIES_CODE, SeriesMapEntry
from ingest_assets.parsers.base import CELL_COLUMN, ROW_COLUMN, ParseContext
from ingest_assets.parsers.columns import column_index, column_letters
from ingest_assets.parsers.workbook_guard import reader_failed, refuse_hostile_workbook

Rows = Sequence[Sequence[object]]  # a sheet's cells, row by row
COLUMN_LETTERS = re.compile(r"^[A-Z]{1,3}$")
TEXT_DATE = re.compile(r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{4}-?\d{2})")


def _norm(text: object) -> str:
    return " ".join(str(text).split()).casefold()


def _is_empty(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


YEAR = re.compile(r"^\s*\d{4}\s*$")


ANNUAL = frozenset({"a", "y", "as", "ys", "annual", "yearly"})


def _looks_like_date(cell: object, fmt: str | None = None, annual: bool = False) -> bool:
    """A cell normalize reads as a time: a date, ISO-like or d/m/y text, a year (4 digits, as
    text; as a whole number only in an annual series, where it cannot be a value), or a cell of
    the format declared in normalize.formats.obs_time (`excel`: a serial day number)."""
    if isinstance(cell, dt.date):
        return True
    if isinstance(cell, bool) or cell is None:
        return False
    if isinstance(cell, int | float):
        if fmt == "excel":
            return True
        year = float(cell).is_integer() and 1000 <= cell <= 9999
        return year and (annual or fmt == "%Y")
    text = str(cell)
    if TEXT_DATE.match(text) or YEAR.match(text):
        return True
    if fmt and fmt != "excel":
        try:
            dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            return False
        return True
    return False


def _resolve(
    ref: str, header: Sequence[object], near: int | None, ctx: ParseContext, where: str
) -> int:
    """A column letter, or a header name; an ambiguous name takes the nearest match to the left of
    `near` (the value column), which is how side-by-side blocks share a `Date` header."""
    if COLUMN_LETTERS.match(ref):
        return column_index(ref)
    matches = [i for i, cell in enumerate(header) if _norm(cell) == _norm(ref)]
    if not matches:
        raise ctx.error(f"{where}: no column named {ref!r} in the header row")
    if len(matches) == 1:
        return matches[0]
    left = [i for i in matches if near is not None and i < near]
    if left:
        return max(left)
    cols = ", ".join(column_letters(i) for i in matches)
    raise ctx.error(f"{where}: {ref!r} matches columns {cols}; use a column letter")


def parse_series_map(data: bytes, ctx: ParseContext) -> pd.DataFrame:
    config = ctx.config
    refuse_hostile_workbook(data, ctx)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except BaseException as exc:  # a Rust panic in calamine is a BaseException
        if not reader_failed(exc):
            raise
        raise ctx.error(f"cannot read workbook: {exc}") from None
    sheets: dict[str, Rows] = {}
    frames = []
    for index, entry in enumerate(config.parse_config.series_map):
        where = f"parse_config.series_map[{index}] ({entry.internal_series_code})"
        sheet_name = entry.sheet if entry.sheet is not None else config.source.sheet
        name, rows = _sheet_rows(workbook, sheet_name, sheets, ctx, where)
        frames.append(_extract(name, rows, entry, ctx, where))
    frame = pd.concat(frames, ignore_index=True)
    return frame


def _sheet_rows(
    workbook: CalamineWorkbook,
    wanted: str | int | None,
    cache: dict[str, Rows],
    ctx: ParseContext,
    where: str,
) -> tuple[str, Rows]:
    """The sheet's name and rows (read once per workbook: `cache`), by name or index."""
    names: list[str] = workbook.sheet_names
    sheet = 0 if wanted is None else wanted
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise ctx.error(
                f"{where}: sheet index {sheet} out of range (workbook has {len(names)} sheets)"
            )
        sheet = names[sheet]
    if sheet not in names:
        raise ctx.error(
            f"{where}: no sheet {sheet!r} (sheets: {', '.join(repr(n) for n in names)})"
        )
    if sheet not in cache:
        try:
            cache[sheet] = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        except BaseException as exc:
            if not reader_failed(exc):
                raise
            raise ctx.error(f"{where}: cannot read sheet {sheet!r}: {exc}") from None
    return sheet, cache[sheet]


def _extract(
    sheet: str, rows: Rows, entry: SeriesMapEntry, ctx: ParseContext, where: str
) -> pd.DataFrame:
    header_row = entry.header_row or ctx.config.source.header_row
    header = rows[header_row - 1] if header_row <= len(rows) else []
    value_col = _resolve(entry.value_col, header, None, ctx, f"{where}.value_col")
    date_col = _resolve(entry.date_col, header, value_col, ctx, f"{where}.date_col")
    fmt = ctx.config.normalize.formats.get("obs_time")
    frequency = entry.frequency or ctx.config.frequency or ""
    annual = frequency.strip().casefold() in ANNUAL
    dates, values, row_numbers = [], [], []
    started = False
    for number in range(header_row + 1, len(rows) + 1):
        row = rows[number - 1]
        date = row[date_col] if date_col < len(row) else None
        value = row[value_col] if value_col < len(row) else None
        if not started:
            if not _looks_like_date(date, fmt, annual):
                continue
            started = True
        if _is_empty(value):
            continue
        dates.append(None if _is_empty(date) else date)
        values.append(value)
        row_numbers.append(number)
    if not started:
        raise ctx.error(
            f"{where}: no dates in column {column_letters(date_col)} below header row "
            f"{header_row} (dates, ISO or d/m/y text, years as text, or as numbers in an annual "
            "series; or cells of the format in normalize.formats.obs_time, `excel` for serial "
            "day numbers)"
        )
    cells = [
        f"'{sheet}'!{column_letters(date_col)}{n},{column_letters(value_col)}{n}"
        for n in row_numbers
    ]
    frame = pd.DataFrame(
        {
            ROW_COLUMN: row_numbers,
            CELL_COLUMN: cells,
            SERIES_CODE: entry.internal_series_code,
            "obs_time": pd.Series(dates, dtype=object).map(_date_text),
            "value": pd.Series(values, dtype=object).map(_value_text),
        }
    )
    frame["unit"] = entry.unit
    frame["frequency"] = entry.frequency
    return frame


def _date_text(cell: object) -> object:
    if isinstance(cell, dt.datetime | dt.date):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return cell if cell is None or isinstance(cell, str) else str(cell)


def _value_text(cell: object) -> object:
    return (
        cell
        if cell is None or isinstance(cell, str)
        else repr(cell)
        if isinstance(cell, float)
        else str(cell)
    )
