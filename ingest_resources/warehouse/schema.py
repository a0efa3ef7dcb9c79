"""The load's table in PostgreSQL: created with the contract's columns, or evolved to them (a
new column is added; bigint -> double precision and varchar -> text widen; anything else is
refused by name). Text keys are collated "C" where the database orders text as bytes anyway."""

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from ingest_resources.warehouse.advisory_locks import hold_lock
from ingest_resources.warehouse.columns import SOURCE_COLUMN, WarehouseSchemaError
from ingest_resources.warehouse.server import single_row

WIDENINGS = {("bigint", "double precision"), ("integer", "bigint"), ("character varying", "text")}
TEXT_TYPES = ("text", "character varying")
# Collations that order text as its UTF-8 bytes: "C" orders it the same, and PostgreSQL then
# compares by memcmp and sorts on abbreviated keys (a text primary key builds about twice as
# fast as under "C.UTF-8").
BYTE_ORDER_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8"})


def _type_name(declared: str) -> str:
    """information_schema's data_type for a declared type ('numeric(10,2)' -> 'numeric')."""
    return declared.split("(")[0]


def _orders_by_bytes(collation: str) -> bool:
    return collation in BYTE_ORDER_COLLATIONS


def existing_columns(cursor: Cursor, schema: str, table: str) -> dict[str, str]:
    """The table's columns and their data_type, in order ({} when there is no such table)."""
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    return {name: kind for name, kind in cursor.fetchall()}


def _default_collation(cursor: Cursor) -> str:
    cursor.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
    return str(single_row(cursor)[0])


def _ensure_schema(cursor: Cursor, schema: str) -> None:
    """Create the schema if it is missing, under a lock of its own (tables of one schema
    load at once, and concurrent `CREATE SCHEMA IF NOT EXISTS` race on pg_namespace); an
    existing schema needs neither the lock nor the right to create schemas."""
    cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if cursor.fetchone():
        return
    hold_lock(cursor, "schema", schema)
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def ensure_table(
    cursor: Cursor, schema: str, table: str, columns: dict[str, str], keys: list[str]
) -> None:
    """Create the table with `columns` (name -> PostgreSQL type) and the primary key `keys`,
    or add the columns it lacks and widen the ones the contract widened."""
    target = sql.Identifier(schema, table)
    _ensure_schema(cursor, schema)
    existing = existing_columns(cursor, schema, table)
    if not existing:
        bytewise = _orders_by_bytes(_default_collation(cursor))
        definitions = [
            sql.SQL("{} {}{}").format(
                sql.Identifier(name),
                sql.SQL(kind),
                sql.SQL(' COLLATE "C"')
                if bytewise and name in keys and _type_name(kind) in TEXT_TYPES
                else sql.SQL(""),
            )
            for name, kind in columns.items()
        ]
        # The dataset's own keys first, `source` (one value per dataset) last: a key is
        # sorted (built, looked up) by its first column's leading bytes.
        ordered = sorted(keys, key=lambda name: name == SOURCE_COLUMN)  # (stable)
        definitions.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, ordered)))
        )
        cursor.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                target, sql.SQL(", ").join(definitions)
            )
        )
        return
    for name, kind in columns.items():
        current = existing.get(name)
        if current is None:
            cursor.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    target, sql.Identifier(name), sql.SQL(kind)
                )
            )
        elif current != _type_name(kind):
            if (current, _type_name(kind)) not in WIDENINGS:
                raise WarehouseSchemaError(
                    f'table "{schema}"."{table}": column "{name}" is {current}, the contract now '
                    f"makes it {kind}; only bigint -> double precision and varchar -> text widen "
                    "automatically. Migrate the column yourself or load into a new table"
                )
            cursor.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                    target, sql.Identifier(name), sql.SQL(kind)
                )
            )
