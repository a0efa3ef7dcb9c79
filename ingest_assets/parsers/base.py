"""The parser registry and what every parser gets: the contract and where the bytes came from."""

import datetime as dt
import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd
import pyarrow as pa

from ingest_assets.contract import DatasetConfig
from ingest_assets.rows.arrays import row_numbers
from ingest_resources.errors import DataError

ROW_COLUMN = "_row"  # source row/record number, kept for quarantine reasons, never published
CELL_COLUMN = "_cell"  # optional: the source cells of a row (series_map), for quarantine
# optional: why the parser could not read a row ("<reason_code>: <message>", e.g. a CSV line
# with more fields than the header): such a row carries no values and goes to quarantine
REJECT_COLUMN = "_rejected"
HIDDEN_COLUMNS = (ROW_COLUMN, CELL_COLUMN, REJECT_COLUMN)
CELLS_META = b"ingest.cells"  # optional: a CellMap, as JSON


class CellMap(TypedDict):
    """Where a spreadsheet parser's columns came from, kept in the table's schema metadata
    (CELLS_META) so that a quarantined row can name its cells."""

    sheet: str
    columns: dict[str, str]  # column -> its letter in the sheet


class ParseError(DataError):
    """The source could not be parsed; the message names the dataset, the file and the field."""


@dataclass(frozen=True)
class ParseContext:
    config: DatasetConfig
    source_name: str  # file path or URL (masked), for error messages
    # what a parser read leniently or guessed (an encoding detected, a feed's recoverable XML):
    # shown on the parsed materialization and logged as warnings
    notes: list[str] = field(default_factory=list)
    # the HTTP response's Content-Type (its charset is an encoding a feed or JSON may use)
    content_type: str | None = None

    def note(self, message: str) -> None:
        self.notes.append(f"{self.source_name}: {message}")

    @property
    def options(self) -> dict[str, Any]:
        return self.config.parse_options

    def error(self, message: str) -> ParseError:
        return ParseError(f"dataset {self.config.dataset_id}: {self.source_name}: {message}")


Parser = Callable[[bytes, ParseContext], "pd.DataFrame | pa.Table"]


def _builtins() -> dict[str, Parser]:
    from ingest_assets.parsers import json_records, parquet, rss, series_map, table

    return {
        "table": table.parse_table,
        "series_map": series_map.parse_series_map,
        "bcra_infomondia": series_map.parse_series_map,
        "json_records": json_records.parse_json_records,
        "rss": rss.parse_rss,
        "parquet": parquet.parse_parquet,
    }


def load_plugin(reference: str, what: str) -> Callable[..., Any]:
    """The function `package.module:function` names (a user's plugin: its signature is the
    caller's to trust)."""
    module_name, _, attr = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{what} plugin {reference!r}: cannot import {module_name!r}: {exc}"
        ) from None
    try:
        plugin: Callable[..., Any] = getattr(module, attr)
    except AttributeError:
        raise ImportError(f"{what} plugin {reference!r}: {module_name} has no {attr!r}") from None
    return plugin


def is_builtin(name: str) -> bool:
    """Whether `parse.plugin` names a built-in parser (not a plugin of the user's)."""
    return name in _builtins()


def resolve_parser(name: str) -> Parser:
    builtins = _builtins()
    return builtins[name] if name in builtins else load_plugin(name, "parse")


def _cell_to_text(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    return value if value is None or isinstance(value, str) else str(value)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dt.date | pd.Timestamp):
        return "time"
    return type(value).__name__


def _object_column(values: list[object]) -> pa.Array:
    """Typed when every value is of one kind (numbers, times, text, ...); text otherwise, so a
    date followed by numbers never turns the numbers into dates."""
    kinds = {_kind(v) for v in values if v is not None}
    if len(kinds) == 1:
        try:
            return pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    if not kinds:
        return pa.array(values, type=pa.string())
    return pa.array([_cell_to_text(v) for v in values], type=pa.string())


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A DataFrame to Arrow, column by column, keeping typed (non-object) columns as they are."""
    arrays = []
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if column.dtype == object:
            values = column.astype(object).where(column.notna(), None).tolist()
            array = _object_column(values)
        else:
            array = pa.Array.from_pandas(column)
            if pa.types.is_null(array.type) or pa.types.is_large_string(array.type):
                array = array.cast(pa.string())
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


def _rename_columns(table: pa.Table, ctx: ParseContext) -> pa.Table:
    mapping = ctx.config.parse_config.columns
    if not mapping:
        return table
    missing = [name for name in mapping if name not in table.column_names]
    if missing:
        found = ", ".join(repr(c) for c in table.column_names if c not in HIDDEN_COLUMNS)
        raise ctx.error(
            f"parse_config.columns names {missing[0]!r}, which the source does not have (found: {found})"
        )
    renamed = table.rename_columns([mapping.get(name, name) for name in table.column_names])
    metadata = dict(table.schema.metadata or {})  # (renaming drops it)
    cells = cell_map(table)
    if cells is not None:
        cells["columns"] = {mapping.get(k, k): v for k, v in cells.get("columns", {}).items()}
        metadata[CELLS_META] = encode_cell_map(cells)
    return renamed.replace_schema_metadata(metadata)


def cell_map(table: pa.Table) -> CellMap | None:
    """The table's CellMap, if its parser wrote one."""
    found = (table.schema.metadata or {}).get(CELLS_META)
    if found is None:
        return None
    cells: CellMap = json.loads(found)
    return cells


def encode_cell_map(cells: CellMap) -> bytes:
    """`cells` as CELLS_META holds it."""
    return json.dumps(cells).encode()


def required_columns(config: DatasetConfig) -> dict[str, str]:
    """Columns the contract needs from the parser, and which key asks for each. Columns the
    platform adds itself (transform.metadata, frequency) are not required from the source."""
    added = set(config.transform.metadata) | ({"frequency"} if config.frequency else set())
    needed = {name: "normalize.primary_keys" for name in config.primary_keys}
    needed |= {name: "normalize.schema" for name in config.normalize.schema_ if name not in needed}
    if "time_column" in config.normalize.model_fields_set:
        needed.setdefault(config.normalize.time_column, "normalize.time_column")
    return {name: why for name, why in needed.items() if name not in added}


def require_columns(table: pa.Table, ctx: ParseContext) -> None:
    """Schema drift in the source (a renamed or dropped header) fails here, naming the column,
    before anything downstream runs. A custom normalize plugin may derive columns: not checked."""
    if not ctx.config.normalize.builtin:
        return
    missing = {
        n: why for n, why in required_columns(ctx.config).items() if n not in table.column_names
    }
    if missing:
        found = ", ".join(repr(c) for c in table.column_names if c not in HIDDEN_COLUMNS)
        listed = ", ".join(f"{name!r} (from {why})" for name, why in missing.items())
        raise ctx.error(
            f"the source has no column {listed}; it has: {found}. Was a header renamed? Map it with "
            "parse_config.columns or update the contract"
        )


def parse_raw(data: bytes, ctx: ParseContext) -> pa.Table:
    """Run the dataset's parser and apply `parse_config.columns`; always returns Arrow."""
    parser = resolve_parser(ctx.config.parser)
    try:
        result = parser(data, ctx)
    except ParseError:
        raise
    except Exception as exc:  # a plugin's own failure: keep its message, add where it happened
        raise ctx.error(
            f"parser {ctx.config.parser!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(result, pa.Table | pd.DataFrame):
        raise ctx.error(
            f"parser {ctx.config.parser!r} returned {type(result).__name__}, expected a DataFrame or Arrow table"
        )
    names = [
        str(c) for c in (result.column_names if isinstance(result, pa.Table) else result.columns)
    ]
    duplicated = {c for c in names if names.count(c) > 1}
    if duplicated:
        raise ctx.error(f"duplicate column names {sorted(duplicated)}")
    return _rename_columns(result if isinstance(result, pa.Table) else to_arrow(result), ctx)


def with_row_numbers(table: pa.Table) -> pa.Table:
    if ROW_COLUMN in table.column_names:
        return table
    return table.add_column(0, ROW_COLUMN, row_numbers(1, table.num_rows))


def streams(ctx: ParseContext) -> bool:
    """Whether the dataset's parser reads its file in batches (plain CSV, JSON Lines) or whole."""
    format = ctx.config.source.format
    return (ctx.config.parser, format) in (("table", "csv"), ("json_records", "jsonl"))


def parse_batches(path: Path, ctx: ParseContext, whole: bool = False) -> Iterator[pa.Table]:
    """The parsed rows in batches, each with `_row` and `parse_config.columns` applied.

    A compressed source is inflated first, to a scratch file (`archive.unpacked`, which also
    refuses a file whose magic bytes say it is not `source.format`). A plain CSV streams
    through Arrow's reader and JSON Lines line by line (bounded memory); everything else,
    and a CSV Arrow reads differently from pandas (`whole=True`, after pa.ArrowInvalid), is
    parsed whole by the dataset's parser."""
    from ingest_assets.parsers.archive import unpacked

    with unpacked(path, ctx) as readable:
        if streams(ctx) and not whole:
            for batch in _stream(readable, ctx):
                yield _rename_columns(batch, ctx)
            return
        yield with_row_numbers(parse_raw(readable.read_bytes(), ctx))


def _stream(path: Path, ctx: ParseContext) -> Iterator[pa.Table]:
    if ctx.config.source.format == "jsonl":
        from ingest_assets.parsers.json_lines import stream_jsonl

        return stream_jsonl(path, ctx)
    from ingest_assets.parsers.table import stream_csv

    return stream_csv(path, ctx)
