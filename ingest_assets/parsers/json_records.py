"""`json_records`: the list of records at `source.records_path`, nested objects flattened; or,
with `source.format: jsonl`, one record per line (json_lines).

The document's encoding: a BOM (or the NULs of UTF-16/32 without one), `source.encoding`
when set, UTF-8 (RFC 8259), the HTTP charset, then `auto`'s guess (charset.decode)."""

import json
import math
from typing import Any

import pandas as pd
import pyarrow as pa

from ingest_assets.parsers.base import ROW_COLUMN, ParseContext
from ingest_assets.parsers.charset import decode


def flatten(
    record: dict[str, object], prefix: str = "", out: dict[str, object] | None = None
) -> dict[str, object]:
    """`{"a": {"b": 1}, "c": [1, 2]}` -> `{"a.b": 1, "c": "[1, 2]"}` (lists kept as JSON text)."""
    out = {} if out is None else out
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flatten(value, f"{name}.", out)
            continue
        if name in out:
            raise ValueError(f"field {name!r} appears both as a key and as a nested path")
        if isinstance(value, list | dict):
            out[name] = json.dumps(value, ensure_ascii=False, sort_keys=True)
        else:
            out[name] = value
    return out


def records_at(document: object, path: str | None, ctx: ParseContext) -> list[object]:
    node = document
    walked = []
    for part in path.split(".") if path else []:
        walked.append(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            keys = ", ".join(map(repr, node)) if isinstance(node, dict) else type(node).__name__
            raise ctx.error(
                f"source.records_path {path!r}: no {'.'.join(walked)!r} (found: {keys})"
            )
    if not isinstance(node, list):
        keys = ", ".join(map(repr, node)) if isinstance(node, dict) else type(node).__name__
        hint = "set source.records_path to the list of records" if isinstance(node, dict) else ""
        raise ctx.error(
            f"expected a list of records at {path or 'the top level'!r}, found {keys}. {hint}".strip()
        )
    return node


def parse_json_records(data: bytes, ctx: ParseContext) -> "pd.DataFrame | pa.Table":
    if ctx.config.source.format == "jsonl":
        from ingest_assets.parsers.json_lines import parse_jsonl

        return parse_jsonl(data, ctx)
    text = decode(data, ctx, "JSON document", utf8_first=True)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ctx.error(f"invalid JSON: {exc}") from None
    if (
        ctx.config.source.pagination is not None
        and isinstance(document, dict)
        and "pages" in document
    ):
        records = [
            r
            for page in document["pages"]
            for r in records_at(page, ctx.config.source.records_path, ctx)
        ]
    else:
        records = records_at(document, ctx.config.source.records_path, ctx)
    rows = []
    for number, record in enumerate(records, start=1):
        try:
            flat = flatten(record) if isinstance(record, dict) else {"value": record}
        except ValueError as exc:
            raise ctx.error(f"record {number}: {exc}") from None
        flat[ROW_COLUMN] = number
        rows.append(flat)
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame({ROW_COLUMN: []})
    for name in frame.columns:
        frame[name] = empty_as_null(frame[name])
    return frame[[ROW_COLUMN] + [c for c in frame.columns if c != ROW_COLUMN]]


def empty_as_null(values: "pd.Series[Any]") -> "pd.Series[Any]":
    """Empty is null: in a column whose other values are all numbers (or all booleans), an
    empty string is a missing value, not a reason to read the whole column as text."""
    if values.dtype != object:
        return values
    empty = values.map(lambda v: isinstance(v, str) and v == "")
    if not empty.any():
        return values
    kinds = {
        bool if isinstance(v, bool) else float if isinstance(v, int | float) else type(v)
        for v in values[~empty]
        if v is not None and not (isinstance(v, float) and math.isnan(v))
    }
    if kinds and (kinds <= {float} or kinds <= {bool}):
        return values.mask(empty, None)
    return values
