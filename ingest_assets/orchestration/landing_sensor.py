"""The sensor of a landing zone: a cheap listing compared with the published files ledger.

- `files` partitions: each new or changed file becomes a dynamic partition (added in the same
  tick) and gets its own run, with run_key = dataset, path and change stamp (ETag, or the
  local mtime): a file is requested once however often the sensor ticks;
- time partitions: each complete partition whose glob shows a new file (one listing of every
  partition's files, each file's partition read back from its path: late files included);
- unpartitioned: one run, when the zone shows a new file.

The run keys of the last two name the new files (a digest of their paths and stamps), so the
same new files are requested once. At most `source.max_files_per_run` files per tick. A listing
error is reported on the tick; nothing is requested.
"""

import hashlib
from typing import TYPE_CHECKING

import dagster as dg

from ingest_assets.contract import DatasetConfig
from ingest_assets.orchestration.automation import dataset_keys, dataset_sensor
from ingest_assets.orchestration.partitions import files_partitions_name, partitions_definition
from ingest_assets.orchestration.pools import run_tags

if TYPE_CHECKING:  # (the listing brings in the source clients: only when the sensor ticks)
    from ingest_assets.sources.listing import LandingFile
    from ingest_resources.runtime import Runtime


def landing_tick(
    config: DatasetConfig, new: "dict[str | None, list[LandingFile]]", known: set[str]
) -> tuple[list[dg.RunRequest], list[str]]:
    """(run requests, partitions to add) for the new files of one tick, by partition (None:
    unpartitioned). Pure."""
    keys = dataset_keys(config)
    if config.partitions.kind == "files":
        files = [f for group in new.values() for f in group]
        requests = [
            dg.RunRequest(
                run_key=f"{config.dataset_id}:{f.name}:{f.stamp}",
                partition_key=f.name,
                asset_selection=keys,
                tags=run_tags(config, **{"ingest/file": f.name[:200]}),
            )
            for f in files
        ]
        return requests, [f.name for f in files if f.name not in known]
    requests = []
    for partition, files in sorted(new.items(), key=lambda item: item[0] or ""):
        text = "\n".join(f"{f.name}\t{f.stamp}" for f in files)
        digest = hashlib.sha256(text.encode()).hexdigest()
        requests.append(
            dg.RunRequest(
                run_key=f"{config.dataset_id}:{partition or 'all'}:{digest[:32]}",
                partition_key=partition,
                asset_selection=keys,
                tags=run_tags(config, **{"ingest/new_files": str(len(files))}),
            )
        )
    return requests, []


def by_partition(
    config: DatasetConfig, runtime: "Runtime"
) -> "tuple[dict[str | None, list[LandingFile]], str]":
    """The zone's new files by the partition they belong to (time partitions: every complete
    partition's, late files included), and the glob listed."""
    from ingest_assets.sources.dated import every_partition, file_time
    from ingest_assets.stages.landing import landing_zone, new_files, published_files

    ledger = published_files(runtime, config)
    if not config.partitions.is_time:
        where = landing_zone(config, "all")
        return {None: new_files(config, where, ledger)}, where.glob
    partitions = partitions_definition(config.partitions)
    assert partitions is not None  # (time partitions)
    where, pattern = every_partition(config)
    found: dict[str | None, list[LandingFile]] = {}
    for file in new_files(config, where, ledger, bounded=False):
        when = file_time(config, pattern, file.name)
        key = partitions.get_partition_key_for_timestamp(when.timestamp()) if when else None
        if key is not None and partitions.has_partition_key(key):  # (complete ones only)
            found.setdefault(key, []).append(file)
    return found, where.glob


def landing_sensor(config: DatasetConfig) -> dg.SensorDefinition:
    @dataset_sensor(
        config, "new_files", f"Runs {config.dataset_id} for the new files of its landing zone"
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from ingest_resources.resource import IngestResource  # (when the sensor ticks)

        try:
            new, glob = by_partition(config, IngestResource.from_env().runtime())
        except Exception as exc:  # noqa: BLE001 - any listing error: report, retry next tick
            return dg.SensorResult(skip_reason=f"listing failed, will retry next tick: {exc}")
        name = files_partitions_name(config.dataset_id)
        known = (
            set(context.instance.get_dynamic_partitions(name))
            if config.partitions.kind == "files"
            else set()
        )
        requests, added = landing_tick(config, {k: v for k, v in new.items() if v}, known)
        if not requests:
            return dg.SensorResult(skip_reason=f"no new file in {glob}")
        additions = [dg.AddDynamicPartitionsRequest(name, added)] if added else []
        return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=additions)

    return _sensor
