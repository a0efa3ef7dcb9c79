"""Partitions definitions: time partitions shared between datasets with the same kind and
start; `files` partitions, a dynamic partitions definition per dataset (one partition per file
of its landing zone, added by its sensor or `ingest run`)."""

import datetime as dt
from functools import cache

import dagster as dg

from ingest_assets.contract import DatasetConfig, Partitions
from ingest_assets.layout import UNPARTITIONED


@cache
def _definition(kind: str, start: dt.datetime) -> dg.TimeWindowPartitionsDefinition:
    """The first partition is the one `start` falls in: an hour, a day, the week that begins on
    start's weekday (Dagster's weeks would begin on the Sunday after it), the calendar month of
    start (Dagster's would be the first month that begins after it)."""
    if kind == "hourly":
        return dg.HourlyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d-%H:%M"))
    day = start.strftime("%Y-%m-%d")
    if kind == "weekly":
        return dg.WeeklyPartitionsDefinition(start_date=day, day_offset=start.isoweekday() % 7)
    if kind == "monthly":
        return dg.MonthlyPartitionsDefinition(start_date=start.strftime("%Y-%m-01"))
    return dg.DailyPartitionsDefinition(start_date=day)


def partitions_definition(partitions: Partitions) -> dg.TimeWindowPartitionsDefinition | None:
    if partitions.kind == "none" or partitions.start is None:
        return None
    start = partitions.start
    if not isinstance(start, dt.datetime):
        start = dt.datetime(start.year, start.month, start.day)
    return _definition(partitions.kind, start)


def partition_key(context: dg.AssetExecutionContext) -> str:
    return context.partition_key if context.has_partition_key else UNPARTITIONED


def files_partitions_name(dataset_id: str) -> str:
    return f"{dataset_id}__files"


def dataset_partitions(
    config: DatasetConfig,
) -> dg.TimeWindowPartitionsDefinition | dg.DynamicPartitionsDefinition | None:
    """The dataset's partitions: time, files (dynamic) or none."""
    if config.partitions.kind == "files":
        return dg.DynamicPartitionsDefinition(name=files_partitions_name(config.dataset_id))
    return partitions_definition(config.partitions)


def run_partition(context: dg.AssetExecutionContext, config: DatasetConfig) -> str:
    """The partition the stages store this run under: its key; for a run over several files
    (`files` partitions, a range), the greatest of them."""
    if config.partitions.kind == "files" and not context.has_partition_key:
        return max(context.partition_keys)
    return partition_key(context)


def run_files(context: dg.AssetExecutionContext, config: DatasetConfig) -> list[str] | None:
    """The files a `files`-partitioned run reads (its partition keys); None otherwise."""
    if config.partitions.kind != "files":
        return None
    return list(context.partition_keys)
