"""The ledger, `ingest_loads`: one row per loaded (dataset, version), written in the load's own
transaction, so a version is in the ledger exactly when its rows are in the table."""

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from ingest_resources.warehouse.advisory_locks import hold_lock
from ingest_resources.warehouse.server import single_row

LEDGER = "ingest_loads"


def ensure_ledger(cursor: Cursor) -> None:
    """Create the ledger if it is missing, under a lock: concurrent `CREATE TABLE IF NOT
    EXISTS` of one table race in the catalog (the loser fails on a duplicate key of
    pg_type); the lock, held until the creator commits, makes the others find it."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (LEDGER,))
    if single_row(cursor)[0]:
        return
    hold_lock(cursor, "ledger", LEDGER)
    cursor.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (dataset text NOT NULL, version text NOT NULL, "
            "partition text, target text NOT NULL, rows_inserted bigint NOT NULL, "
            "rows_updated bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (dataset, version))"
        ).format(sql.Identifier(LEDGER))
    )


def loaded_versions(cursor: Cursor, dataset_id: str) -> set[str]:
    cursor.execute(
        sql.SQL("SELECT version FROM {} WHERE dataset = %s").format(sql.Identifier(LEDGER)),
        (dataset_id,),
    )
    return {str(row[0]) for row in cursor.fetchall()}


def has_version(cursor: Cursor, dataset_id: str, version: str, for_update: bool = False) -> bool:
    """Whether the ledger has the version; `for_update` locks its row until the transaction
    ends."""
    statement = "SELECT 1 FROM {} WHERE dataset = %s AND version = %s"
    cursor.execute(
        sql.SQL(statement + (" FOR UPDATE" if for_update else "")).format(sql.Identifier(LEDGER)),
        (dataset_id, version),
    )
    return cursor.fetchone() is not None


def record(
    cursor: Cursor,
    dataset_id: str,
    version: str,
    partition: str | None,
    target: str,
    inserted: int,
    updated: int,
) -> None:
    """The version's row, in the load's transaction."""
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (dataset, version, partition, target, rows_inserted, rows_updated) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(sql.Identifier(LEDGER)),
        (dataset_id, version, partition, target, inserted, updated),
    )


def forget_dataset(cursor: Cursor, dataset_id: str) -> None:
    cursor.execute(
        sql.SQL("DELETE FROM {} WHERE dataset = %s").format(sql.Identifier(LEDGER)),
        (dataset_id,),
    )
