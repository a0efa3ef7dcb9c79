"""Dagster concurrency pools of a dataset's assets (docs/deploy.md, "Concurrency").

- `ingest/dataset/<dataset_id>` on `published` and `warehouse`: the steps that write a dataset's
  published data. With the pool limit 1 (`concurrency: pools: default_limit: 1` in the instance config)
  one such step runs at a time per dataset across the whole installation, whatever the executor
  (in-process, multiprocess, Celery, Kubernetes): a second run's publish waits for the slot.
- `ingest/fetch/<host>` on the `raw` step of an HTTP source: concurrent fetches from one host,
  across every dataset and run, are bounded by that pool's limit (1 by default; raise it for a
  host with `dagster instance concurrency set ingest/fetch/<host> N`). A pool rather than a lock
  in the HTTP client: a waiting step holds no process or worker, Dagster shows what it waits for,
  and the limit is changed at run time without a deploy.

A step has at most one pool, so `raw` is not in the dataset's pool: fetching writes only
content-addressed raw files, which concurrent runs may write alike.
"""

from urllib.parse import urlsplit

from ingest_assets.contract import DatasetConfig

DATASET_POOL = "ingest/dataset/{dataset_id}"
# the run tag the run queue limits to one run per dataset (`tag_concurrency_limits` in the
# instance config, docs/deploy.md): on every run Ingest asks for (sensors, schedules, the CLI)
DATASET_TAG = "ingest/dataset"
FETCH_POOL = "ingest/fetch/{host}"
WRITERS = ("published", "warehouse")


def run_tags(config: DatasetConfig, **more: str) -> dict[str, str]:
    """The tags of a run of the dataset: `ingest/dataset`, and `more`."""
    return {DATASET_TAG: config.dataset_id, **more}


def asset_pool(stage: str, config: DatasetConfig) -> str | None:
    """The pool a stage's step runs in, or None."""
    if stage in WRITERS:
        return DATASET_POOL.format(dataset_id=config.dataset_id)
    if stage == "raw" and config.source.kind == "http" and config.source.url:
        host = urlsplit(config.source.url).hostname
        return FETCH_POOL.format(host=host.lower()) if host else None
    return None
