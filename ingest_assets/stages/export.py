"""`ingest export`: the published data as of a version, latest value per key."""

import io
import json
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ingest_assets.contract import DatasetConfig
from ingest_assets.eventstore import published_table
from ingest_resources.object_store import ObjectStore


def iso_times(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text, the same in CSV and JSON lines (`2024-02-15T03:00:00.000000Z`;
    without the Z for a naive one)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            zone = "Z" if field.type.tz else ""
            text = pc.strftime(table.column(index), format=f"%Y-%m-%dT%H:%M:%S{zone}")
            table = table.set_column(index, field.name, text)
    return table


def export_dataset(
    store: ObjectStore, config: DatasetConfig, version: str | None, fmt: str, out: str | None
) -> int:
    table = published_table(store, config, version)
    if table is None:
        table = pa.table({})
    if fmt == "parquet":
        if not out:
            raise ValueError("--format parquet needs --out FILE")
        pq.write_table(table, out)
        return int(table.num_rows)
    table = iso_times(table)
    buffer = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, buffer)
    else:
        for row in table.to_pylist():
            buffer.write((json.dumps(row, default=str, ensure_ascii=False) + "\n").encode())
    if out:
        with open(out, "wb") as handle:
            handle.write(buffer.getvalue())
    else:
        sys.stdout.buffer.write(buffer.getvalue())
    return int(table.num_rows)
