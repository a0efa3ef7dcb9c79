"""`table`: CSV, XLSX and legacy XLS into rows, one column per header cell."""

import csv
import io

import pandas as pd

from ingest_assets.parsers.base import ROW_COLUMN, ParseContext


def _is_blank(column: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(column) or column.dtype == object:
        return column.isna() | column.astype(str).str.strip().eq("")
    return column.isna()


def _tidy(frame: pd.DataFrame, first_row: int, skip_footer: int) -> pd.DataFrame:
    """Strip header whitespace, drop unnamed empty columns (trailing separators) and blank rows.

    `first_row` is the 1-based source row of the first data row, kept in `_row`.
    """
    frame.columns = [str(c).strip() for c in frame.columns]
    empty_unnamed = [
        c for c in frame.columns if c.startswith("Unnamed:") and _is_blank(frame[c]).all()
    ]
    frame = frame.drop(columns=empty_unnamed)
    blank = pd.concat([_is_blank(frame[c]) for c in frame.columns], axis=1).all(axis=1)
    frame.insert(0, ROW_COLUMN, range(first_row, first_row + len(frame)))
    frame = frame[~blank.to_numpy()]
    return frame.iloc[: len(frame) - skip_footer] if skip_footer else frame


def _decode_error(data: bytes, encoding: str, ctx: ParseContext) -> Exception:
    """Where the bytes stop being `encoding` (pandas reports offsets within its buffer)."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 4]
        return ctx.error(
            f"cannot decode as source.encoding {encoding!r}: byte {exc.start} (line {line}) is {bad!r}; "
            "set source.encoding (utf-8, utf-8-sig, latin-1, ...)"
        )
    return ctx.error(f"cannot decode as source.encoding {encoding!r}; set source.encoding")


def _read_csv(data: bytes, ctx: ParseContext) -> pd.DataFrame:
    source = ctx.config.source
    options = ctx.options
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=source.delimiter,
            encoding=source.encoding,
            header=source.header_row - 1,
            dtype=str,
            na_values=options.get("na_values"),
            keep_default_na=options.get("keep_default_na", True),
            skip_blank_lines=False,
            quoting=csv.QUOTE_MINIMAL,
        )
    except UnicodeDecodeError:
        raise _decode_error(data, source.encoding, ctx) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ctx.error(f"CSV is malformed: {str(exc).strip()}") from None
    return frame


def _read_excel(data: bytes, ctx: ParseContext) -> pd.DataFrame:
    source = ctx.config.source
    sheet = 0 if source.sheet is None else source.sheet
    try:
        return pd.read_excel(
            io.BytesIO(data),
            engine="calamine",
            sheet_name=sheet,
            header=source.header_row - 1,
            na_values=ctx.options.get("na_values"),
        )
    except ValueError as exc:
        raise ctx.error(f"source.sheet {sheet!r}: {exc}") from None
    except Exception as exc:
        raise ctx.error(f"cannot read workbook: {type(exc).__name__}: {exc}") from None


def parse_table(data: bytes, ctx: ParseContext) -> pd.DataFrame:
    """`parse.options`: `na_values` (extra null markers), `keep_default_na`, `skip_footer` (rows)."""
    is_csv = ctx.config.source.format == "csv"
    frame = _read_csv(data, ctx) if is_csv else _read_excel(data, ctx)
    skip_footer = int(ctx.options.get("skip_footer", 0))
    return _tidy(frame, first_row=ctx.config.source.header_row + 1, skip_footer=skip_footer)
