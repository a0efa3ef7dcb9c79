"""Advisory locks: loads of one table, one at a time. A load takes transaction-scoped locks on
its dataset and its table before it reads the ledger or creates anything; the ledger and a
schema are created, when missing, under a lock of their own."""

import hashlib

from psycopg2.extensions import cursor as Cursor

LOCK_NAMESPACE = "ingest warehouse"


def lock_key(kind: str, *names: str) -> int:
    """The 64-bit key of `pg_advisory_xact_lock` for a dataset ("dataset", id), a table
    ("table", schema, table), a schema ("schema", name) or the ledger ("ledger", name): the
    first 8 bytes of the sha1 of the names, NUL-separated, as a signed bigint (the names cannot
    run into each other, and another application's keys are unlikely to meet ours)."""
    digest = hashlib.sha1("\x00".join((LOCK_NAMESPACE, kind, *names)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def hold_lock(cursor: Cursor, kind: str, *names: str) -> None:
    """Wait for the lock, held until the transaction ends (commit or rollback, or the
    connection is lost: the server releases it)."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(kind, *names),))
