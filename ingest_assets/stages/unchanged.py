"""Whether a run of a dataset would find nothing to do, told without running it: its source
is one local file (unpartitioned) holding the bytes the current published version was made of,
under the same contract, with no follow-up left to finish, its key index and projections at
the current version, and no warehouse to load. `ingest run --all --if-changed` (`make demo`)
skips such a dataset without starting a Dagster run."""

from ingest_assets import eventstore
from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore import follow_ups, index, projections
from ingest_assets.sources.fetch import fetch
from ingest_assets.stages.staged import input_fingerprint, made_of
from ingest_resources.errors import IngestError
from ingest_resources.runtime import Runtime


def unchanged_since(rt: Runtime, config: DatasetConfig) -> str | None:
    """The current version when a run would publish nothing new and leave nothing else done;
    None when a run is needed, or it cannot be told without one: an HTTP or S3 source, a
    landing zone (its run lists the files), a partitioned dataset (a run takes the latest
    partition, or the new files)."""
    if config.source.kind != "file" or config.source.is_landing:
        return None
    if config.partitions.kind != "none":
        return None
    if config.publish.postgres is not None and rt.warehouse is not None:
        return None  # the warehouse may lack a version: its run tells
    store, dataset_id = rt.store, config.dataset_id
    current, _ = eventstore.read_current(store, dataset_id)
    if current is None or not current.fingerprint:
        return None
    if follow_ups.pending(store, dataset_id):
        return None  # a follow-up (index, projections, notification) is left to finish
    if index.indexed_version(store, dataset_id) != current.version:
        return None  # the key index is behind: a run brings it up to date
    if config.publish.object_store and projections.state_version(store, dataset_id) != (
        current.version
    ):
        return None  # so are the projections
    try:
        fetched = fetch(config)
    except (IngestError, OSError):
        return None  # a missing or refused file: the run says what it is
    if fetched.path is None:
        return None
    sha256, _ = fetched.sha256_and_size()
    fingerprint = input_fingerprint(config, made_of(sha256, fetched.content_type))
    return current.version if fingerprint == current.fingerprint else None
