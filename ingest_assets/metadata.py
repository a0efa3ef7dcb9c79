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
