"""`parquet`: a Parquet file, as it is."""

import pyarrow as pa
import pyarrow.parquet as pq

from ingest_assets.parsers.base import ROW_COLUMN, ParseContext
from ingest_assets.rows.arrays import row_numbers


def parse_parquet(data: bytes, ctx: ParseContext) -> pa.Table:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ctx.error(f"not a readable Parquet file: {exc}") from None
    return table.add_column(0, ROW_COLUMN, row_numbers(1, table.num_rows))
