"""Partitions definitions, shared between datasets with the same kind and start."""

import datetime as dt
from functools import cache

import dagster as dg

from ingest_assets.contract import Partitions
from ingest_assets.layout import UNPARTITIONED


@cache
def _definition(kind: str, start: dt.datetime) -> dg.PartitionsDefinition:
    if kind == "hourly":
        return dg.HourlyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d-%H:%M"))
    day = start.strftime("%Y-%m-%d")
    return {
        "daily": dg.DailyPartitionsDefinition,
        "weekly": dg.WeeklyPartitionsDefinition,
        "monthly": dg.MonthlyPartitionsDefinition,
    }[kind](start_date=day)


def partitions_definition(partitions: Partitions) -> dg.PartitionsDefinition | None:
    if partitions.kind == "none" or partitions.start is None:
        return None
    start = partitions.start
    if not isinstance(start, dt.datetime):
        start = dt.datetime(start.year, start.month, start.day)
    return _definition(partitions.kind, start)


def partition_key(context: dg.AssetExecutionContext) -> str:
    return context.partition_key if context.has_partition_key else UNPARTITIONED
