"""Materialization metadata that renders well in the Dagster UI."""

import json
from typing import Any

import dagster as dg
import pyarrow as pa

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


def series_chart(
    table: pa.Table, series_column: str, time_column: str, value_column: str
) -> dg.MetadataValue | None:
    """A markdown table with one line per series: span, last value, min/max and a sparkline of the
    last values, so a jump or a gap is visible at a glance."""
    names = table.column_names
    if time_column not in names or value_column not in names:
        return None
    value_type = table.schema.field(value_column).type
    if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
        return None
    columns = [time_column, value_column] + ([series_column] if series_column in names else [])
    by_series: dict[str, list[dict]] = {}
    for row in table.select(columns).sort_by(time_column).to_pylist():
        by_series.setdefault(str(row.get(series_column, "all")), []).append(row)
    lines = [
        f"| series | from | to | last | min | max | last {CHART_POINTS} |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, points in sorted(by_series.items()):
        values = [p[value_column] for p in points if p[value_column] is not None]
        if not values:
            continue
        first, last = points[0][time_column], points[-1][time_column]
        recent = [p[value_column] for p in points[-CHART_POINTS:]]
        lines.append(
            f"| {name} | {first:%Y-%m-%d} | {last:%Y-%m-%d} | {values[-1]:g} | {min(values):g} | "
            f"{max(values):g} | {sparkline(recent)} |"
        )
    return dg.MetadataValue.md("\n".join(lines)) if len(lines) > 2 else None
