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

Concurrent loads: a load takes transaction-scoped advisory locks (`lock_key`) on its dataset
and on its table before it reads the ledger or creates anything, so two loads of one table run
one after the other (the second finds the version in the ledger and does nothing); the ledger
and a schema are created, when missing, under a lock of their own.

Names: a column name over 63 bytes of UTF-8 (PostgreSQL would cut it, and the next load would
add it again) is loaded as `table_column(name)`. A failure names the dataset, table and version,
says whether the version was loaded, and shows what PostgreSQL said.
"""

import ctypes
import dataclasses
import functools
import hashlib
import itertools
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg2 import sql

from ingest_assets.contract.models import POSTGRES_NAME_BYTES
from ingest_assets.rows.arrays import repeated
from ingest_resources.errors import WarehouseError

LEDGER = "ingest_loads"
SOURCE_COLUMN = "source"
WIDENINGS = {("bigint", "double precision"), ("integer", "bigint"), ("character varying", "text")}


class WarehouseSchemaError(WarehouseError):
    """The table cannot take the contract's columns without losing data."""


@dataclass(frozen=True)
class LoadResult:
    version: str
    inserted: int
    updated: int
    already_loaded: bool
    renamed: dict[str, str] = dataclasses.field(
        default_factory=dict
    )  # column -> its name in the table


NAME_HEAD_BYTES = POSTGRES_NAME_BYTES - 9  # what a long name keeps, before "_" and 8 hex digits


@functools.lru_cache(maxsize=4096)
def table_column(name: str) -> str:
    """The column's name in PostgreSQL. A name of at most 63 bytes in UTF-8 is kept as written;
    a longer one, which PostgreSQL would cut to 63 bytes (so the next load, not finding the
    full name, would add it again and fail), becomes its first 54 bytes (whole characters) +
    "_" + the first 8 hex digits of the sha1 of the whole name: at most 63 bytes, the same on
    every load, and two long names that share their first 54 bytes still differ."""
    encoded = name.encode()
    if len(encoded) <= POSTGRES_NAME_BYTES:
        return name
    head = encoded[:NAME_HEAD_BYTES].decode("utf-8", errors="ignore")  # no half character
    return f"{head}_{hashlib.sha1(encoded).hexdigest()[:8]}"


def _quoted(*names: str) -> str:
    """`"schema"."table"`, quoted as psycopg2.sql.Identifier quotes it (for messages)."""
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


def _check_target(schema: str, table: str, label: str) -> None:
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


def _for_table(rows: pa.Table, dataset_id: str) -> pa.Table:
    """The columns as the table holds them: no `op`, names that fit PostgreSQL
    (`table_column`), and the dataset in `source`."""
    rows = rows.drop_columns([c for c in ("op",) if c in rows.column_names])
    rows = rows.rename_columns([table_column(name) for name in rows.column_names])
    return rows.append_column(SOURCE_COLUMN, repeated(dataset_id, rows.num_rows, pa.string()))


def _renamed_note(renamed: dict[str, str]) -> str:
    if not renamed:
        return ""
    pairs = "; ".join(f"{name[:80]!r} -> {column!r}" for name, column in renamed.items())
    return f" (columns over {POSTGRES_NAME_BYTES} bytes are loaded as: {pairs})"


# --- advisory locks: loads of one table, one at a time ------------------------------------------

LOCK_NAMESPACE = "ingest warehouse"


def lock_key(kind: str, *names: str) -> int:
    """The 64-bit key of `pg_advisory_xact_lock` for a dataset ("dataset", id), a table
    ("table", schema, table), a schema ("schema", name) or the ledger ("ledger", name): the
    first 8 bytes of the sha1 of the names, NUL-separated, as a signed bigint (the names cannot
    run into each other, and another application's keys are unlikely to meet ours)."""
    digest = hashlib.sha1("\x00".join((LOCK_NAMESPACE, kind, *names)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock(cursor, kind: str, *names: str) -> None:
    """Wait for the lock, held until the transaction ends (commit or rollback, or the
    connection is lost: the server releases it)."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(kind, *names),))


# --- what PostgreSQL said -----------------------------------------------------------------------


@functools.cache
def _libpq_error_message():
    """libpq's PQerrorMessage, from the very libpq psycopg2 runs on (looked up through its
    extension module, which links it); None where that cannot be done."""
    try:
        function = ctypes.CDLL(psycopg2._psycopg.__file__).PQerrorMessage
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_char_p
    function.argtypes = [ctypes.c_void_p]
    return function


SERVER_LINE = re.compile(r"^([A-Z]+):  (.+)$")  # how libpq writes a server message's lines


def _said_before_closing(connection) -> list[str]:
    """What the server said as it ended the connection ('FATAL: terminating connection due to
    administrator command'). libpq keeps it in PQerrorMessage, but psycopg2's exception holds
    only the client's last words ('server closed the connection unexpectedly', or 'invalid
    socket' in a COPY): psycopg/psycopg2#1689. `connection.pgconn_ptr` is psycopg2's handle
    for calling libpq (documented); it stays valid until the connection is closed."""
    function, pointer = _libpq_error_message(), getattr(connection, "pgconn_ptr", None)
    if function is None or pointer is None:
        return []
    text = (function(pointer) or b"").decode("utf-8", errors="replace")
    found = (SERVER_LINE.match(line) for line in text.splitlines())
    return [f"{m[1]}: {m[2].strip()}" for m in found if m]


def server_message(exc: psycopg2.Error, connection=None) -> str:
    """What PostgreSQL said (its primary message, detail and SQLSTATE; or, when it ended the
    connection, the lines libpq kept), else psycopg2's own text (a refused connection); and
    whether the connection was lost. Never the connection URL (it may hold a password)."""
    lost = connection is not None and bool(connection.closed)
    primary = exc.diag.message_primary
    if primary:
        text = primary
        if exc.diag.message_detail:
            text += f" ({exc.diag.message_detail})"
        if exc.pgcode:
            text += f" [SQLSTATE {exc.pgcode}]"
    else:
        said = _said_before_closing(connection) if lost else []
        text = "; ".join(said) or " ".join(str(exc).split())
    if lost:
        text += "; the connection to PostgreSQL was lost"
    return f"PostgreSQL: {text}"


def _rollback_quietly(connection) -> None:
    """Roll back if the connection still stands; a lost connection's transaction was rolled
    back by the server (and rolling back again would only say 'connection already closed')."""
    if connection.closed:
        return
    with suppress(psycopg2.Error):
        connection.rollback()


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


@dataclass(frozen=True)
class _Job:
    """One version's load: what it is, and where it goes."""

    dataset_id: str
    version: str
    partition: str | None
    schema: str
    table: str
    primary_keys: list[str]

    @property
    def label(self) -> str:
        return f"dataset {self.dataset_id}: table {_quoted(self.schema, self.table)}"


class Warehouse:
    def __init__(self, url: str):
        self.url = url

    def connect(self):
        return psycopg2.connect(self.url)

    def _connect(self, label: str):
        """A connection whose transactions are READ COMMITTED whatever the server's default:
        each statement sees what committed before it, so a load that waited for another's
        lock finds that load's ledger row (a REPEATABLE READ snapshot, taken before the wait,
        would not)."""
        try:
            connection = self.connect()
            connection.set_session(isolation_level="READ COMMITTED")
            return connection
        except psycopg2.Error as exc:
            raise WarehouseError(f"{label}: cannot connect: {server_message(exc)}") from exc

    @contextmanager
    def _transaction(self, label: str) -> Iterator:
        """A cursor in one transaction, committed at the end; a failure is rolled back and
        raised as a WarehouseError with the server's message (not psycopg2's 'connection
        already closed' of a rollback on a lost connection)."""
        connection = self._connect(label)
        cursor = connection.cursor()
        try:
            yield cursor
            connection.commit()
        except psycopg2.Error as exc:
            said = server_message(exc, connection)  # (before a rollback clears libpq's)
            _rollback_quietly(connection)
            raise WarehouseError(f"{label}: {said}") from exc
        except BaseException:
            _rollback_quietly(connection)
            raise
        finally:
            connection.close()

    def _ensure_ledger(self, cursor) -> None:
        """Create the ledger if it is missing, under a lock: concurrent `CREATE TABLE IF NOT
        EXISTS` of one table race in the catalog (the loser fails on a duplicate key of
        pg_type); the lock, held until the creator commits, makes the others find it."""
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (LEDGER,))
        if cursor.fetchone()[0]:
            return
        _lock(cursor, "ledger", LEDGER)
        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (dataset text NOT NULL, version text NOT NULL, "
                "partition text, target text NOT NULL, rows_inserted bigint NOT NULL, "
                "rows_updated bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (dataset, version))"
            ).format(sql.Identifier(LEDGER))
        )

    def loaded_versions(self, dataset_id: str) -> set[str]:
        with self._transaction(f"dataset {dataset_id}: reading the ledger {LEDGER}") as cursor:
            self._ensure_ledger(cursor)
            cursor.execute(
                sql.SQL("SELECT version FROM {} WHERE dataset = %s").format(sql.Identifier(LEDGER)),
                (dataset_id,),
            )
            return {row[0] for row in cursor.fetchall()}

    def _in_ledger(self, dataset_id: str, version: str) -> bool | None:
        """Whether the ledger has the version, on a new connection (None: it cannot be read)."""
        try:
            connection = self.connect()
        except psycopg2.Error:
            return None
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("SELECT 1 FROM {} WHERE dataset = %s AND version = %s").format(
                        sql.Identifier(LEDGER)
                    ),
                    (dataset_id, version),
                )
                return cursor.fetchone() is not None
        except psycopg2.Error:
            return None
        finally:
            connection.close()

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

    @staticmethod
    def _ensure_schema(cursor, schema: str) -> None:
        """Create the schema if it is missing, under a lock of its own (tables of one schema
        load at once, and concurrent `CREATE SCHEMA IF NOT EXISTS` race on pg_namespace); an
        existing schema needs neither the lock nor the right to create schemas."""
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if cursor.fetchone():
            return
        _lock(cursor, "schema", schema)
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))

    def _ensure_table(
        self, cursor, schema: str, table: str, columns: dict[str, str], keys: list[str]
    ) -> None:
        target = sql.Identifier(schema, table)
        self._ensure_schema(cursor, schema)
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
        batches that all have the same columns); a no-op if it is in the ledger. Loads of one
        table wait for each other (advisory locks); a failure raises WarehouseError (or
        WarehouseSchemaError) saying whether the version was loaded."""
        job = _Job(dataset_id, version, partition, schema, table, primary_keys)
        _check_target(schema, table, job.label)
        batches = iter([rows] if isinstance(rows, pa.Table) else rows)
        first = next(batches, None)
        if first is None:
            first = pa.table({})
        names = [name for name in first.column_names if name != "op"]
        mapped = _table_columns(names, job.label)
        renamed = {name: column for name, column in mapped.items() if name != column}
        failed = f"{job.label}: version {version} not loaded{_renamed_note(renamed)}"
        connection = self._connect(failed)
        try:
            cursor = connection.cursor()
            try:
                inserted, updated, already = self._load_in(cursor, job, first, batches)
            except psycopg2.Error as exc:
                said = server_message(exc, connection)  # (before a rollback clears libpq's)
                _rollback_quietly(connection)
                raise WarehouseError(
                    f"{failed} (its transaction was rolled back; the next run loads it): {said}"
                ) from exc
            except BaseException:
                _rollback_quietly(connection)
                raise
            self._commit(connection, job)
        finally:
            connection.close()
        return LoadResult(version, inserted, updated, already_loaded=already, renamed=renamed)

    def _commit(self, connection, job: "_Job") -> None:
        """Commit. If the commit fails, ask the ledger: a connection lost during the commit
        may have committed it (then the load succeeded) or not."""
        try:
            connection.commit()
        except psycopg2.Error as exc:
            said = server_message(exc, connection)  # (before a rollback clears libpq's)
            _rollback_quietly(connection)
            loaded = self._in_ledger(job.dataset_id, job.version)
            if loaded:
                return
            outcome = {
                False: "not loaded (the ledger does not have it; the next run loads it)",
                None: f"whether it was loaded is unknown: see the ledger {LEDGER} (the next "
                "run loads it if it is not there)",
            }[loaded]
            raise WarehouseError(
                f"{job.label}: version {job.version}: the commit failed, {outcome}: {said}"
            ) from exc

    def _load_in(
        self, cursor, job: "_Job", first: pa.Table, more: Iterator[pa.Table]
    ) -> tuple[int, int, bool]:
        """The load's statements, in the caller's transaction: the locks first, then the
        ledger check, the table, the rows and the ledger row. (inserted, updated, already)."""
        rows = _for_table(first, job.dataset_id)
        columns = {field.name: pg_type(field.type) for field in rows.schema}
        keys = [SOURCE_COLUMN, *map(table_column, job.primary_keys)]
        self._ensure_ledger(cursor)
        _lock(cursor, "dataset", job.dataset_id)
        _lock(cursor, "table", job.schema, job.table)
        cursor.execute(
            sql.SQL("SELECT 1 FROM {} WHERE dataset = %s AND version = %s FOR UPDATE").format(
                sql.Identifier(LEDGER)
            ),
            (job.dataset_id, job.version),
        )
        if cursor.fetchone():
            return 0, 0, True
        inserted = updated = 0
        if rows.num_rows:  # an empty version (publish_empty) only records its ledger row
            self._ensure_table(cursor, job.schema, job.table, columns, keys)
            rest = (_for_table(batch, job.dataset_id) for batch in more)
            chained = itertools.chain([rows], rest)  # read one at a time, as COPY goes
            target = sql.Identifier(job.schema, job.table)
            inserted, updated = self._upsert(cursor, target, chained, rows.schema, keys, job.label)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (dataset, version, partition, target, rows_inserted, rows_updated) "
                "VALUES (%s, %s, %s, %s, %s, %s)"
            ).format(sql.Identifier(LEDGER)),
            (
                job.dataset_id,
                job.version,
                job.partition,
                f"{job.schema}.{job.table}",
                inserted,
                updated,
            ),
        )
        return inserted, updated, False

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
        """Delete a dataset's rows and ledger entries (before a rebuild from the published store),
        under the locks a load takes: not in the middle of one."""
        label = f"dataset {dataset_id}: table {_quoted(schema, table)}: forgetting its rows"
        with self._transaction(label) as cursor:
            self._ensure_ledger(cursor)
            _lock(cursor, "dataset", dataset_id)
            _lock(cursor, "table", schema, table)
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
