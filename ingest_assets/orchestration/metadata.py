"""Materialization metadata that renders well in the Dagster UI."""

import json
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.parsers.base import HIDDEN_COLUMNS
from ingest_assets.rows.hashing import hex_type

PREVIEW_ROWS = 10
CELL_CHARS = 60


def _cell(value: object) -> str:
    if isinstance(value, bytes):  # a hash: as published
        value = value.hex()
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def preview(table: pa.Table, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    columns = [c for c in table.column_names if c not in HIDDEN_COLUMNS]
    head = table.select(columns).slice(0, rows).to_pylist()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in head]
    return dg.MetadataValue.md("\n".join(lines))


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """The visible columns with their types as people see them (a hash as its hex text)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=f.name, type=str(hex_type(f).type))
            for f in schema
            if f.name not in HIDDEN_COLUMNS
        ]
    )


def as_json(value: Any) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


SPARKS = "▁▂▃▄▅▆▇█"
# A series' line: its name (cut to SERIES_CHARS), its last value, then a sparkline of its last
# CHART_POINTS values: the three fit the UI's metadata panel at 1600 px (a sparkline of 60, in the
# last column, was clipped there; one of 30 after the name pushed the last value out with the
# panel's other rows).
CHART_POINTS = 20
SERIES_CHARS = 32
NO_BREAK_HYPHEN = "\u2011"  # dates in the chart never wrap at their hyphens


def _day(value: object) -> str:
    return f"{value:%Y-%m-%d}".replace("-", NO_BREAK_HYPHEN)


def sparkline(values: list[float]) -> str:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(
        SPARKS[min(len(SPARKS) - 1, int((v - low) / span * len(SPARKS)))] for v in values
    )


CHART_SERIES = 25  # lines in the chart; the rest are counted


def _chart_line(name: str, points: pa.Table) -> str | None:
    """One series' line: no full sort, only of the newest points (select_k is linear)."""
    valued = points.filter(pc.is_valid(points["v"]))
    if valued.num_rows == 0:
        return None
    newest = pc.select_k_unstable(points, k=CHART_POINTS, sort_keys=[("t", "descending")])
    recent = points.take(newest).sort_by("t")
    recent_valued = recent.filter(pc.is_valid(recent["v"]))
    if recent_valued.num_rows:
        last = recent_valued["v"][-1].as_py()
    else:  # the newest points are all empty: the last value is older
        last = valued.take(pc.select_k_unstable(valued, k=1, sort_keys=[("t", "descending")]))
        last = last["v"][0].as_py()
    low, high = pc.min_max(valued["v"]).values()
    first, newest_time = pc.min_max(points["t"]).values()
    shown = name if len(name) <= SERIES_CHARS else name[: SERIES_CHARS - 1] + "…"
    return (
        f"| {_cell(shown)} | {last:g} | {sparkline(recent['v'].to_pylist())} | {low.as_py():g} | "
        f"{high.as_py():g} | {_day(first.as_py())} | {_day(newest_time.as_py())} |"
    )


def series_chart(
    table: pa.Table, series_column: str, time_column: str, value_column: str
) -> dg.MetadataValue | None:
    """A markdown table with one line per series: span, last value, min/max and a sparkline of the
    last values, so a jump or a gap is visible at a glance. Linear in the rows (no Python object
    per row, no full sort), for partitions of millions of rows."""
    names = table.column_names
    if time_column not in names or value_column not in names:
        return None
    value_type = table.schema.field(value_column).type
    if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
        return None
    table = table.filter(pc.is_valid(table[time_column]))
    if series_column in names:
        table = table.filter(pc.is_valid(table[series_column]))
        all_series = sorted(str(v) for v in pc.unique(table[series_column]).to_pylist())
        shown = all_series[:CHART_SERIES]
        series = pc.cast(table[series_column], pa.string())
        if len(shown) < len(all_series):
            kept = pc.is_in(series, pa.array(shown))
            table, series = table.filter(kept), series.filter(kept)
    else:
        all_series = shown = ["all"]
        series = None
    keyed = pa.table({"t": table[time_column], "v": table[value_column]})
    lines = [
        f"| series | last | last {CHART_POINTS} | min | max | from | to |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in shown:
        points = keyed if series is None else keyed.filter(pc.equal(series, name))
        line = _chart_line(name, points)
        if line:
            lines.append(line)
    if len(all_series) > len(shown):
        lines.append(f"| … and {len(all_series) - len(shown)} more series | | | | | | |")
    return dg.MetadataValue.md("\n".join(lines)) if len(lines) > 2 else None
