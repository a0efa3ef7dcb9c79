"""The read API (`ingest serve`): the published data, its versions and the platform's health
over HTTP, with FastAPI under uvicorn. No Dagster on the data path.

Modules:
- app.py: `create_app`, the routes put together, the rate limit, JSON errors throughout;
  serve.py: `serve` (uvicorn); settings.py: ApiSettings from the environment
- routers/: datasets.py (/datasets, /versions, /quarantine), data.py (/data), ops.py
  (/health, /stats); common.py: their documented errors
- catalog.py: the datasets (configs loaded once), `current` and the chains (cached: manifests
  never change); every dataset id and version a client sends is looked up there, never used
  as a path
- snapshot.py: a dataset as of a version, a month at a time: each month's latest rows replayed
  from that month's immutable event files (`eventstore.replay`), sorted by series, time and
  key_hash, kept in cache.py's ByteLru (bounded by bytes)
- filters.py: series, from/to, q, columns; pages.py: pages and cursors over a snapshot;
  cursor.py: signed opaque cursors (HMAC-SHA256); output.py: JSON pages, streamed CSV,
  Parquet and Arrow IPC
- warehouse_reads.py: `source=warehouse`, keyset pages of the PostgreSQL table (SQL built
  from quoted identifiers and parameters only)
- auth.py: the API key; ratelimit.py: a token bucket per client address
- verifier.py: `ingest verify`'s verdict per current version, in a background thread
- dagster_runs.py: the Dagster instance's runs per dataset, for /health and /stats: the only
  module that imports Dagster, and only when one of those routes is called
- models.py: the responses' shapes (OpenAPI); errors.py: ApiError (IngestErrors with a status)

May import: `ingest_assets.contract`, `ingest_assets.eventstore` (its public API),
`ingest_assets.layout` (event keys' months), `ingest_assets.rows.hashing`,
`ingest_assets.settings`, `ingest_assets.stages.read_quarantine`, and `ingest_resources`
(the runtime, the object store, the warehouse's names and ledger). Not the Dagster wiring
(`orchestration`, `cli`, `definitions`); Dagster itself only in dagster_runs.py
(tests/test_layering.py checks it).
"""

from ingest_api.app import create_app
from ingest_api.serve import serve
from ingest_api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "serve"]
