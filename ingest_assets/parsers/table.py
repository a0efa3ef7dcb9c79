"""`table`: CSV, XLSX and legacy XLS into rows, one column per header cell."""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pandas._libs.parsers import STR_NA_VALUES  # type: ignore[import-not-found]  # (no stub)

from ingest_assets.parsers.base import (
    CELLS_META,
    ROW_COLUMN,
    CellMap,
    ParseContext,
    encode_cell_map,
    to_arrow,
)
from ingest_assets.parsers.columns import column_letters
from ingest_assets.parsers.workbook_guard import reader_failed, refuse_hostile_workbook
from ingest_assets.rows.arrays import row_numbers

MANGLED = re.compile(r"^(.*)\.(\d+)$")


@dataclass(frozen=True)
class TableOptions:
    """`parse.options` of the table parser (the contract checks them when `parse.plugin` is
    `table`; a plugin that calls `parse_table` passes them as they are)."""

    na_values: str | list[str] | None = None  # null markers beside pandas' own
    keep_default_na: bool = True  # pandas' own null markers (NA, n/a, NULL, ...)
    skip_footer: int = 0  # rows at the end of the file that are not data
    allow_duplicate_headers: bool = False  # keep a repeated `x` as x, x.1, ...

    @classmethod
    def of(cls, ctx: ParseContext) -> "TableOptions":
        options = ctx.options
        return cls(
            na_values=options.get("na_values"),
            keep_default_na=options.get("keep_default_na", True),
            skip_footer=int(options.get("skip_footer", 0)),
            allow_duplicate_headers=options.get("allow_duplicate_headers", False),
        )


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
    frame.insert(0, ROW_COLUMN, range(first_row, first_row + len(frame)))
    if skip_footer:  # the file's last rows, blank ones included (as they are counted in it)
        frame = frame.iloc[: max(len(frame) - skip_footer, 0)]
    data = [c for c in frame.columns if c != ROW_COLUMN]
    blank = pd.concat([_is_blank(frame[c]) for c in data], axis=1).all(axis=1)
    return frame[~blank.to_numpy()]


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


def _read_csv(data: bytes, ctx: ParseContext, options: TableOptions) -> pd.DataFrame:
    source = ctx.config.source
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=source.delimiter,
            encoding=source.encoding,
            header=source.header_row - 1,
            dtype=str,
            na_values=options.na_values,
            keep_default_na=options.keep_default_na,
            skip_blank_lines=False,
            quoting=csv.QUOTE_MINIMAL,
        )
    except UnicodeDecodeError:
        raise _decode_error(data, source.encoding, ctx) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ctx.error(f"CSV is malformed: {str(exc).strip()}") from None
    return frame


def _read_excel(data: bytes, ctx: ParseContext, options: TableOptions) -> pd.DataFrame:
    source = ctx.config.source
    sheet = 0 if source.sheet is None else source.sheet
    refuse_hostile_workbook(data, ctx)
    try:
        return pd.read_excel(
            io.BytesIO(data),
            engine="calamine",
            sheet_name=sheet,
            header=source.header_row - 1,
            na_values=options.na_values,
        )
    except ValueError as exc:
        raise ctx.error(f"source.sheet {sheet!r}: {exc}") from None
    except BaseException as exc:  # a Rust panic in calamine is a BaseException
        if not reader_failed(exc):
            raise
        raise ctx.error(f"cannot read workbook: {type(exc).__name__}: {exc}") from None


def _refuse_duplicate_headers(names: list[str], ctx: ParseContext) -> None:
    """pandas renames a repeated header `x` to `x.1`, `x.2`: refuse, naming the columns, rather
    than publish columns the source never had."""
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        match = MANGLED.match(name)
        base = match.group(1) if match and match.group(1) in names else name
        positions.setdefault(base.strip(), []).append(index)
    repeated = {name: cols for name, cols in positions.items() if len(cols) > 1}
    if repeated:
        listed = "; ".join(
            f"{name!r} in columns {', '.join(column_letters(i) for i in cols)}"
            for name, cols in list(repeated.items())[:5]
        )
        raise ctx.error(
            f"header row {ctx.config.source.header_row} repeats column names: {listed}. Choose another "
            "source.header_row, or set parse.options.allow_duplicate_headers: true to keep them as "
            "name, name.1, ..."
        )


# Arrow's CSV reader reads up to 32 blocks ahead of its consumer, so its memory is 32 blocks:
# read in small blocks and hand on batches of about BATCH_BYTES.
BLOCK_BYTES = 1 << 20
BATCH_BYTES = 16 << 20


def _null_markers(options: TableOptions) -> list[str]:
    """The markers pandas reads as null (its defaults unless keep_default_na: false, plus
    parse.options.na_values): the streaming reader must agree with the general one."""
    extra = options.na_values or []
    listed = [extra] if isinstance(extra, str) else list(extra)
    defaults: list[str] = sorted(STR_NA_VALUES) if options.keep_default_na else []
    return [str(v) for v in defaults + listed]


def _header_names(names: list[str]) -> list[str]:
    """Header cells named as pandas names them: stripped, `Unnamed: i` for an empty one, and
    `x.1`, `x.2` for a repeated `x` (refused later unless allow_duplicate_headers)."""
    out: list[str] = []
    for index, name in enumerate(names):
        name = name.strip() or f"Unnamed: {index}"
        base, count = name, 0
        while name in out:
            count += 1
            name = f"{base}.{count}"
        out.append(name)
    return out


def _blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_trim_whitespace(column), ""))


def _csv_reader(
    path: Path,
    ctx: ParseContext,
    options: TableOptions,
    names: list[str] | None,
    block: int = BLOCK_BYTES,
) -> pacsv.CSVStreamingReader:
    source = ctx.config.source
    read = pacsv.ReadOptions(
        encoding=source.encoding,
        skip_rows=source.header_row - 1,
        block_size=block,
        column_names=names,
        skip_rows_after_names=1 if names else 0,
        use_threads=True,
    )
    parse = pacsv.ParseOptions(
        delimiter=source.delimiter, newlines_in_values=True, ignore_empty_lines=False
    )
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names or []},
        null_values=_null_markers(options),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    return pacsv.open_csv(
        str(path), read_options=read, parse_options=parse, convert_options=convert
    )


def stream_csv(path: Path, ctx: ParseContext) -> Iterator[pa.Table]:
    """`_stream_blocks` gathered into batches of about BATCH_BYTES."""
    gathered: list[pa.Table] = []
    size = 0
    for table in _stream_blocks(path, ctx):
        gathered.append(table)
        size += table.nbytes
        if size >= BATCH_BYTES:
            yield pa.concat_tables(gathered)
            gathered, size = [], 0
    if gathered:
        yield pa.concat_tables(gathered)


def _stream_blocks(path: Path, ctx: ParseContext) -> Iterator[pa.Table]:
    """A CSV in batches of rows, each with `_row`, the same rows and text as `parse_table`
    (pandas) gives, in bounded memory. Raises pa.ArrowInvalid on anything Arrow reads
    differently from pandas (a row with a missing or extra field, bytes that are not the
    declared encoding): the caller then falls back to `parse_table`."""
    options = TableOptions.of(ctx)
    try:
        with _csv_reader(path, ctx, options, None, block=1 << 16) as probe:  # the header only
            header = list(probe.schema.names)
    except UnicodeDecodeError:  # a header that is not `encoding` (Arrow reads it as it opens)
        with path.open("rb") as handle:
            raise _decode_error(handle.read(1 << 16), ctx.config.source.encoding, ctx) from None
    names = _header_names(header)
    if not options.allow_duplicate_headers:
        _refuse_duplicate_headers(names, ctx)
    skip_footer = options.skip_footer
    first_row = ctx.config.source.header_row + 1
    dropped: list[str] | None = None  # empty unnamed columns (trailing separators)
    pending: pa.Table | None = None  # the last rows held back for skip_footer
    yielded = False
    with _csv_reader(path, ctx, options, names) as reader:
        for batch in reader:
            table = pa.Table.from_batches([batch])
            table = table.add_column(0, ROW_COLUMN, row_numbers(first_row, table.num_rows))
            first_row += table.num_rows
            unnamed = [n for n, h in zip(names, header, strict=True) if not h.strip()]
            if dropped is None:
                dropped = [n for n in unnamed if pc.all(_blank(table[n])).as_py() in (True, None)]
            for name in dropped:
                if not pc.all(_blank(table[name])).as_py():
                    raise pa.ArrowInvalid(
                        f"unnamed column {name!r} holds values after its first batch"
                    )
            table = table.drop_columns(dropped)
            if pending is not None:  # the footer is the file's last rows, blank ones included
                table = pa.concat_tables([pending, table])
            cut = max(table.num_rows - skip_footer, 0)
            table, pending = table.slice(0, cut), table.slice(cut)
            data = [c for c in table.column_names if c != ROW_COLUMN]
            blank = _blank(table[data[0]]) if data else None
            for name in data[1:]:
                if not pc.any(blank).as_py():  # a value in every row already: none is blank
                    break
                blank = pc.and_kleene(blank, _blank(table[name]))
            if blank is not None and pc.any(blank).as_py():
                table = table.filter(pc.invert(blank))
            if table.num_rows:
                yielded = True
                yield table
    if not yielded:  # no data rows (blank lines, or all of them footer): empty, with its columns
        gone = (
            dropped
            if dropped is not None
            else [n for n, h in zip(names, header, strict=True) if not h.strip()]
        )
        kept = [n for n in names if n not in gone]
        yield pa.table(
            {ROW_COLUMN: pa.array([], pa.int64()), **{n: pa.array([], pa.string()) for n in kept}}
        )


def parse_table(data: bytes, ctx: ParseContext) -> pa.Table:
    """`parse.options`: `na_values` (extra null markers), `keep_default_na`, `skip_footer` (rows),
    `allow_duplicate_headers`."""
    options = TableOptions.of(ctx)
    is_csv = ctx.config.source.format == "csv"
    frame = _read_csv(data, ctx, options) if is_csv else _read_excel(data, ctx, options)
    if frame.shape[1] == 0:
        raise ctx.error(f"no columns found at header_row {ctx.config.source.header_row}")
    if not options.allow_duplicate_headers:
        _refuse_duplicate_headers([str(c) for c in frame.columns], ctx)
    letters = {str(c).strip(): column_letters(i) for i, c in enumerate(frame.columns)}
    table = to_arrow(
        _tidy(frame, first_row=ctx.config.source.header_row + 1, skip_footer=options.skip_footer)
    )
    if is_csv:
        return table
    sheet = (
        ctx.config.source.sheet
        if isinstance(ctx.config.source.sheet, str)
        else _sheet_name(data, ctx)
    )
    columns = {c: letters[c] for c in table.column_names if c in letters}
    cells: CellMap = {"sheet": sheet, "columns": columns}
    return table.replace_schema_metadata({CELLS_META: encode_cell_map(cells)})


def _sheet_name(data: bytes, ctx: ParseContext) -> str:
    from python_calamine import CalamineWorkbook

    names = CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names
    index = ctx.config.source.sheet or 0
    return names[index] if isinstance(index, int) and index < len(names) else str(index)
