"""The PostgreSQL warehouse: an idempotent, ledgered upsert of published event versions.

One version loads in one transaction:
1. `ingest_loads` (the ledger) already has (dataset, version): nothing to do.
2. The table exists with the contract's columns (created, or evolved: a new column is added;
   bigint -> double precision and varchar -> text widen; anything else is refused by name).
3. COPY the version's rows (binary format, encoded from Arrow by pgpq on a thread while the
   server takes the previous chunk) into a temporary table, then one
   `INSERT ... ON CONFLICT (pk) DO UPDATE ... WHERE row_hash IS DISTINCT FROM excluded.row_hash`.
4. The ledger row (rows inserted and updated) commits with the data.
Only a version's new and revised rows travel. Every identifier is quoted by psycopg2.sql.
"""

import itertools
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg2 import sql

from ingest_assets.arrays import repeated

LEDGER = "ingest_loads"
SOURCE_COLUMN = "source"
WIDENINGS = {("bigint", "double precision"), ("integer", "bigint"), ("character varying", "text")}


class WarehouseSchemaError(Exception):
    """The table cannot take the contract's columns without losing data."""


@dataclass(frozen=True)
class LoadResult:
    version: str
    inserted: int
    updated: int
    already_loaded: bool


def _for_table(rows: pa.Table, dataset_id: str) -> pa.Table:
    """The columns as the table holds them: no `op`, and the dataset in `source`."""
    rows = rows.drop_columns([c for c in ("op",) if c in rows.column_names])
    return rows.append_column(SOURCE_COLUMN, repeated(dataset_id, rows.num_rows, pa.string()))


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


MAX_DECIMAL_DIGITS = 38  # what pgpq encodes (decimal128)


def _copy_schema(schema: pa.Schema, label: str) -> pa.Schema:
    for f in schema:
        if pa.types.is_decimal(f.type) and f.type.precision > MAX_DECIMAL_DIGITS:
            raise WarehouseSchemaError(
                f"{label}: column {f.name!r} is {f.type}: numbers of more than "
                f"{MAX_DECIMAL_DIGITS} digits cannot be loaded (binary COPY through pgpq); "
                "declare the column float64 or string in normalize.schema"
            )
    return pa.schema([pa.field(f.name, copy_type(f.type)) for f in schema])


class _Stopped(Exception):
    """The reader of a `_BinaryCopy` is gone."""


class _BinaryCopy:
    """The data of `COPY ... FROM STDIN (FORMAT binary)` as a file psycopg2 reads: Arrow
    batches encoded by pgpq on a thread, a few chunks ahead, while the client sends the
    previous ones and the server parses them (psycopg2 sends without the GIL)."""

    AHEAD = 4  # encoded batches waiting at most

    def __init__(self, batches: Iterable[pa.Table], schema: pa.Schema, target: str):
        self.rows = 0
        self._schema, self._target = schema, target
        self._chunks: queue.Queue = queue.Queue(maxsize=self.AHEAD)
        self._stop = threading.Event()
        self._pending = memoryview(b"")
        self._ended = False
        self.error: BaseException | None = None  # what stopped the encoding, if anything
        self._thread = threading.Thread(target=self._encode, args=(iter(batches),), daemon=True)
        self._thread.start()

    def _encode(self, batches: Iterator[pa.Table]) -> None:
        try:
            encoder = ArrowToPostgresBinaryEncoder(self._schema)
            self._hand(encoder.write_header())
            for table in batches:
                table = self._conform(table)
                for batch in table.to_batches():
                    self._hand(encoder.write_batch(batch))
                self.rows += table.num_rows
            self._hand(encoder.finish())
            self._hand(None)
        except _Stopped:  # the COPY ended early (it failed): nothing more to read
            return
        except BaseException as exc:  # raised again in the reading thread
            try:
                self._hand(exc)
            except _Stopped:
                return

    def _conform(self, table: pa.Table) -> pa.Table:
        try:
            return pa.table(
                [self._column(table[f.name], f.type) for f in self._schema], self._schema
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as exc:
            raise WarehouseSchemaError(
                f"{self._target}: rows cannot be loaded as "
                f"{', '.join(f'{f.name} {f.type}' for f in self._schema)}: {exc}"
            ) from None

    @staticmethod
    def _column(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            # PostgreSQL keeps microseconds: round to them, as its text input would
            column = pc.round_temporal(column, unit="microsecond").cast(target, safe=False)
        return column.cast(target)

    def _hand(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def read(self, size: int = -1) -> bytes:
        while not len(self._pending):
            if self._ended:
                return b""
            item = self._chunks.get()
            if item is None:
                self._ended = True
                return b""
            if isinstance(item, BaseException):
                self._ended, self.error = True, item
                raise item
            self._pending = memoryview(item)
        size = len(self._pending) if size is None or size < 0 else size
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return bytes(chunk)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


COPY_CHUNK = 1 << 20  # bytes psycopg2 asks for (and sends) at a time


def _type_name(declared: str) -> str:
    """information_schema's data_type for a declared type ('numeric(10,2)' -> 'numeric')."""
    return declared.split("(")[0]


TEXT_TYPES = ("text", "character varying")
# Collations that order text as its UTF-8 bytes: "C" orders it the same, and PostgreSQL then
# compares by memcmp and sorts on abbreviated keys (a text primary key builds about twice as
# fast as under "C.UTF-8").
BYTE_ORDER_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8"})


def _orders_by_bytes(collation: str) -> bool:
    return collation in BYTE_ORDER_COLLATIONS


class Warehouse:
    def __init__(self, url: str):
        self.url = url

    def connect(self):
        return psycopg2.connect(self.url)

    def _ensure_ledger(self, cursor) -> None:
        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (dataset text NOT NULL, version text NOT NULL, "
                "partition text, target text NOT NULL, rows_inserted bigint NOT NULL, "
                "rows_updated bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (dataset, version))"
            ).format(sql.Identifier(LEDGER))
        )

    def loaded_versions(self, dataset_id: str) -> set[str]:
        with self.connect() as connection, connection.cursor() as cursor:
            self._ensure_ledger(cursor)
            cursor.execute(
                sql.SQL("SELECT version FROM {} WHERE dataset = %s").format(sql.Identifier(LEDGER)),
                (dataset_id,),
            )
            return {row[0] for row in cursor.fetchall()}

    def _columns(self, cursor, schema: str, table: str) -> dict[str, str]:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        )
        return dict(cursor.fetchall())

    @staticmethod
    def _default_collation(cursor) -> str:
        cursor.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        return cursor.fetchone()[0]

    def _ensure_table(
        self, cursor, schema: str, table: str, columns: dict[str, str], keys: list[str]
    ) -> None:
        target = sql.Identifier(schema, table)
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        existing = self._columns(cursor, schema, table)
        if not existing:
            bytewise = _orders_by_bytes(self._default_collation(cursor))
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

    def load(
        self,
        dataset_id: str,
        version: str,
        partition: str | None,
        rows: "pa.Table | Iterable[pa.Table]",
        primary_keys: list[str],
        schema: str,
        table: str,
    ) -> LoadResult:
        """Upsert one published version's rows (its inserts and updates, as one table or in
        batches that all have the same columns); a no-op if it is in the ledger."""
        batches = iter([rows] if isinstance(rows, pa.Table) else rows)
        first = next(batches, None)
        if first is None:
            first = pa.table({})
        rows = _for_table(first, dataset_id)
        columns = {field.name: pg_type(field.type) for field in rows.schema}
        more = (_for_table(batch, dataset_id) for batch in batches)
        keys = [SOURCE_COLUMN, *primary_keys]
        target = sql.Identifier(schema, table)
        with self.connect() as connection, connection.cursor() as cursor:
            self._ensure_ledger(cursor)
            cursor.execute(
                sql.SQL("SELECT 1 FROM {} WHERE dataset = %s AND version = %s FOR UPDATE").format(
                    sql.Identifier(LEDGER)
                ),
                (dataset_id, version),
            )
            if cursor.fetchone():
                return LoadResult(version, 0, 0, already_loaded=True)
            inserted = updated = 0
            if rows.num_rows:  # an empty version (publish_empty) only records its ledger row
                self._ensure_table(cursor, schema, table, columns, keys)
                batches = itertools.chain([rows], more)  # read one at a time, as COPY goes
                label = f"dataset {dataset_id}: table {target.as_string(cursor)}"
                inserted, updated = self._upsert(cursor, target, batches, rows.schema, keys, label)
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} (dataset, version, partition, target, rows_inserted, rows_updated) "
                    "VALUES (%s, %s, %s, %s, %s, %s)"
                ).format(sql.Identifier(LEDGER)),
                (dataset_id, version, partition, f"{schema}.{table}", inserted, updated),
            )
        return LoadResult(version, inserted, updated, already_loaded=False)

    def _upsert(
        self,
        cursor,
        target,
        batches: Iterable[pa.Table],
        schema: pa.Schema,
        keys: list[str],
        label: str,
    ) -> tuple[int, int]:
        columns = {field.name: pg_type(field.type) for field in schema}
        names = list(columns)
        copy_schema = _copy_schema(schema, label)
        column_list = sql.SQL(", ").join(map(sql.Identifier, names))

        def copy_into(table) -> int:
            copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
                table, column_list
            )
            stream = _BinaryCopy(batches, copy_schema, label)
            try:
                cursor.copy_expert(copy.as_string(cursor), stream, size=COPY_CHUNK)
            except psycopg2.Error:
                if stream.error is not None:  # psycopg2 reports it as a cancelled COPY
                    raise stream.error from None
                raise
            finally:
                stream.close()
            return stream.rows

        if self._is_empty(cursor, target):  # first load: no conflicts possible, COPY in place
            return self._bulk_load(cursor, target, copy_into), 0
        staging = sql.Identifier("ingest_staging")
        definitions = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(columns[n])) for n in names
        )
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(staging, definitions)
        )
        copy_into(staging)
        updates = [n for n in names if n not in keys]
        statement = sql.SQL(
            "WITH upserted AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {staging} "
            "ON CONFLICT ({keys}) DO UPDATE SET {sets} "
            "WHERE t.row_hash IS DISTINCT FROM excluded.row_hash "
            "RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted"
        ).format(
            target=target,
            cols=column_list,
            staging=staging,
            keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
            sets=sql.SQL(", ").join(
                sql.SQL("{} = excluded.{}").format(sql.Identifier(n), sql.Identifier(n))
                for n in updates
            ),
        )
        cursor.execute(statement)
        inserted, updated = cursor.fetchone()
        return inserted, updated

    def _bulk_load(self, cursor, target, copy_into) -> int:
        """COPY into the empty table without its primary key, then build the key once (a
        sorted build, 3x faster than checking row by row). All in the load's transaction: a
        failure leaves the table as it was."""
        cursor.execute(
            sql.SQL(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = {}::regclass AND contype = 'p'"
            ).format(sql.Literal(target.as_string(cursor)))
        )
        found = cursor.fetchone()
        if found is None:
            return copy_into(target)
        name, definition = found
        cursor.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(target, sql.Identifier(name))
        )
        count = copy_into(target)
        cursor.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                target, sql.Identifier(name), sql.SQL(definition)
            )
        )
        return count

    def _is_empty(self, cursor, target) -> bool:
        cursor.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(target))
        return cursor.fetchone()[0]

    def forget(self, dataset_id: str, schema: str, table: str) -> None:
        """Delete a dataset's rows and ledger entries (before a rebuild from the published store)."""
        with self.connect() as connection, connection.cursor() as cursor:
            self._ensure_ledger(cursor)
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE dataset = %s").format(sql.Identifier(LEDGER)),
                (dataset_id,),
            )
            if self._columns(cursor, schema, table):
                cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                        sql.Identifier(schema, table), sql.Identifier(SOURCE_COLUMN)
                    ),
                    (dataset_id,),
                )
