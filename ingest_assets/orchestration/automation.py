"""Sensors and schedules from the contract: they replace checkpoint tables and cron scripts.

A sensor asks the source whether it changed (see `sources.probe`), keeps the last version seen
in its cursor, and requests one run per new version with `run_key` = that version, so a change
is ingested once even if the sensor ticks twice or the daemon restarts. A source error is
reported on the tick and leaves the cursor where it was. Both start stopped, like all of
Dagster's sensors and schedules.
"""

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg

from ingest_assets.contract import DatasetConfig
from ingest_assets.orchestration.partitions import partitions_definition
from ingest_assets.orchestration.pools import run_tags
from ingest_assets.sources.windows import window_for

if TYPE_CHECKING:
    from ingest_assets.sources.probe import SourceVersion

# Dagster's implicit job of every asset in the code location. Schedules target it and select
# their dataset in each run request (as sensors with `asset_selection` do): a schedule with an
# asset selection as `target` would build its own job, 250 more jobs to build and snapshot in a
# code location of 1,000 datasets.
ASSET_JOB = "__ASSET_JOB"


def dataset_keys(config: DatasetConfig) -> list[dg.AssetKey]:
    """Every asset of the dataset, the warehouse included when it has one."""
    return [dg.AssetKey([config.dataset_id, stage]) for stage in config.stages]


def partition_at(config: DatasetConfig, when: dt.datetime) -> str | None:
    """The latest complete partition at `when` (None for unpartitioned datasets)."""
    partitions = partitions_definition(config.partitions)
    if partitions is None:
        return None
    current = partitions.time_window_for_partition_key(
        partitions.get_partition_key_for_timestamp(when.timestamp())
    )
    before = current.start.timestamp() - 1  # the period before the one `when` falls in
    if before < partitions.start.timestamp():
        return None
    return partitions.get_partition_key_for_timestamp(before)


def tick(
    config: DatasetConfig,
    cursor: str | None,
    partition: str | None,
    probe_source: Callable[["SourceVersion | None"], "SourceVersion"],
) -> tuple[list[dg.RunRequest], str | None, str | None]:
    """(run requests, new cursor, skip reason) for one sensor tick."""
    previous = json.loads(cursor) if cursor else None
    try:
        current = probe_source(previous)
    except Exception as exc:  # noqa: BLE001 - any source error: report, keep the cursor, retry next tick
        return [], cursor, f"source error, will retry next tick: {exc}"
    if previous and current.get("version") == previous.get("version"):
        return [], cursor, f"source unchanged ({current['version']})"
    request = dg.RunRequest(
        run_key=f"{config.dataset_id}:{current['version']}",
        partition_key=partition,
        asset_selection=dataset_keys(config),
        tags=run_tags(config, **{"ingest/source_version": str(current["version"])[:200]}),
    )
    return [request], json.dumps(current, sort_keys=True), None


def dataset_sensor(config: DatasetConfig, name: str, description: str) -> Callable:
    """The decorator of a sensor of the dataset: `<dataset_id>__<name>`, ticking every
    `sensor.interval_s`, asking for the dataset's assets; stopped until started in the UI."""
    return dg.sensor(
        name=f"{config.dataset_id}__{name}",
        minimum_interval_seconds=config.sensor.interval_s,
        asset_selection=dataset_keys(config),
        description=description,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )


def source_sensor(config: DatasetConfig) -> dg.SensorDefinition:
    @dataset_sensor(config, "source_changed", f"Runs {config.dataset_id} when its source changes")
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from ingest_assets.sources.probe import probe  # HTTP and S3 clients: when a sensor ticks

        partition = partition_at(config, dt.datetime.now(dt.UTC))
        window = window_for(config, partition, None) if partition else None
        requests, cursor, skip = tick(
            config,
            context.cursor,
            partition,
            lambda previous: probe(config, previous, window=window),
        )
        if skip:
            return dg.SensorResult(skip_reason=skip, cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _sensor


def cron_schedule(config: DatasetConfig) -> dg.ScheduleDefinition:
    assert config.schedule is not None  # (only datasets with a schedule get one)

    @dg.schedule(
        name=f"{config.dataset_id}__schedule",
        cron_schedule=config.schedule,
        job_name=ASSET_JOB,
        description=f"Runs {config.dataset_id} on `{config.schedule}`",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        execution_timezone="UTC",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(
            partition_key=partition_at(config, context.scheduled_execution_time),
            asset_selection=dataset_keys(config),
            tags=run_tags(config),
        )

    return _schedule


def build_automation(configs: list[DatasetConfig]) -> tuple[list, list]:
    # a landing zone's sensor lists its files (landing_sensor builds on this module)
    from ingest_assets.orchestration.landing_sensor import landing_sensor

    sensors = [
        landing_sensor(c) if c.source.is_landing else source_sensor(c)
        for c in configs
        if c.sensor.enabled
    ]
    schedules = [cron_schedule(c) for c in configs if c.schedule]
    return sensors, schedules
