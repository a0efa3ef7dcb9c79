"""The PostgreSQL warehouse: an idempotent, ledgered upsert of published event versions.

One version loads in one transaction (`load`):
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
add it again) is loaded as `table_column(name)` (`ingest_resources.postgres_names`). A failure
names the dataset, table and version, says whether the version was loaded, and shows what
PostgreSQL said.

Modules: `load` (Warehouse, LoadResult: the transaction and the upsert), `ledger`, `schema`
(create and evolve the table), `columns` (names and types of the rows in PostgreSQL, and
WarehouseSchemaError), `binary_copy` (the COPY's data), `advisory_locks`, `server` (what
PostgreSQL said).
"""

from ingest_resources.warehouse.advisory_locks import lock_key
from ingest_resources.warehouse.columns import WarehouseSchemaError, copy_type, pg_type
from ingest_resources.warehouse.ledger import LEDGER
from ingest_resources.warehouse.load import LoadResult, Warehouse
from ingest_resources.warehouse.server import server_message

__all__ = [
    "LEDGER",
    "LoadResult",
    "Warehouse",
    "WarehouseSchemaError",
    "copy_type",
    "lock_key",
    "pg_type",
    "server_message",
]
