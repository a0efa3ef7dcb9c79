"""One published version into PostgreSQL: an idempotent, ledgered upsert in one transaction
(see the package's docstring for the steps)."""

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
import pyarrow as pa
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from ingest_resources.errors import WarehouseError
from ingest_resources.postgres_names import quoted, table_column
from ingest_resources.warehouse import ledger
from ingest_resources.warehouse.advisory_locks import hold_lock
from ingest_resources.warehouse.binary_copy import COPY_CHUNK, BinaryCopy
from ingest_resources.warehouse.columns import (
    SOURCE_COLUMN,
    check_target,
    copy_schema,
    for_table,
    pg_type,
    renamed_columns,
    renamed_note,
)
from ingest_resources.warehouse.schema import ensure_table, existing_columns
from ingest_resources.warehouse.server import rollback_quietly, server_message, single_row


@dataclass(frozen=True)
class LoadResult:
    version: str
    inserted: int
    updated: int
    already_loaded: bool
    renamed: dict[str, str] = dataclasses.field(
        default_factory=dict
    )  # column -> its name in the table


@dataclass(frozen=True)
class Job:
    """One version's load: what it is, and where it goes."""

    dataset_id: str
    version: str
    partition: str | None
    schema: str
    table: str
    primary_keys: list[str]

    @property
    def label(self) -> str:
        return f"dataset {self.dataset_id}: table {quoted(self.schema, self.table)}"


class Warehouse:
    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> Connection:
        return psycopg2.connect(self.url)

    def _connect(self, label: str) -> Connection:
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
    def _transaction(self, label: str) -> Iterator[Cursor]:
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
            rollback_quietly(connection)
            raise WarehouseError(f"{label}: {said}") from exc
        except BaseException:
            rollback_quietly(connection)
            raise
        finally:
            connection.close()

    def loaded_versions(self, dataset_id: str) -> set[str]:
        with self._transaction(
            f"dataset {dataset_id}: reading the ledger {ledger.LEDGER}"
        ) as cursor:
            ledger.ensure_ledger(cursor)
            return ledger.loaded_versions(cursor, dataset_id)

    def _in_ledger(self, dataset_id: str, version: str) -> bool | None:
        """Whether the ledger has the version, on a new connection (None: it cannot be read)."""
        try:
            connection = self.connect()
        except psycopg2.Error:
            return None
        try:
            with connection.cursor() as cursor:
                return ledger.has_version(cursor, dataset_id, version)
        except psycopg2.Error:
            return None
        finally:
            connection.close()

    def load(
        self,
        dataset_id: str,
        version: str,
        partition: str | None,
        rows: pa.Table | Iterable[pa.Table],
        primary_keys: list[str],
        schema: str,
        table: str,
    ) -> LoadResult:
        """Upsert one published version's rows (its inserts and updates, as one table or in
        batches that all have the same columns); a no-op if it is in the ledger. Loads of one
        table wait for each other (advisory locks); a failure raises WarehouseError (or
        WarehouseSchemaError) saying whether the version was loaded."""
        job = Job(dataset_id, version, partition, schema, table, primary_keys)
        check_target(schema, table, job.label)
        batches = iter([rows] if isinstance(rows, pa.Table) else rows)
        first = next(batches, None)
        if first is None:
            first = pa.table({})
        names = [name for name in first.column_names if name != "op"]
        renamed = renamed_columns(names, job.label)
        failed = f"{job.label}: version {version} not loaded{renamed_note(renamed)}"
        connection = self._connect(failed)
        try:
            cursor = connection.cursor()
            try:
                inserted, updated, already = self._load_in(cursor, job, first, batches)
            except psycopg2.Error as exc:
                said = server_message(exc, connection)  # (before a rollback clears libpq's)
                rollback_quietly(connection)
                raise WarehouseError(
                    f"{failed} (its transaction was rolled back; the next run loads it): {said}"
                ) from exc
            except BaseException:
                rollback_quietly(connection)
                raise
            self._commit(connection, job)
        finally:
            connection.close()
        return LoadResult(version, inserted, updated, already_loaded=already, renamed=renamed)

    def _commit(self, connection: Connection, job: Job) -> None:
        """Commit. If the commit fails, ask the ledger: a connection lost during the commit
        may have committed it (then the load succeeded) or not."""
        try:
            connection.commit()
        except psycopg2.Error as exc:
            said = server_message(exc, connection)  # (before a rollback clears libpq's)
            rollback_quietly(connection)
            loaded = self._in_ledger(job.dataset_id, job.version)
            if loaded:
                return
            outcome = {
                False: "not loaded (the ledger does not have it; the next run loads it)",
                None: f"whether it was loaded is unknown: see the ledger {ledger.LEDGER} (the next "
                "run loads it if it is not there)",
            }[loaded]
            raise WarehouseError(
                f"{job.label}: version {job.version}: the commit failed, {outcome}: {said}"
            ) from exc

    def _load_in(
        self, cursor: Cursor, job: Job, first: pa.Table, more: Iterator[pa.Table]
    ) -> tuple[int, int, bool]:
        """The load's statements, in the caller's transaction: the locks first, then the
        ledger check, the table, the rows and the ledger row. (inserted, updated, already)."""
        rows = for_table(first, job.dataset_id)
        columns = {field.name: pg_type(field.type) for field in rows.schema}
        keys = [SOURCE_COLUMN, *map(table_column, job.primary_keys)]
        ledger.ensure_ledger(cursor)
        hold_lock(cursor, "dataset", job.dataset_id)
        hold_lock(cursor, "table", job.schema, job.table)
        if ledger.has_version(cursor, job.dataset_id, job.version, for_update=True):
            return 0, 0, True
        inserted = updated = 0
        if rows.num_rows:  # an empty version (publish_empty) only records its ledger row
            ensure_table(cursor, job.schema, job.table, columns, keys)
            rest = (for_table(batch, job.dataset_id) for batch in more)
            chained = itertools.chain([rows], rest)  # read one at a time, as COPY goes
            target = sql.Identifier(job.schema, job.table)
            inserted, updated = self._upsert(cursor, target, chained, rows.schema, keys, job.label)
        where = f"{job.schema}.{job.table}"
        ledger.record(cursor, job.dataset_id, job.version, job.partition, where, inserted, updated)
        return inserted, updated, False

    def _upsert(
        self,
        cursor: Cursor,
        target: sql.Identifier,
        batches: Iterable[pa.Table],
        schema: pa.Schema,
        keys: list[str],
        label: str,
    ) -> tuple[int, int]:
        columns = {field.name: pg_type(field.type) for field in schema}
        names = list(columns)
        encoded = copy_schema(schema, label)
        column_list = sql.SQL(", ").join(map(sql.Identifier, names))

        def copy_into(table: sql.Identifier) -> int:
            copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
                table, column_list
            )
            stream = BinaryCopy(batches, encoded, label)
            try:
                # (a COPY FROM only calls read(); the stub asks for readline too)
                cursor.copy_expert(copy.as_string(cursor), stream, size=COPY_CHUNK)  # type: ignore[arg-type]
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
        inserted, updated = single_row(cursor)
        return int(inserted), int(updated)

    def _bulk_load(
        self, cursor: Cursor, target: sql.Identifier, copy_into: Callable[[sql.Identifier], int]
    ) -> int:
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

    def _is_empty(self, cursor: Cursor, target: sql.Identifier) -> bool:
        cursor.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(target))
        return bool(single_row(cursor)[0])

    def forget(self, dataset_id: str, schema: str, table: str) -> None:
        """Delete a dataset's rows and ledger entries (before a rebuild from the published store),
        under the locks a load takes: not in the middle of one."""
        label = f"dataset {dataset_id}: table {quoted(schema, table)}: forgetting its rows"
        with self._transaction(label) as cursor:
            ledger.ensure_ledger(cursor)
            hold_lock(cursor, "dataset", dataset_id)
            hold_lock(cursor, "table", schema, table)
            ledger.forget_dataset(cursor, dataset_id)
            if existing_columns(cursor, schema, table):
                cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                        sql.Identifier(schema, table), sql.Identifier(SOURCE_COLUMN)
                    ),
                    (dataset_id,),
                )
