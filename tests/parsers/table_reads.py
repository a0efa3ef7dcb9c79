"""Helpers of the table parser's tests: the fixtures of issue 17, a CSV read both ways, and
the same file read independently with the csv module."""

import csv
import io
from pathlib import Path

import pyarrow as pa

from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import parse_batches

PARSERS = Path(__file__).resolve().parents[1] / "fixtures" / "parsers"
HIDDEN = ["_row", "_rejected"]


def read_both(path: Path, config) -> tuple[pa.Table, pa.Table, list[str]]:
    """(streamed, whole, the streamed read's notes): the CSV read in batches by the streaming
    reader and whole by `parse_table`, as the parsed stage reads it (whole after the streamed
    read gives up)."""
    ctx = ParseContext(config, str(path))
    streamed = pa.concat_tables(list(parse_batches(path, ctx)))
    whole = pa.concat_tables(list(parse_batches(path, ParseContext(config, str(path)), whole=True)))
    return streamed, whole, ctx.notes


def stdlib_rows(data: bytes, encoding: str = "utf-8", delimiter: str = ",") -> list[list[str]]:
    """The file read independently with the csv module (quoted line breaks kept)."""
    text = data.decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def as_read(header: list[str], rows: list[list[str]], null=("",)) -> list[dict]:
    """csv-module rows as the parser gives them: one dict per row, by header name, a missing
    field or a null marker as None."""
    return [
        {
            name: (row[i] if i < len(row) and row[i] not in null else None)
            for i, name in enumerate(header)
        }
        for row in rows
    ]
