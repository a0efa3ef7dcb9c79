"""Parsers turn raw bytes into rows, as the source means them. Pure: no Dagster.

A parser is `fn(data: bytes, ctx: ParseContext) -> pandas.DataFrame | pyarrow.Table`. Built-ins
are registered by name; `parse.plugin: "package.module:function"` loads a custom one.
"""

from ingest_assets.parsers.base import ParseContext, ParseError, parse_raw, resolve_parser

__all__ = ["ParseContext", "ParseError", "parse_raw", "resolve_parser"]
