"""The parser registry and what every parser gets: the contract and where the bytes came from."""

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from ingest_assets.contract import DatasetConfig

ROW_COLUMN = "_row"  # source row/record number, kept for quarantine reasons, never published


class ParseError(Exception):
    """The source could not be parsed; the message names the dataset, the file and the field."""


@dataclass(frozen=True)
class ParseContext:
    config: DatasetConfig
    source_name: str  # file path or URL (masked), for error messages

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


def load_plugin(reference: str, what: str) -> Callable:
    module_name, _, attr = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{what} plugin {reference!r}: cannot import {module_name!r}: {exc}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"{what} plugin {reference!r}: {module_name} has no {attr!r}") from None


def resolve_parser(name: str) -> Parser:
    builtins = _builtins()
    return builtins[name] if name in builtins else load_plugin(name, "parse")


def _cell_to_text(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    return value if value is None or isinstance(value, str) else str(value)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A DataFrame to Arrow, column by column: typed where the column is uniform, text otherwise."""
    arrays, names = [], []
    for name in frame.columns:
        column = frame[name]
        values = column.astype(object).where(column.notna(), None)
        try:
            array = pa.array(values.tolist(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = pa.array([_cell_to_text(v) for v in values.tolist()], type=pa.string())
        if pa.types.is_null(array.type):
            array = array.cast(pa.string())
        arrays.append(array)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _rename_columns(table: pa.Table, ctx: ParseContext) -> pa.Table:
    mapping = ctx.config.parse_config.columns
    if not mapping:
        return table
    missing = [name for name in mapping if name not in table.column_names]
    if missing:
        found = ", ".join(repr(c) for c in table.column_names if c != ROW_COLUMN)
        raise ctx.error(
            f"parse_config.columns names {missing[0]!r}, which the source does not have (found: {found})"
        )
    return table.rename_columns([mapping.get(name, name) for name in table.column_names])


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
    table = result if isinstance(result, pa.Table) else to_arrow(result)
    duplicated = {c for c in table.column_names if table.column_names.count(c) > 1}
    if duplicated:
        raise ctx.error(f"duplicate column names {sorted(duplicated)}")
    return _rename_columns(table, ctx)
