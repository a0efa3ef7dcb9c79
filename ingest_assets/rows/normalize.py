"""Normalize: typed columns, times in UTC, metadata columns, `key_hash` and `row_hash`.

A row that cannot be typed, lacks a primary-key value, or contradicts another row with the same
key is not dropped: it goes to the rejected table with its source row and a reason. Pure: no
Dagster, no I/O.
"""

import datetime as dt
import decimal
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import TYPE_PATTERN, DatasetConfig
from ingest_assets.eventstore.keyindex import key_prefixes
from ingest_assets.parsers.base import (
    CELL_COLUMN,
    CELLS_META,
    HIDDEN_COLUMNS,
    ROW_COLUMN,
    load_plugin,
    to_arrow,
    with_row_numbers,
)
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, key_hashes, row_hashes
from ingest_resources.errors import DataError

COLLECTION_DATE = "collection_date"
REASON, REASON_CODE, SOURCE_REF = "reason", "reason_code", "source_ref"  # quarantine columns
# Columns the platform adds; they never enter row_hash.
SYSTEM_COLUMNS = (COLLECTION_DATE, KEY_HASH, ROW_HASH)

AWARE = re.compile(r"[T ]\d{1,2}:\d{2}.*(?:Z|[+-]\d{2}:?\d{2})$")
COMPACT_FORMATS = {8: "%Y%m%d", 6: "%Y%m", 4: "%Y"}
TRUE = {"true", "t", "yes", "y", "1", "si", "sí"}
FALSE = {"false", "f", "no", "n", "0"}


class NormalizeError(DataError):
    """The parsed data does not fit the contract at all (a declared column is missing, ...)."""


@dataclass(frozen=True)
class Normalized:
    table: pa.Table  # accepted rows: `_row`, typed columns, collection_date, key_hash, row_hash
    rejected: pa.Table  # rejected rows as text, with _row and reason
    duplicates_dropped: int  # exact repeats of a row (same key, same values) in the input
    conflicting_keys: frozenset[bytes] = frozenset()  # key_hash of keys rejected as conflicts


def arrow_type(name: str) -> pa.DataType:
    match = TYPE_PATTERN.match(name)
    if match and match.group(2):
        return pa.decimal128(int(match.group(2)), int(match.group(3)))
    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[name]


def _text(value: object) -> object:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    return str(value)


def _as_text(column: pd.Series) -> pd.Series:
    """Every value as stripped text (None for nulls and blanks)."""
    if pd.api.types.is_string_dtype(column) and column.dtype != object:
        text = column.str.strip()  # a text column (CSV): vectorised, no per-cell Python
        return text.astype(object).where(text.notna() & text.ne(""), None)
    text = column.astype(object).map(_text)
    text = text.where(text.notna(), None).map(lambda v: v.strip() if isinstance(v, str) else v)
    return text.where(text.ne(""), None)


def _to_float(text: pd.Series, decimal_mark: str) -> pd.Series:
    cleaned = text
    if decimal_mark == ",":
        cleaned = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(cleaned, errors="coerce").astype("float64")


def _to_timestamp(text: pd.Series, fmt: str | None, zone: str) -> pd.Series:
    """Text to UTC timestamps: naive values are local to `zone`; aware ones keep their offset."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    present = text.notna()
    if fmt == "excel":
        serial = pd.to_numeric(text[present], errors="coerce")
        naive = pd.to_datetime(serial, unit="D", origin="1899-12-30", errors="coerce")
        out[present] = _localize(naive, zone)
        return out
    if fmt:
        parsed = pd.to_datetime(text[present], format=fmt, errors="coerce")
        out[present] = parsed.dt.tz_convert("UTC") if parsed.dt.tz else _localize(parsed, zone)
        return out
    values = text[present]
    compact = values.str.fullmatch(r"\d{8}|\d{6}|\d{4}")
    for length, compact_fmt in COMPACT_FORMATS.items():
        chosen = compact & values.str.len().eq(length)
        if chosen.any():
            parsed = pd.to_datetime(values[chosen], format=compact_fmt, errors="coerce")
            out[chosen[chosen].index] = _localize(parsed, zone)
    rest = values[~compact]
    aware = rest.str.contains(AWARE)
    if aware.any():
        out[aware[aware].index] = pd.to_datetime(
            rest[aware], format="ISO8601", utc=True, errors="coerce"
        )
    naive = rest[~aware]
    if len(naive):
        out[naive.index] = _localize(pd.to_datetime(naive, format="ISO8601", errors="coerce"), zone)
    return out


def _localize(naive: pd.Series, zone: str) -> pd.Series:
    """Local wall times to UTC. A time that does not exist (the hour skipped when DST starts,
    often midnight, as in Buenos Aires on 2007-12-30) moves forward to the first real instant;
    an ambiguous one (the hour repeated when DST ends) is taken as its first occurrence."""
    naive = naive.astype("datetime64[us]")
    first_occurrence = np.ones(len(naive), dtype=bool)
    local = naive.dt.tz_localize(zone, ambiguous=first_occurrence, nonexistent="shift_forward")
    return local.dt.tz_convert("UTC")


def _to_bool(text: pd.Series) -> pd.Series:
    lowered = text.str.casefold()
    return lowered.map(lambda v: True if v in TRUE else False if v in FALSE else None)


def _decimal(value: str, decimal_mark: str) -> decimal.Decimal | None:
    """The exact number a text spells (a decimal comma read as the contract says), or None."""
    if decimal_mark == ",":
        value = value.replace(".", "").replace(",", ".")
    if "_" in value:  # (Python's Decimal takes "1_000"; no reader of numbers here does)
        return None
    try:
        number = decimal.Decimal(value)
    except (decimal.InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _to_decimal(text: pd.Series, decimal_mark: str, precision: int, scale: int) -> pd.Series:
    """Rounded half-even to `scale` digits; a value with more than `precision` digits in all
    does not fit (null: rejected)."""
    quantum = decimal.Decimal(1).scaleb(-scale)
    limit = decimal.Decimal(10) ** (precision - scale)

    def convert(value: str | None) -> object:
        number = None if value is None else _decimal(value, decimal_mark)
        if number is None:
            return None
        try:
            rounded = number.quantize(quantum, rounding=decimal.ROUND_HALF_EVEN)
        except decimal.InvalidOperation:  # more digits than the context holds
            return None
        return rounded if abs(rounded) < limit else None

    return text.map(convert)


INT64_RANGE = (-(2**63), 2**63 - 1)


def _to_int(text: pd.Series, decimal_mark: str) -> pd.Series:
    """Whole numbers, exactly ("1.0" and "1e3" are whole; "1.5" is not), within int64 (past
    it: null, rejected)."""

    def convert(value: str | None) -> object:
        number = None if value is None else _decimal(value, decimal_mark)
        if number is None or number != number.to_integral_value():
            return None
        whole = int(number)
        return whole if INT64_RANGE[0] <= whole <= INT64_RANGE[1] else None

    return pd.Series(pd.array(text.map(convert).tolist(), dtype="Int64"), index=text.index)


def _convert(text: pd.Series, type_name: str, fmt: str | None, config: DatasetConfig) -> pd.Series:
    """Convert one column (as `_as_text` gives it); values that cannot be converted come back
    as nulls."""
    decimal_mark = config.source.decimal
    if type_name == "string":
        return text
    if type_name == "float64":
        return _to_float(text, decimal_mark)
    if type_name == "int64":
        return _to_int(text, decimal_mark)
    if type_name == "bool":
        return _to_bool(text)
    if type_name == "timestamp":
        return _to_timestamp(text, fmt, config.normalize.timezone)
    if type_name == "date":
        return _to_timestamp(text, fmt, "UTC").dt.date
    match = TYPE_PATTERN.match(type_name)
    return _to_decimal(text, decimal_mark, int(match.group(2)), int(match.group(3)))


def _target_types(columns: list[str], config: DatasetConfig) -> dict[str, str | None]:
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
    return (
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
                column = _text_of(column)
                constant = constant.cast(pa.string())
            filled = pc.coalesce(column, constant)
            table = table.set_column(table.column_names.index(name), name, filled)
        else:
            table = table.append_column(name, constant)
    return table


def _text_of(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Every value as stripped text, null for nulls and blanks (`_as_text` in Arrow)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pa.array(_as_text(column.to_pandas()), pa.string(), from_pandas=True)


INTEGER = r"^[+-]?\d+$"


def _fast_convert(text: pa.Array, type_name: str, fmt: str | None, config: DatasetConfig):
    """Arrow's own kernels for the common cases; None when a value needs the general path
    (which also decides what is rejected). Both paths give the same values."""
    try:
        if type_name == "string":
            return text
        if type_name == "float64" and config.source.decimal == ".":
            values = pc.cast(text, pa.float64())
            return None if pc.any(pc.is_nan(values)).as_py() else values
        if type_name == "int64" and pc.all(pc.match_substring_regex(text, INTEGER)).as_py() in (
            True,
            None,
        ):
            return pc.cast(text, pa.int64())
        if type_name in ("timestamp", "date") and fmt is None:
            naive = pc.cast(text, pa.timestamp("us"))
        elif type_name in ("timestamp", "date") and fmt not in ("excel",) and "%z" not in fmt:
            naive = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
            # Arrow's %Y also takes "10" as year 10; pandas (the general path) wants 4 digits
            earliest = pc.min(pc.year(naive)).as_py()
            if naive.null_count != text.null_count or (earliest is not None and earliest < 1000):
                return None
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if type_name == "date":
        return pc.cast(naive, pa.date32())
    zone = config.normalize.timezone
    local = pc.assume_timezone(naive, zone, ambiguous="earliest", nonexistent="latest")
    return local.cast(pa.timestamp("us", tz="UTC"))


def _general_convert(
    text: pa.Array, type_name: str, fmt: str | None, config: DatasetConfig
) -> pa.Array:
    series = pd.Series(text.to_pandas(), dtype=object)
    series = series.where(series.notna(), None)
    converted = _convert(series, type_name, fmt, config)
    if type_name == "float64":  # the values themselves as Arrow parses them, like the fast path
        valid = pc.if_else(pa.array(converted.notna().to_numpy()), text, None)
        cleaned = valid
        if config.source.decimal == ",":
            cleaned = pc.replace_substring(pc.replace_substring(valid, ".", ""), ",", ".")
        return pc.cast(cleaned, pa.float64())
    return pa.array(
        converted.astype(object).where(converted.notna(), None),
        type=arrow_type(type_name),
        from_pandas=True,
    )


def convert_column(
    text: pa.Array, type_name: str, fmt: str | None, config: DatasetConfig
) -> pa.Array:
    """Text to `type_name`; a value that cannot be converted comes back null."""
    fast = _fast_convert(text, type_name, fmt, config)
    return fast if fast is not None else _general_convert(text, type_name, fmt, config)


def normalize(parsed: pa.Table, config: DatasetConfig, collection_date: dt.date) -> Normalized:
    """One table (or one batch of a larger input: `_row` numbers the source rows)."""
    table = _add_metadata(_run_plugin(with_row_numbers(parsed), config), config)
    _check_columns(table.column_names, config)
    columns = [c for c in table.column_names if c not in HIDDEN_COLUMNS]
    types = _target_types(columns, config)
    rejections = _Rejections(table.num_rows)
    arrays: dict[str, pa.Array] = {}
    for name in columns:
        type_name = types[name]
        column = table[name]
        if type_name is None and name in parsed.column_names and _keeps_type(column.type):
            arrays[name] = column.combine_chunks()
            continue
        type_name = type_name or "string"
        original = _text_of(column)
        converted = convert_column(original, type_name, config.normalize.formats.get(name), config)
        failed = pc.and_(pc.is_valid(original), pc.is_null(converted))
        if pc.any(failed).as_py():
            hint = f" (set normalize.formats.{name})" if type_name in ("timestamp", "date") else ""
            positions = np.flatnonzero(failed.to_numpy(zero_copy_only=False))
            values = original.take(pa.array(positions)).to_pylist()
            messages = [f"column {name!r}: cannot read {v!r} as {type_name}{hint}" for v in values]
            rejections.add(positions, messages, "type_error", name)
        arrays[name] = converted
    for key in config.primary_keys:
        missing = np.flatnonzero(arrays[key].is_null().to_numpy(zero_copy_only=False))
        rejections.add(missing, f"primary key {key!r} is empty", "missing_key", key)

    typed = pa.table({ROW_COLUMN: table[ROW_COLUMN].cast(pa.int64()), **arrays})
    bad = rejections.bad()
    cells = _cells(parsed)
    accepted = typed.filter(pa.array(~bad)) if bad.any() else typed
    accepted_rows = table[ROW_COLUMN].filter(pa.array(~bad)) if bad.any() else table[ROW_COLUMN]
    rejected = rejections.table(table, cells)

    keys = config.primary_keys
    accepted = accepted.append_column(KEY_HASH, key_hashes(accepted, keys))
    accepted = accepted.append_column(
        ROW_HASH, row_hashes(accepted, [c for c in columns if c not in keys])
    )
    distinct = accepted.num_rows == 0 or _distinct(accepted[KEY_HASH])
    conflicting_keys = frozenset() if distinct else _conflicting_keys(accepted)
    accepted, conflicts, dropped = (
        (accepted, _no_rows(table, cells), 0)
        if distinct
        else _dedupe(accepted, accepted_rows, table, cells)
    )
    rejected = (
        pa.concat_tables([rejected, conflicts], promote_options="permissive")
        if conflicts.num_rows
        else rejected
    )
    accepted = accepted.add_column(
        accepted.num_columns - 2,
        COLLECTION_DATE,
        pa.array(np.full(accepted.num_rows, collection_date, dtype="datetime64[D]"), pa.date32()),
    )
    return Normalized(accepted, rejected, dropped, conflicting_keys)


def _cells(parsed: pa.Table) -> dict:
    """Where a spreadsheet parser said each column came from: {"sheet": ..., "columns": {name: "C"}}."""
    return json.loads((parsed.schema.metadata or {}).get(CELLS_META, b"{}"))


def _source_ref(row: int, column: str | None, cell: str | None, cells: dict) -> str:
    if cell:
        return cell
    sheet, letters = cells.get("sheet"), cells.get("columns", {})
    if sheet is not None and column in letters:
        return f"'{sheet}'!{letters[column]}{row}"
    return f"'{sheet}'!row {row}" if sheet is not None else f"row {row}"


class _Rejections:
    """Why each row is rejected (the first reason found), with a code and the offending column."""

    def __init__(self, rows: int):
        self.reason = np.full(rows, None, dtype=object)
        self.code = np.full(rows, None, dtype=object)
        self.column = np.full(rows, None, dtype=object)
        self.flagged = np.zeros(rows, dtype=bool)

    def add(self, positions: np.ndarray, reason: "str | list[str]", code: str, column: str | None):
        if not len(positions):
            return
        reasons = np.full(len(positions), None, dtype=object)
        reasons[:] = reason if isinstance(reason, list) else [reason] * len(positions)
        new = ~self.flagged[positions]
        chosen = positions[new]
        self.flagged[chosen] = True
        self.reason[chosen] = reasons[new]
        self.code[chosen] = code
        self.column[chosen] = column

    def bad(self) -> np.ndarray:
        return self.flagged

    def table(self, source: pa.Table, cells: dict) -> pa.Table:
        positions = np.flatnonzero(self.bad())
        rows = source.take(pa.array(positions, pa.int64()))
        return rejected_rows(
            rows,
            self.reason[positions].tolist(),
            self.code[positions].tolist(),
            self.column[positions].tolist(),
            cells,
        )


def rejected_rows(
    rows: pa.Table, reasons: list, codes: list, columns: list, cells: dict
) -> pa.Table:
    """The quarantine table: source row, where in the source, why, and the values as text."""
    row_numbers = rows[ROW_COLUMN].cast(pa.int64()).to_pylist()
    cell_refs = (
        rows[CELL_COLUMN].to_pylist()
        if CELL_COLUMN in rows.column_names
        else [None] * rows.num_rows
    )
    refs = [
        _source_ref(n, c, cell, cells)
        for n, c, cell in zip(row_numbers, columns, cell_refs, strict=True)
    ]
    data = {
        ROW_COLUMN: pa.array(row_numbers, pa.int64()),
        SOURCE_REF: pa.array(refs, pa.string()),
        REASON_CODE: pa.array([str(c) for c in codes], pa.string()),
        REASON: pa.array([str(r) for r in reasons], pa.string()),
    }
    for name in rows.column_names:
        if name not in HIDDEN_COLUMNS:
            data[name] = _text_of(rows[name])
    return pa.table(data)


def _no_rows(source: pa.Table, cells: dict) -> pa.Table:
    return rejected_rows(source.slice(0, 0), [], [], [], cells)


def conflict_reason(rows: str) -> str:
    return f"primary key repeated with different values (rows {rows})"


def _distinct(key_hash: pa.ChunkedArray) -> bool:
    """True when no key repeats (judged on the first 8 bytes: equal prefixes are checked whole)."""
    prefixes = np.sort(key_prefixes(key_hash))
    return not (prefixes[1:] == prefixes[:-1]).any()


def _conflicting_keys(table: pa.Table) -> frozenset[bytes]:
    """Keys that appear with different values (asked only when a key repeats: rare)."""
    pairs = pa.table({"k": table[KEY_HASH], "h": table[ROW_HASH]})
    counts = pairs.group_by("k").aggregate([("h", "count_distinct")])
    return frozenset(counts.filter(pc.greater(counts["h_count_distinct"], 1))["k"].to_pylist())


def _dedupe(
    table: pa.Table, rows: pa.ChunkedArray, source: pa.Table, cells: dict
) -> tuple[pa.Table, pa.Table, int]:
    """Exact repeats of a key keep their first row; a key with conflicting values rejects all
    its rows (asked only when a key repeats)."""
    keys = table[KEY_HASH].to_pandas()
    repeated = keys.duplicated(keep=False)
    hashes = table[ROW_HASH].to_pandas()
    distinct = pd.DataFrame({"k": keys, "h": hashes})[repeated].groupby("k")["h"].nunique()
    conflicting = keys.isin(distinct[distinct > 1].index)
    exact_repeat = keys.duplicated(keep="first") & ~conflicting
    row_by_pos = pd.Series(rows.to_numpy())
    conflict_rows = row_by_pos[conflicting]
    group_rows = conflict_rows.groupby(keys[conflicting]).agg(
        lambda r: ", ".join(str(v) for v in r)
    )
    reasons = [conflict_reason(group_rows[k]) for k in keys[conflicting]]
    position_of_row = pd.Series(np.arange(source.num_rows), index=source[ROW_COLUMN].to_numpy())
    source_rows = source.take(pa.array(position_of_row.loc[conflict_rows.to_numpy()].to_numpy()))
    count = len(reasons)
    conflicts = rejected_rows(
        source_rows, reasons, ["conflicting_duplicate"] * count, [None] * count, cells
    )
    keep = ~(conflicting | exact_repeat)
    return table.filter(pa.array(keep.to_numpy())), conflicts, int(exact_repeat.sum())
