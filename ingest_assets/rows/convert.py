"""Type conversion: a column of text to the type the contract declares, a value that cannot be
converted as a null (the caller rejects its row). Arrow's kernels take the common cases; pandas
and `decimal` the rest, with the same results. Pure: no Dagster, no I/O.

Text is kept as written (`text_of`: an empty value is null, nothing trimmed); a value converted
to another type is read without the spaces around it (`typed_text`: blank is null). Numbers
arrive here plain (`numbers.plain_numbers` applied the contract's marks), times in the format
given (`normalize.formats`, or one `dates` inferred) or, without one, as ISO 8601.
"""

import datetime as dt
import decimal
import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import TYPE_PATTERN, DatasetConfig

AWARE = re.compile(r"[T ]\d{1,2}:\d{2}.*(?:Z|[+-]\d{2}:?\d{2})$")
COMPACT_FORMATS = {8: "%Y%m%d", 6: "%Y%m", 4: "%Y"}
ISO_FORMAT = "iso8601"  # the reading without a format, by name: ISO 8601 and YYYYMMDD, YYYYMM, YYYY
EXCEL_FORMAT = "excel"  # spreadsheet serial day numbers
TRUE = {"true", "t", "yes", "y", "1", "si", "sí"}
FALSE = {"false", "f", "no", "n", "0"}
INT64_RANGE = (-(2**63), 2**63 - 1)
INTEGER = r"^[+-]?\d+$"
PLAIN_DECIMAL = r"^[+-]?\d+(?:\.\d+)?$"
MAX_PRECISION = 38  # of decimal128


def _decimal_type(type_name: str) -> tuple[int, int] | None:
    """(precision, scale) of a `decimal(p,s)` type name, else None."""
    match = TYPE_PATTERN.match(type_name)
    if match and match.group(2):
        return int(match.group(2)), int(match.group(3))
    return None


def arrow_type(name: str) -> pa.DataType:
    precision_scale = _decimal_type(name)
    if precision_scale is not None:
        return pa.decimal128(*precision_scale)
    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[name]


def _text(value: object) -> object:
    if value is None or value is pd.NaT or value is pd.NA:
        return None  # (pandas' missing values)
    if isinstance(value, float | np.floating) and value != value:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    return str(value)


def _as_text(column: "pd.Series[Any]") -> "pd.Series[Any]":
    """Every value as text, as written (None for nulls and empty values)."""
    text = column.astype(object).map(_text)
    return text.where(text.notna() & text.ne(""), None)


def _empty_is_null(text: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def text_of(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Every value of an Arrow column as text, as written: null for nulls and empty values,
    nothing trimmed (`_as_text` in Arrow)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _empty_is_null(column.cast(pa.string()))
    return pa.array(_as_text(column.to_pandas()), pa.string(), from_pandas=True)


def typed_text(text: pa.Array) -> pa.Array:
    """Text (as `text_of` gives it) as a value of another type is read: without the spaces
    around it, a blank value null."""
    return _empty_is_null(pc.utf8_trim_whitespace(text))


def _to_float(text: "pd.Series[Any]") -> "pd.Series[Any]":
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _to_timestamp(text: "pd.Series[Any]", fmt: str | None, zone: str) -> "pd.Series[Any]":
    """Text to UTC timestamps: naive values are local to `zone`; aware ones keep their offset."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    present = text.notna()
    if fmt == EXCEL_FORMAT:
        serial = pd.to_numeric(text[present], errors="coerce")
        naive = pd.to_datetime(serial, unit="D", origin="1899-12-30", errors="coerce")
        out[present] = _localize(naive, zone)
        return out
    if fmt and fmt != ISO_FORMAT:
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


def _localize(naive: "pd.Series[Any]", zone: str) -> "pd.Series[Any]":
    """Local wall times to UTC. A time that does not exist (the hour skipped when DST starts,
    often midnight, as in Buenos Aires on 2007-12-30) moves forward to the first real instant;
    an ambiguous one (the hour repeated when DST ends) is taken as its first occurrence."""
    naive = naive.astype("datetime64[us]")
    first_occurrence = np.ones(len(naive), dtype=bool)
    local = naive.dt.tz_localize(zone, ambiguous=first_occurrence, nonexistent="shift_forward")
    return local.dt.tz_convert("UTC")


def _to_bool(text: "pd.Series[Any]") -> "pd.Series[Any]":
    lowered = text.str.casefold()
    return lowered.map(lambda v: True if v in TRUE else False if v in FALSE else None)


def _decimal(value: str) -> decimal.Decimal | None:
    """The exact number a plain text spells, or None."""
    if "_" in value:  # (Python's Decimal takes "1_000"; no reader of numbers here does)
        return None
    try:
        number = decimal.Decimal(value)
    except (decimal.InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _to_decimal(text: "pd.Series[Any]", precision: int, scale: int) -> "pd.Series[Any]":
    """Rounded half-even to `scale` digits; a value with more than `precision` digits in all
    does not fit (null: rejected)."""
    quantum = decimal.Decimal(1).scaleb(-scale)
    limit = decimal.Decimal(10) ** (precision - scale)

    def convert(value: str | None) -> object:
        number = None if value is None else _decimal(value)
        if number is None:
            return None
        try:
            rounded = number.quantize(quantum, rounding=decimal.ROUND_HALF_EVEN)
        except decimal.InvalidOperation:  # more digits than the context holds
            return None
        return rounded if abs(rounded) < limit else None

    return text.map(convert)


def _to_int(text: "pd.Series[Any]") -> "pd.Series[Any]":
    """Whole numbers, exactly ("1.0" and "1e3" are whole; "1.5" is not), within int64 (past
    it: null, rejected)."""

    def convert(value: str | None) -> object:
        number = None if value is None else _decimal(value)
        if number is None or number != number.to_integral_value():
            return None
        whole = int(number)
        return whole if INT64_RANGE[0] <= whole <= INT64_RANGE[1] else None

    return pd.Series(pd.array(text.map(convert).tolist(), dtype="Int64"), index=text.index)


def _convert(
    text: "pd.Series[Any]", type_name: str, fmt: str | None, config: DatasetConfig
) -> "pd.Series[Any]":
    """Convert one column (as `typed_text` gives it, numbers plain); values that cannot be
    converted come back as nulls."""
    if type_name == "string":
        return text
    if type_name == "float64":
        return _to_float(text)
    if type_name == "int64":
        return _to_int(text)
    if type_name == "bool":
        return _to_bool(text)
    if type_name == "timestamp":
        return _to_timestamp(text, fmt, config.normalize.timezone)
    if type_name == "date":
        dates: pd.Series[Any] = _to_timestamp(text, fmt, "UTC").dt.date
        return dates
    precision_scale = _decimal_type(type_name)
    assert precision_scale is not None  # (the contract allows no other type name)
    return _to_decimal(text, *precision_scale)


def _strptime_reads(fmt: str) -> bool:
    """Whether Arrow's strptime reads times of format `fmt` as pandas does (not with %z, nor
    with month names: Arrow's %b and %B both take `Jan` and `January`, pandas' one each)."""
    return fmt != EXCEL_FORMAT and not any(code in fmt for code in ("%z", "%b", "%B"))


def _all_aware(text: pa.Array) -> bool:
    """Whether every value is an ISO 8601 time with an offset (as `AWARE` tells)."""
    return len(text) > text.null_count and bool(
        pc.all(pc.match_substring_regex(text, AWARE.pattern)).as_py()
    )


def _fast_decimal(text: pa.Array, precision: int, scale: int) -> pa.Array | None:
    """`decimal(p,s)` in Arrow, as `_to_decimal` rounds and bounds it, for plain values
    (`-1234.5`); None when a value needs the general path."""
    if pc.all(pc.match_substring_regex(text, PLAIN_DECIMAL)).as_py() not in (True, None):
        return None
    length = pc.utf8_length(text)
    point = pc.find_substring(text, ".")
    has_point = pc.greater_equal(point, 0)
    # whole digits (a sign counted too), and one more for a carry of rounding (9.5 -> 10)
    whole = (pc.max(pc.if_else(has_point, point, length)).as_py() or 1) + 1
    fraction = pc.max(pc.if_else(has_point, pc.subtract(pc.subtract(length, point), 1), 0))
    digits = max(fraction.as_py() or 0, scale)
    if whole + digits > MAX_PRECISION:
        return None
    exact = pc.cast(text, pa.decimal128(whole + digits, digits))  # (every digit: no rounding)
    rounded = pc.round(exact, ndigits=scale, round_mode="half_to_even")
    if precision - scale < whole:  # (a value may have more whole digits than fit)
        limit = pa.scalar(decimal.Decimal(10) ** (precision - scale), rounded.type)
        rounded = pc.if_else(pc.less(pc.abs(rounded), limit), rounded, None)
    return pc.cast(rounded, pa.decimal128(precision, scale))


def _fast_convert(
    text: pa.Array, type_name: str, fmt: str | None, config: DatasetConfig
) -> pa.Array | None:
    """Arrow's own kernels for the common cases; None when a value needs the general path
    (which also decides what is rejected). Both paths give the same values."""
    try:
        if type_name == "string":
            return text
        if type_name == "float64":
            values = pc.cast(text, pa.float64())
            return None if pc.any(pc.is_nan(values)).as_py() else values
        if type_name == "int64" and pc.all(pc.match_substring_regex(text, INTEGER)).as_py() in (
            True,
            None,
        ):
            return pc.cast(text, pa.int64())
        precision_scale = _decimal_type(type_name)
        if precision_scale is not None:
            return _fast_decimal(text, *precision_scale)
        if fmt == ISO_FORMAT:
            fmt = None
        if type_name in ("timestamp", "date") and fmt is None and _all_aware(text):
            aware = pc.cast(text, pa.timestamp("us", tz="UTC"))  # (each with its offset)
            return pc.cast(aware, pa.date32()) if type_name == "date" else aware
        if type_name in ("timestamp", "date") and fmt is None:
            naive = pc.cast(text, pa.timestamp("us"))
        elif type_name in ("timestamp", "date") and fmt is not None and _strptime_reads(fmt):
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
        return pc.cast(valid, pa.float64())
    return pa.array(
        converted.astype(object).where(converted.notna(), None),
        type=arrow_type(type_name),
        from_pandas=True,
    )


def convert_column(
    text: pa.Array, type_name: str, fmt: str | None, config: DatasetConfig
) -> pa.Array:
    """Text (as `typed_text` gives it, numbers plain) to `type_name`; a value that cannot be
    converted comes back null."""
    fast = _fast_convert(text, type_name, fmt, config)
    return fast if fast is not None else _general_convert(text, type_name, fmt, config)


def naive_to_utc(values: pa.Array, zone: str) -> pa.Array:
    """A parser's naive timestamps (a workbook's date-and-time cells: wall times in `zone`) as
    UTC instants, as `_localize` reads them: a time skipped by DST moves to the first real
    instant, a repeated one is its first occurrence. Other arrays are returned as they are."""
    if not pa.types.is_timestamp(values.type) or values.type.tz is not None:
        return values
    local = pc.assume_timezone(values, timezone=zone, ambiguous="earliest", nonexistent="latest")
    return local.cast(pa.timestamp(values.type.unit, tz="UTC"))
