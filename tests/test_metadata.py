"""The published asset's series chart: one line per series, the newest values, no full sort."""

import datetime as dt

import pyarrow as pa

from ingest_assets.orchestration import metadata
from ingest_assets.orchestration.metadata import series_chart


def _day(n: int) -> dt.date:
    return dt.date(2024, 1, 1) + dt.timedelta(days=n)


def test_one_line_per_series_with_span_last_min_max():
    table = pa.table(
        {
            "internal_series_code": ["A", "A", "B", None],
            "obs_time": [_day(1), _day(0), _day(0), _day(0)],
            "value": [2.0, 1.0, None, 3.0],
        }
    )
    lines = series_chart(table, "internal_series_code", "obs_time", "value").value.splitlines()
    assert lines[2] == "| A | 2 | ▁█ | 1 | 2 | 2024\u201101\u201101 | 2024\u201101\u201102 |"
    assert len(lines) == 3  # B has no value; the row without a series is left out


def test_without_a_series_column_the_dataset_is_one_series():
    table = pa.table({"obs_time": [_day(2), _day(0), _day(1)], "value": [3.0, 1.0, 2.0]})
    lines = series_chart(table, "internal_series_code", "obs_time", "value").value.splitlines()
    assert lines[2] == "| all | 3 | ▁▅█ | 1 | 3 | 2024\u201101\u201101 | 2024\u201101\u201103 |"


def test_the_newest_points_only_and_a_last_value_older_than_them(monkeypatch):
    monkeypatch.setattr(metadata, "CHART_POINTS", 3)
    values = [float(n) for n in range(10)] + [None] * 3  # the 3 newest points are empty
    table = pa.table({"obs_time": [_day(n) for n in range(13)], "value": values})
    line = series_chart(table, "s", "obs_time", "value").value.splitlines()[2]
    assert line == "| all | 9 |  | 0 | 9 | 2024\u201101\u201101 | 2024\u201101\u201113 |"


def test_many_series_are_counted_beyond_the_shown_ones(monkeypatch):
    monkeypatch.setattr(metadata, "CHART_SERIES", 2)
    table = pa.table({"s": ["C", "A", "B"], "obs_time": [_day(0)] * 3, "value": [1.0, 2.0, 3.0]})
    lines = series_chart(table, "s", "obs_time", "value").value.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| A", "| B", "| … and 1 more series"]
