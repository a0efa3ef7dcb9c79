"""What a version's rows become in PostgreSQL: their columns' names (the contract's, shortened
past 63 bytes by `table_column`, and `source` holding the dataset's id) and types (the table's
and the ones COPY's binary format is encoded in)."""

import pyarrow as pa

from ingest_resources.errors import WarehouseError
from ingest_resources.postgres_names import POSTGRES_NAME_BYTES, table_column

SOURCE_COLUMN = "source"
MAX_DECIMAL_DIGITS = 38  # what pgpq encodes (decimal128)


class WarehouseSchemaError(WarehouseError):
    """The table cannot take the contract's columns without losing data."""


def check_target(schema: str, table: str, label: str) -> None:
    """Refuse a schema or table name PostgreSQL would not keep as written (the contract's
    validation refuses them first; this guards a direct caller)."""
    for kind, name in (("schema", schema), ("table", table)):
        if not name or "\x00" in name or len(name.encode()) > POSTGRES_NAME_BYTES:
            raise WarehouseSchemaError(
                f"{label}: the {kind} name {name[:80]!r} must be 1 to {POSTGRES_NAME_BYTES} "
                "bytes of UTF-8 without NUL (PostgreSQL would cut or refuse it)"
            )


def _table_columns(names: list[str], label: str) -> dict[str, str]:
    """Each column's name in the table (`table_column`), refusing names PostgreSQL cannot hold
    (empty, NUL) and two columns that would share one name."""
    mapped: dict[str, str] = {}
    for name in [*names, SOURCE_COLUMN]:
        if not name or "\x00" in name:
            raise WarehouseSchemaError(
                f"{label}: column {name!r}: a PostgreSQL column name cannot be empty or hold a "
                "NUL character; name it with parse_config.columns"
            )
        column = table_column(name)
        twin = next((other for other, taken in mapped.items() if taken == column), None)
        if twin is not None:
            raise WarehouseSchemaError(
                f"{label}: columns {twin[:80]!r} and {name[:80]!r} would both be the column "
                f"{column!r} in PostgreSQL (a column named {SOURCE_COLUMN!r} is reserved for the "
                "dataset id); rename one with parse_config.columns"
            )
        mapped[name] = column
    return mapped


def renamed_columns(names: list[str], label: str) -> dict[str, str]:
    """The columns whose name in the table is not their own (`table_column`), refusing names
    PostgreSQL cannot hold (empty, NUL) and two columns that would share one name."""
    mapped = _table_columns(names, label)
    return {name: column for name, column in mapped.items() if name != column}


def for_table(rows: pa.Table, dataset_id: str) -> pa.Table:
    """The columns as the table holds them: no `op`, names that fit PostgreSQL
    (`table_column`), and the dataset in `source`."""
    rows = rows.drop_columns([c for c in ("op",) if c in rows.column_names])
    rows = rows.rename_columns([table_column(name) for name in rows.column_names])
    dataset = pa.repeat(pa.scalar(dataset_id, pa.string()), rows.num_rows)
    return rows.append_column(SOURCE_COLUMN, dataset)


def renamed_note(renamed: dict[str, str]) -> str:
    if not renamed:
        return ""
    pairs = "; ".join(f"{name[:80]!r} -> {column!r}" for name, column in renamed.items())
    return f" (columns over {POSTGRES_NAME_BYTES} bytes are loaded as: {pairs})"


def pg_type(data_type: pa.DataType) -> str:
    if pa.types.is_timestamp(data_type):
        return "timestamp with time zone" if data_type.tz else "timestamp without time zone"
    if pa.types.is_decimal(data_type):
        return f"numeric({data_type.precision},{data_type.scale})"
    if pa.types.is_integer(data_type):
        return "bigint"
    if pa.types.is_floating(data_type):
        return "double precision"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_date(data_type):
        return "date"
    return "text"


def copy_type(data_type: pa.DataType) -> pa.DataType:
    """The Arrow type pgpq encodes, in COPY's binary format, as `pg_type(data_type)` expects:
    every integer as bigint, every float as double precision, times in microseconds (binary
    timestamp and timestamptz are the same UTC count), anything else as text."""
    if pa.types.is_dictionary(data_type):
        return copy_type(data_type.value_type)
    if pa.types.is_timestamp(data_type):
        return pa.timestamp("us", data_type.tz)
    if pa.types.is_decimal256(data_type) and data_type.precision <= MAX_DECIMAL_DIGITS:
        return pa.decimal128(data_type.precision, data_type.scale)
    if pa.types.is_decimal(data_type) or pa.types.is_boolean(data_type):
        return data_type
    if pa.types.is_integer(data_type):
        return pa.int64()
    if pa.types.is_floating(data_type):
        return pa.float64()
    if pa.types.is_date(data_type):
        return pa.date32()
    return pa.string()


def copy_schema(schema: pa.Schema, label: str) -> pa.Schema:
    for f in schema:
        if pa.types.is_decimal(f.type) and f.type.precision > MAX_DECIMAL_DIGITS:
            raise WarehouseSchemaError(
                f"{label}: column {f.name!r} is {f.type}: numbers of more than "
                f"{MAX_DECIMAL_DIGITS} digits cannot be loaded (binary COPY through pgpq); "
                "declare the column float64 or string in normalize.schema"
            )
    return pa.schema([pa.field(f.name, copy_type(f.type)) for f in schema])
