"""Materialization metadata that renders well in the Dagster UI."""

import json
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.parsers.base import HIDDEN_COLUMNS

PREVIEW_ROWS = 10
CELL_CHARS = 60


def _cell(value: object) -> str:
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
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=f.name, type=str(f.type))
            for f in schema
            if f.name not in HIDDEN_COLUMNS
        ]
    )


def as_json(value: Any) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


SPARKS = "▁▂▃▄▅▆▇█"
CHART_POINTS = 60


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


def series_chart(
    table: pa.Table, series_column: str, time_column: str, value_column: str
) -> dg.MetadataValue | None:
    """A markdown table with one line per series: span, last value, min/max and a sparkline of the
    last values, so a jump or a gap is visible at a glance. Vectorised: a partition of millions
    of rows costs a sort, not a Python object per row."""
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
        table = table.filter(pc.is_in(pc.cast(table[series_column], pa.string()), pa.array(shown)))
        series = pc.cast(table[series_column], pa.string())
    else:
        all_series = shown = ["all"]
        series = pa.array(["all"] * table.num_rows, pa.string())
    keyed = pa.table({"s": series, "t": table[time_column], "v": table[value_column]})
    keyed = keyed.take(pc.sort_indices(keyed, sort_keys=[("s", "ascending"), ("t", "ascending")]))
    lines = [
        f"| series | from | to | last | min | max | last {CHART_POINTS} |",
        "|---|---|---|---|---|---|---|",
    ]
    groups = keyed.group_by("s", use_threads=False).aggregate([([], "count_all")])
    start = 0
    for name, count in zip(groups["s"].to_pylist(), groups["count_all"].to_pylist(), strict=True):
        points = keyed.slice(start, count)
        start += count
        valued = points.filter(pc.is_valid(points["v"]))
        if valued.num_rows == 0:
            continue
        first, last = points["t"][0].as_py(), points["t"][-1].as_py()
        low, high = pc.min_max(valued["v"]).values()
        recent = points["v"].slice(max(count - CHART_POINTS, 0)).to_pylist()
        lines.append(
            f"| {name} | {first:%Y-%m-%d} | {last:%Y-%m-%d} | {valued['v'][-1].as_py():g} | "
            f"{low.as_py():g} | {high.as_py():g} | {sparkline(recent)} |"
        )
    if len(all_series) > len(shown):
        lines.append(f"| … and {len(all_series) - len(shown)} more series | | | | | | |")
    return dg.MetadataValue.md("\n".join(lines)) if len(lines) > 2 else None
