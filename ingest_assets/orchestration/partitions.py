"""Partitions definitions, shared between datasets with the same kind and start."""

import datetime as dt
from functools import cache

import dagster as dg

from ingest_assets.contract import Partitions
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
