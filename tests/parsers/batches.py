"""Reading a file as the parsed stage does (`parse_batches`: inflating, the magic-byte check,
streaming), with the notes the parser made."""

from pathlib import Path

import pyarrow as pa

from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import parse_batches
from tests.parsers.conftest import make_config


def read_file(
    path: Path, source: dict, *, content_type: str | None = None, **contract
) -> tuple[pa.Table, list[str]]:
    """The parsed rows of `path` (all batches) and the parser's notes."""
    ctx = ParseContext(make_config(source, **contract), str(path), content_type=content_type)
    return pa.concat_tables(parse_batches(path, ctx)), ctx.notes
