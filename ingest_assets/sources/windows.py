"""Incremental request windows: `{partition_start}`, `{partition_end}` and `{since}` in a
source's URL, params, path, key or glob, filled from the partition and from the published state,
each optionally formatted by a strftime spec (`{partition_start:%Y/%m/%d}`). Pure."""

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ingest_assets.contract import DatasetConfig
from ingest_assets.contract.source import PLACEHOLDER


@dataclass(frozen=True)
class Window:
    partition_start: str | None  # ISO date (or date-time for hourly), inclusive
    partition_end: str | None  # exclusive
    since: str  # newest published time minus lag_days (ISO date); the partitions' start at first

    def value(self, placeholder: str) -> str | None:
        """What `{placeholder}` stands for (a name PLACEHOLDER matches)."""
        if placeholder == "partition_start":
            return self.partition_start
        if placeholder == "partition_end":
            return self.partition_end
        return self.since


class Published(Protocol):
    """What a window needs of the published state (an eventstore `Manifest`)."""

    @property
    def high_water_marks(self) -> Mapping[str, str]: ...


def _add_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def partition_bounds(kind: str, key: str) -> tuple[str, str] | tuple[None, None]:
    """The [start, end) of a time partition key, as Dagster formats keys."""
    if kind == "hourly":
        hour = dt.datetime.strptime(key, "%Y-%m-%d-%H:%M")
        return hour.isoformat(timespec="minutes"), (hour + dt.timedelta(hours=1)).isoformat(
            timespec="minutes"
        )
    if kind in ("daily", "weekly", "monthly"):
        day = dt.date.fromisoformat(key)
        end = {
            "daily": day + dt.timedelta(days=1),
            "weekly": day + dt.timedelta(days=7),
            "monthly": _add_month(day),
        }[kind]
        return day.isoformat(), end.isoformat()
    return None, None


def since(config: DatasetConfig, manifest: Published | None) -> str:
    """Ask only for what is new: the newest published time, minus lag_days for late revisions."""
    marks = manifest.high_water_marks if manifest else {}
    if not marks:
        start = config.partitions.start
        return start.isoformat()[:10] if start else "1970-01-01"
    newest = max(dt.datetime.fromisoformat(value) for value in marks.values())
    return (newest - dt.timedelta(days=config.lag_days or 0)).date().isoformat()


def window_for(config: DatasetConfig, partition: str, manifest: Published | None) -> Window:
    start, end = partition_bounds(config.partitions.kind, partition)
    return Window(start, end, since(config, manifest))


def fill_window(template: str, window: Window | None, config: DatasetConfig, field: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, spec = match.group(1), match.group(2)
        value = window.value(name) if window else None
        if value is None:
            raise ValueError(
                f"dataset {config.dataset_id}: {field} uses {{{name}}}, which needs a "
                "time-partitioned dataset (partitions.kind daily, weekly, monthly or hourly)"
            )
        return value if spec is None else dt.datetime.fromisoformat(value).strftime(spec)

    return PLACEHOLDER.sub(replace, template)
