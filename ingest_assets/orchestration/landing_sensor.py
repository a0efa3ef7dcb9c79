"""The sensor of a landing zone: a cheap listing compared with the published files ledger.

- `files` partitions: each new or changed file becomes a dynamic partition (added in the same
  tick) and gets its own run, with run_key = dataset, path and change stamp (ETag, or the
  local mtime): a file is requested once however often the sensor ticks;
- time partitions: the latest complete partition, when its glob shows a new file;
- unpartitioned: one run, when the zone shows a new file.

The run keys of the last two name the new files (a digest of their paths and stamps), so the
same new files are requested once. At most `source.max_files_per_run` files per tick. A listing
error is reported on the tick; nothing is requested.
"""

import datetime as dt
import hashlib
from typing import TYPE_CHECKING

import dagster as dg

from ingest_assets.contract import DatasetConfig
from ingest_assets.orchestration.automation import dataset_keys, partition_at
from ingest_assets.orchestration.partitions import files_partitions_name

if TYPE_CHECKING:  # (the listing brings in the source clients: only when the sensor ticks)
    from ingest_assets.sources.listing import LandingFile


def landing_tick(
    config: DatasetConfig, new: "list[LandingFile]", known: set[str], partition: str | None
) -> tuple[list[dg.RunRequest], list[str]]:
    """(run requests, partitions to add) for the new files of one tick. Pure."""
    keys = dataset_keys(config)
    if config.partitions.kind == "files":
        requests = [
            dg.RunRequest(
                run_key=f"{config.dataset_id}:{f.name}:{f.stamp}",
                partition_key=f.name,
                asset_selection=keys,
                tags={"ingest/file": f.name[:200]},
            )
            for f in new
        ]
        return requests, [f.name for f in new if f.name not in known]
    if not new:
        return [], []
    digest = hashlib.sha256("\n".join(f"{f.name}\t{f.stamp}" for f in new).encode()).hexdigest()
    request = dg.RunRequest(
        run_key=f"{config.dataset_id}:{partition or 'all'}:{digest[:32]}",
        partition_key=partition,
        asset_selection=keys,
        tags={"ingest/new_files": str(len(new))},
    )
    return [request], []


def landing_sensor(config: DatasetConfig) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{config.dataset_id}__new_files",
        minimum_interval_seconds=config.sensor.interval_s,
        asset_selection=dataset_keys(config),
        description=f"Runs {config.dataset_id} for the new files of its landing zone",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        # (the data path: imported when the sensor ticks, never while the code location loads)
        from ingest_assets.stages.landing import landing_zone, new_files, published_files
        from ingest_resources.resource import IngestResource

        partition = None
        if config.partitions.is_time:
            partition = partition_at(config, dt.datetime.now(dt.UTC))
            if partition is None:
                return dg.SensorResult(skip_reason="no complete partition yet")
        try:
            runtime = IngestResource.from_env().runtime()
            where = landing_zone(config, partition or "all")
            new = new_files(config, where, published_files(runtime, config))
        except Exception as exc:  # noqa: BLE001 - any listing error: report, retry next tick
            return dg.SensorResult(skip_reason=f"listing failed, will retry next tick: {exc}")
        name = files_partitions_name(config.dataset_id)
        known = (
            set(context.instance.get_dynamic_partitions(name))
            if config.partitions.kind == "files"
            else set()
        )
        requests, added = landing_tick(config, new, known, partition)
        if not requests:
            return dg.SensorResult(skip_reason=f"no new file in {where.glob}")
        additions = [dg.AddDynamicPartitionsRequest(name, added)] if added else []
        return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=additions)

    return _sensor
