"""Normalize one batch: typed columns, times in UTC, metadata columns, `key_hash`, `row_hash`.

A row the parser could not read (`_rejected`), that cannot be typed, lacks a primary-key value,
or contradicts another row with the same key is not dropped: it goes to the rejected table
(`quarantine`) with its source row and a reason. Type conversion is in `convert` (numbers by the
contract's marks in `numbers`, time formats inferred in `dates`), the rule for repeated keys in
`dedupe`. Pure: no Dagster, no I/O.
"""

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import DatasetConfig
from ingest_assets.parsers.base import (
    HIDDEN_COLUMNS,
    REJECT_COLUMN,
    ROW_COLUMN,
    CellMap,
    cell_map,
    load_plugin,
    to_arrow,
    with_row_numbers,
)
from ingest_assets.rows.convert import (
    ISO_FORMAT,
    convert_column,
    naive_to_utc,
    text_of,
    typed_text,
)
from ingest_assets.rows.dates import infer_format
from ingest_assets.rows.dedupe import Verdict, dedupe
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, key_hashes, row_hashes
from ingest_assets.rows.numbers import INVALID_NUMBER, NumberRule, plain_numbers
from ingest_assets.rows.quarantine import Rejections, conflict_reasons, conflicting_rows
from ingest_resources.errors import DataError

COLLECTION_DATE = "collection_date"
# Columns the platform adds; they never enter row_hash.
SYSTEM_COLUMNS = (COLLECTION_DATE, KEY_HASH, ROW_HASH)
TIME_TYPES = ("timestamp", "date")
NUMBER_TYPES = ("float64", "int64")  # and decimal(p,s)
UNREADABLE_ROW = "unreadable_row"  # the reason code of a `_rejected` text without one


class NormalizeError(DataError):
    """The parsed data does not fit the contract at all (a declared column is missing, ...)."""


@dataclass(frozen=True)
class Normalized:
    table: pa.Table  # accepted rows: `_row`, typed columns, collection_date, key_hash, row_hash
    rejected: pa.Table  # rejected rows as text, with _row and reason
    duplicates_dropped: int  # exact repeats of a row (same key, same values) in the input
    conflicting_keys: frozenset[bytes] = frozenset()  # key_hash of keys rejected as conflicts
    # the format each date/time column of text was read with (the contract's, one given, or
    # one inferred from the batch)
    formats: dict[str, str] = field(default_factory=dict)
    # the exact repeats dropped (`_row`, key_hash): rejected after all if their key turns out
    # to conflict in another batch
    repeats: pa.Table = field(default_factory=lambda: pa.table({}))


def target_types(columns: list[str], config: DatasetConfig) -> dict[str, str | None]:
    """Declared type per column; None keeps an already typed column (or makes it text)."""
    declared = config.normalize.schema_
    time_column = config.normalize.time_column
    types: dict[str, str | None] = {}
    for name in columns:
        if name in declared:
            types[name] = declared[name]
        elif name == time_column:
            types[name] = "timestamp"
        elif config.is_series and name == "value":
            types[name] = "float64"
        else:
            types[name] = None
    return types


def _keeps_type(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_boolean(data_type)
        or pa.types.is_timestamp(data_type)
        or pa.types.is_date(data_type)
        or pa.types.is_decimal(data_type)
    )


def _check_columns(names: list[str], config: DatasetConfig) -> None:
    found = ", ".join(repr(c) for c in names if c not in HIDDEN_COLUMNS)
    where = f"dataset {config.dataset_id}"
    for name in config.normalize.schema_:
        if name not in names:
            raise NormalizeError(
                f"{where}: normalize.schema declares column {name!r}, which the parsed data does not have (found: {found})"
            )
    for name in config.primary_keys:
        if name not in names:
            raise NormalizeError(
                f"{where}: primary key {name!r} is not a column of the parsed data (found: {found})"
            )
    explicit_time = "time_column" in config.normalize.model_fields_set
    if explicit_time and config.normalize.time_column not in names:
        raise NormalizeError(
            f"{where}: normalize.time_column {config.normalize.time_column!r} is not a column of the parsed data (found: {found})"
        )
    clash = [c for c in SYSTEM_COLUMNS + ("op", "version") if c in names]
    if clash:
        raise NormalizeError(
            f"{where}: column {clash[0]!r} is reserved by the platform; rename it in parse_config.columns"
        )


def _run_plugin(table: pa.Table, config: DatasetConfig) -> pa.Table:
    if config.normalize.builtin:
        return table
    hook = load_plugin(config.normalize.plugin, "normalize")
    result = hook(table.to_pandas(), config)
    if not isinstance(result, pd.DataFrame):
        raise NormalizeError(
            f"dataset {config.dataset_id}: normalize plugin {config.normalize.plugin!r} must return a pandas DataFrame"
        )
    converted = to_arrow(result.reset_index(drop=True))
    return converted.replace_schema_metadata(table.schema.metadata)


def _add_metadata(table: pa.Table, config: DatasetConfig) -> pa.Table:
    """`transform.metadata` constants (series_map entries win per series) and `frequency`."""
    defaults = dict(config.transform.metadata)
    if config.frequency is not None:
        defaults.setdefault("frequency", config.frequency)
    for name, value in defaults.items():
        constant = pa.repeat(value, table.num_rows)
        if name in table.column_names:
            column = table[name]
            if column.type != constant.type:
                column = text_of(column)
                constant = constant.cast(pa.string())
            filled = pc.coalesce(column, constant)
            table = table.set_column(table.column_names.index(name), name, filled)
        else:
            table = table.append_column(name, constant)
    return table


def _parser_rejections(table: pa.Table, rejections: Rejections) -> None:
    """The rows the parser could not read (`_rejected`: "<reason_code>: <message>"), first:
    their empty values give no other reason."""
    if REJECT_COLUMN not in table.column_names or table[REJECT_COLUMN].null_count == len(table):
        return
    text = text_of(table[REJECT_COLUMN])
    positions = np.flatnonzero(pc.is_valid(text).to_numpy(zero_copy_only=False))
    codes, reasons = [], []
    for value in text.take(pa.array(positions)).to_pylist():  # (rows the parser gave up on)
        code, colon, reason = value.partition(":")
        valid = colon and code.strip() and code.strip().replace("_", "").isalnum()
        codes.append(code.strip() if valid else UNREADABLE_ROW)
        reasons.append(reason.strip() if valid else value)
    rejections.add(positions, reasons, codes, None)


def is_time_type(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(data_type) or pa.types.is_date(data_type))


def is_number_type(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def time_formats(
    table: pa.Table,
    types: Mapping[str, str | None],
    config: DatasetConfig,
    given: Mapping[str, str],
    infer: bool = True,
) -> dict[str, str]:
    """The format of each date/time column of text: the contract's, else the one `given` (kept
    from the published version, or inferred over the whole input), else (`infer`) one inferred
    from this table's values. A column without one is read as ISO 8601."""
    formats: dict[str, str] = {}
    for name, type_name in types.items():
        column = table[name]
        if type_name not in TIME_TYPES:
            continue
        if name in config.normalize.formats:
            formats[name] = config.normalize.formats[name]
        elif is_time_type(column.type):
            continue  # (times already: no text to read)
        elif name in given:
            formats[name] = given[name]
        elif infer:
            text = typed_text(text_of(column))
            inferred = infer_format(text, name, is_number_type(column.type), config)
            if inferred is not None:
                formats[name] = inferred.format
    return formats


def _reject_values(
    rejections: Rejections,
    failed: pa.Array,
    values: pa.Array,
    message: Callable[[str], str],
    code: str,
    name: str,
) -> None:
    """Rejects the rows where `failed`, each with the `message` of its value."""
    failed = pc.fill_null(failed, False)
    if not pc.any(failed).as_py():
        return
    positions = np.flatnonzero(failed.to_numpy(zero_copy_only=False))
    taken = values.take(pa.array(positions)).to_pylist()
    rejections.add(positions, [message(repr(v)) for v in taken], code, name)


def _typed_column(
    name: str,
    column: pa.ChunkedArray,
    type_name: str,
    fmt: str | None,
    config: DatasetConfig,
    rejections: Rejections,
) -> pa.Array:
    """One column converted to `type_name`; the rows of values that do not convert rejected."""
    text = text_of(column)
    if type_name == "string":
        return text
    values = typed_text(text)
    readable = values
    if type_name in NUMBER_TYPES or type_name.startswith("decimal"):
        rule = NumberRule.of(config.source.decimal, config.source.thousands)
        numbers = plain_numbers(values, rule)
        explained = rule.describe()
        _reject_values(
            rejections,
            numbers.invalid,
            values,
            lambda value: f"column {name!r}: {value} is not a number: {explained}",
            INVALID_NUMBER,
            name,
        )
        readable = numbers.text
    converted = convert_column(readable, type_name, fmt, config)
    hint = ""
    if type_name in TIME_TYPES and (fmt in (None, ISO_FORMAT) or name in config.normalize.formats):
        hint = f" (set normalize.formats.{name})"
    elif type_name in TIME_TYPES:
        hint = f" in the format {fmt!r} this column is read with (set normalize.formats.{name} to change it)"
    failed = pc.and_(pc.is_valid(readable), pc.is_null(converted))
    _reject_values(
        rejections,
        failed,
        values,
        lambda value: f"column {name!r}: cannot read {value} as {type_name}{hint}",
        "type_error",
        name,
    )
    return converted


def normalize(
    parsed: pa.Table,
    config: DatasetConfig,
    collection_date: dt.date,
    formats: Mapping[str, str] | None = None,
    infer: bool = True,
) -> Normalized:
    """One table (or one batch of a larger input: `_row` numbers the source rows). `formats`:
    of date/time columns the contract names no format for (kept from the published version,
    or inferred over the whole input); a column in neither has its format inferred from this
    table, unless not to `infer` (a batch: the whole input's columns were looked at)."""
    table = _add_metadata(_run_plugin(with_row_numbers(parsed), config), config)
    _check_columns(table.column_names, config)
    columns = [c for c in table.column_names if c not in HIDDEN_COLUMNS]
    types = target_types(columns, config)
    rejections = Rejections(table.num_rows)
    _parser_rejections(table, rejections)
    used = time_formats(table, types, config, formats or {}, infer)
    arrays: dict[str, pa.Array] = {}
    for name in columns:
        type_name = types[name]
        column = table[name]
        if type_name is None and name in parsed.column_names and _keeps_type(column.type):
            arrays[name] = naive_to_utc(column.combine_chunks(), config.normalize.timezone)
            continue
        arrays[name] = _typed_column(
            name, column, type_name or "string", used.get(name), config, rejections
        )
    for key in config.primary_keys:
        missing = np.flatnonzero(arrays[key].is_null().to_numpy(zero_copy_only=False))
        rejections.add(missing, f"primary key {key!r} is empty", "missing_key", key)

    typed = pa.table({ROW_COLUMN: table[ROW_COLUMN].cast(pa.int64()), **arrays})
    good = ~rejections.bad()
    cells = cell_map(parsed)
    accepted = typed if good.all() else typed.filter(pa.array(good))
    rejected = rejections.table(table, cells)

    keys = config.primary_keys
    accepted = accepted.append_column(KEY_HASH, key_hashes(accepted, keys))
    accepted = accepted.append_column(
        ROW_HASH, row_hashes(accepted, [c for c in columns if c not in keys])
    )
    verdict = dedupe(accepted[KEY_HASH], accepted[ROW_HASH])
    if verdict.conflicts.size:
        conflicts = _conflicts(table, np.flatnonzero(good), verdict, cells)
        rejected = pa.concat_tables([rejected, conflicts], promote_options="permissive")
    repeats = accepted.select([ROW_COLUMN, KEY_HASH]).take(pa.array(verdict.repeats, pa.int64()))
    if verdict.repeats.size or verdict.conflicts.size:
        keep = np.ones(accepted.num_rows, dtype=bool)
        keep[verdict.repeats] = keep[verdict.conflicts] = False
        accepted = accepted.filter(pa.array(keep))
    accepted = accepted.add_column(
        accepted.num_columns - 2,
        COLLECTION_DATE,
        pa.array(np.full(accepted.num_rows, collection_date, dtype="datetime64[D]"), pa.date32()),
    )
    conflicted = frozenset(verdict.conflicted)
    return Normalized(accepted, rejected, int(verdict.repeats.size), conflicted, used, repeats)


def _conflicts(
    source: pa.Table, source_position: np.ndarray, verdict: Verdict, cells: CellMap | None
) -> pa.Table:
    """The quarantined rows of keys with different values (the verdict's positions are among
    the accepted rows; `source_position` says where each accepted row is in `source`)."""
    positions = verdict.conflicts.tolist()
    rows = source.take(pa.array(source_position[verdict.conflicts]))
    row_of = dict(zip(positions, rows[ROW_COLUMN].to_pylist(), strict=True))
    reasons = conflict_reasons(verdict.conflicted.values(), row_of)
    return conflicting_rows(rows, [reasons[p] for p in positions], cells)
