"""`table`: CSV, XLSX, XLS and ODS into rows, one column per header cell, values as written.

A CSV is read by Arrow (`csv_reading`), in batches when streamed (`stream_csv`) or whole
(`parse_table`): the same reader, so both give the same rows. A workbook's sheet is read with
python-calamine (`workbook_sheet`). Both then go through `tidy`: header cells left empty with
nothing below are dropped, and so are `skip_footer` rows and blank rows.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pandas._libs.parsers import STR_NA_VALUES  # type: ignore[import-not-found]  # (no stub)

from ingest_assets.parsers.base import (
    CELLS_META,
    REJECT_COLUMN,
    ROW_COLUMN,
    CellMap,
    ParseContext,
    encode_cell_map,
    required_columns,
)
from ingest_assets.parsers.columns import column_letters
from ingest_assets.parsers.csv_reading import CsvRows, CsvSettings, read_header
from ingest_assets.parsers.encoding import Input, decode_failure, resolve_encoding

# Arrow's CSV reader reads a block or two ahead of its consumer: read in small blocks and
# hand on batches of about BATCH_BYTES. Read whole (after the streamed read gave up), a CSV
# is parsed in larger blocks.
BLOCK_BYTES = 1 << 20
BATCH_BYTES = 16 << 20
WHOLE_BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class TableOptions:
    """`parse.options` of the table parser (the contract checks them when `parse.plugin` is
    `table`; a plugin that calls `parse_table` passes them as they are)."""

    na_values: str | list[str] | None = None  # null markers beside pandas' own
    keep_default_na: bool = True  # pandas' own null markers (NA, n/a, NULL, ...)
    skip_footer: int = 0  # rows at the end of the file that are not data
    allow_duplicate_headers: bool = False  # keep a repeated `x` as x, x.1, ...
    strip: bool = False  # strip leading and trailing whitespace from every text value

    @classmethod
    def of(cls, ctx: ParseContext) -> "TableOptions":
        options = ctx.options
        return cls(
            na_values=options.get("na_values"),
            keep_default_na=options.get("keep_default_na", True),
            skip_footer=int(options.get("skip_footer", 0)),
            allow_duplicate_headers=options.get("allow_duplicate_headers", False),
            strip=bool(options.get("strip", False)),
        )

    def null_markers(self, defaults: bool | None = None) -> list[str]:
        """The texts read as null: pandas' defaults (unless keep_default_na: false; `defaults`
        overrides it) and `na_values`."""
        extra = self.na_values or []
        listed = [extra] if isinstance(extra, str) else list(extra)
        keep = self.keep_default_na if defaults is None else defaults
        return [str(v) for v in (sorted(STR_NA_VALUES) if keep else []) + listed]


def header_names(cells: list[str]) -> list[str]:
    """Column names from the header cells, as written: `Unnamed: i` for an empty (or blank)
    cell, and `x.1`, `x.2` for a repeated `x` (refused unless allow_duplicate_headers)."""
    out: list[str] = []
    for index, cell in enumerate(cells):
        name = cell if cell.strip() else f"Unnamed: {index}"
        base, count = name, 0
        while name in out:
            count += 1
            name = f"{base}.{count}"
        out.append(name)
    return out


def check_header(cells: list[str], names: list[str], ctx: ParseContext) -> None:
    """Refuse a header with no column, a repeated name (unless allowed), or a name the
    contract writes without the whitespace the header has (or with whitespace it lacks)."""
    if not names:
        raise ctx.error(f"no columns found at header_row {ctx.config.source.header_row}")
    if not TableOptions.of(ctx).allow_duplicate_headers:
        _refuse_duplicate_headers(cells, ctx)
    _refuse_spaced_names(names, ctx)


def _letters(columns: list[int]) -> str:
    """`A, C, D`; past ten, the first ten and how many in all."""
    letters = [column_letters(i) for i in columns]
    more = f", ... ({len(letters)} in all)" if len(letters) > 10 else ""
    return ", ".join(letters[:10]) + more


def _refuse_duplicate_headers(cells: list[str], ctx: ParseContext) -> None:
    """A repeated header `x` would become `x.1`, `x.2`: refuse, naming the columns, rather
    than publish columns the source never had."""
    positions: dict[str, list[int]] = {}
    for index, cell in enumerate(cells):
        if cell.strip():
            positions.setdefault(cell, []).append(index)
    repeated = {name: cols for name, cols in positions.items() if len(cols) > 1}
    if repeated:
        listed = "; ".join(
            f"{name!r} in columns {_letters(cols)}" for name, cols in list(repeated.items())[:5]
        )
        raise ctx.error(
            f"header row {ctx.config.source.header_row} repeats column names: {listed}. Choose another "
            "source.header_row, or set parse.options.allow_duplicate_headers: true to keep them as "
            "name, name.1, ..."
        )


def _refuse_spaced_names(names: list[str], ctx: ParseContext) -> None:
    """Header names keep their whitespace: a column the contract names without it (or with
    whitespace the header lacks) is named as the header writes it, with repr."""
    renamed = ctx.config.parse_config.columns
    source_name = {new: old for old, new in renamed.items()}
    wanted = {old: "parse_config.columns" for old in renamed}
    if ctx.config.normalize.builtin:
        for name, why in required_columns(ctx.config).items():
            wanted.setdefault(source_name.get(name, name), why)
    present = set(names)
    for name, why in wanted.items():
        if name in present:
            continue
        close = [n for n in names if n.split() == name.split()]
        if close:
            raise ctx.error(
                f"{why} names the column {name!r}, but the header writes it {close[0]!r}: "
                "header names are kept as written, spaces included. Write the name as the "
                "header has it, or map it with parse_config.columns"
            )


def _blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Null, or text of whitespace only."""
    if not pa.types.is_string(column.type):
        return pc.is_null(column)
    return pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_trim_whitespace(column), ""))


def _blank_rows(table: pa.Table) -> pa.ChunkedArray | None:
    """Rows with every data column blank (a rejected row is never blank: it carries why)."""
    data = [c for c in table.column_names if c not in (ROW_COLUMN, REJECT_COLUMN)]
    blank = _blank(table[data[0]]) if data else None
    for name in data[1:]:
        if not pc.any(blank).as_py():  # a value in every row already: none is blank
            break
        blank = pc.and_kleene(blank, _blank(table[name]))
    if blank is not None and REJECT_COLUMN in table.column_names:
        blank = pc.and_kleene(blank, pc.is_null(table[REJECT_COLUMN]))
    return blank


def _refuse_unnamed_columns(kept: list[str], ctx: ParseContext) -> None:
    """Two or more header cells left empty above values repeat one name, the empty one: a
    header over two rows, most often. Refused as repeated names are (unless allowed)."""
    if len(kept) < 2 or TableOptions.of(ctx).allow_duplicate_headers:
        return
    shown = _letters([int(name.removeprefix("Unnamed: ")) for name in kept])
    raise ctx.error(
        f"header row {ctx.config.source.header_row} repeats a name, the empty one: it names "
        f"no column {shown}, which hold values (is the header over two rows?). Choose another "
        "source.header_row, or set parse.options.allow_duplicate_headers: true to read them as "
        "Unnamed: i"
    )


def tidy(
    batches: Iterable[pa.Table],
    unnamed: list[str],
    skip_footer: int,
    schema: pa.Schema,
    ctx: ParseContext,
) -> Iterator[pa.Table]:
    """The batches less the `unnamed` columns (empty header cells) that hold nothing, the
    last `skip_footer` rows (the file's last rows, blank ones included, as they are counted
    in it) and blank rows. Whether an unnamed column holds nothing is decided on the first
    batch: a later one that holds a value raises pa.ArrowInvalid (read the file whole then,
    as one batch). Two unnamed columns or more holding values are refused. An empty result
    is one empty table with `schema`, less those columns."""
    dropped: list[str] | None = None
    pending: pa.Table | None = None  # the last rows held back for skip_footer
    yielded = False
    for table in batches:
        if dropped is None:
            dropped = [n for n in unnamed if pc.all(_blank(table[n])).as_py() in (True, None)]
            _refuse_unnamed_columns([n for n in unnamed if n not in dropped], ctx)
        for name in dropped:
            if not pc.all(_blank(table[name])).as_py():
                raise pa.ArrowInvalid(f"unnamed column {name!r} holds values after its first batch")
        table = table.drop_columns(dropped)
        if pending is not None:
            table = pa.concat_tables([pending, table])
        cut = max(table.num_rows - skip_footer, 0)
        table, pending = table.slice(0, cut), table.slice(cut)
        blank = _blank_rows(table)
        if blank is not None and pc.any(blank).as_py():
            table = table.filter(pc.invert(blank))
        if table.num_rows:
            yielded = True
            yield table
    if not yielded:  # no data rows (blank lines, or all of them footer): empty, with its columns
        gone = set(unnamed if dropped is None else dropped)
        yield schema.empty_table().drop_columns([n for n in schema.names if n in gone])


def _csv_batches(source: Input, ctx: ParseContext, block: int, whole: bool) -> Iterator[pa.Table]:
    """The CSV's rows in batches (see `csv_reading`), tidied; whole: as one batch."""
    options = TableOptions.of(ctx)
    encoding = resolve_encoding(source, ctx)
    settings = CsvSettings(encoding, block, options.null_markers(), options.strip)
    try:
        cells = read_header(source, ctx, settings)
        names = header_names(cells)
        check_header(cells, names, ctx)
        columns = [ROW_COLUMN, *names, REJECT_COLUMN]
        schema = pa.schema(
            [
                (ROW_COLUMN, pa.int64()),
                *((n, pa.string()) for n in names),
                (REJECT_COLUMN, pa.string()),
            ]
        )
        rows: Iterable[pa.Table] = (
            t.rename_columns(columns) for t in CsvRows(source, ctx, settings, cells)
        )
        if whole:
            read = list(rows)
            rows = [pa.concat_tables(read) if read else schema.empty_table()]
        unnamed = [n for n, cell in zip(names, cells, strict=True) if not cell.strip()]
        yield from tidy(rows, unnamed, options.skip_footer, schema, ctx)
    except (UnicodeDecodeError, pa.ArrowInvalid) as exc:
        failure = decode_failure(source, encoding, ctx)
        if failure is not None:
            raise failure from None
        if "Empty CSV file" in str(exc):
            raise ctx.error(
                f"no columns found at header_row {ctx.config.source.header_row}: the file "
                "has no row there"
            ) from None
        if whole or not isinstance(exc, pa.ArrowInvalid):
            raise ctx.error(f"CSV is malformed: {str(exc).strip()}") from None
        raise


def stream_csv(path: Path, ctx: ParseContext) -> Iterator[pa.Table]:
    """A CSV in batches of about BATCH_BYTES, each with `_row` and `_rejected`, the same rows
    and text as `parse_table` gives, in bounded memory. Raises pa.ArrowInvalid where only the
    whole file decides (an unnamed column empty in the first batch, not later): the caller
    then reads it whole with `parse_table`."""
    gathered: list[pa.Table] = []
    size = 0
    for table in _csv_batches(path, ctx, BLOCK_BYTES, whole=False):
        gathered.append(table)
        size += table.nbytes
        if size >= BATCH_BYTES:
            yield pa.concat_tables(gathered)
            gathered, size = [], 0
    if gathered:
        yield pa.concat_tables(gathered)


def parse_table(data: bytes, ctx: ParseContext) -> pa.Table:
    """`parse.options`: `na_values` (extra null markers), `keep_default_na`, `skip_footer` (rows),
    `allow_duplicate_headers`, `strip`."""
    if ctx.config.source.format == "csv":
        (table,) = _csv_batches(data, ctx, WHOLE_BLOCK_BYTES, whole=True)
        return table
    from ingest_assets.parsers.workbook_sheet import read_sheet

    options = TableOptions.of(ctx)
    sheet = read_sheet(data, ctx, options.null_markers(True), options.strip, options.skip_footer)
    names = header_names(sheet.header)
    check_header(sheet.header, names, ctx)
    table = sheet.table.rename_columns([ROW_COLUMN, *names])
    unnamed = [n for n, cell in zip(names, sheet.header, strict=True) if not cell.strip()]
    (table,) = tidy([table], unnamed, 0, table.schema, ctx)  # (footer, blank rows: gone)
    letters = {name: column_letters(i) for i, name in enumerate(names)}
    columns = {c: letters[c] for c in table.column_names if c in letters}
    cells: CellMap = {"sheet": sheet.name, "columns": columns}
    return table.replace_schema_metadata({CELLS_META: encode_cell_map(cells)})
