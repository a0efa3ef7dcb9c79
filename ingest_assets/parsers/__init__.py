"""Parsers turn a source's raw bytes into rows, as the source means them.

A parser is `fn(data: bytes, ctx: ParseContext) -> pandas.DataFrame | pyarrow.Table`. Built-ins
are registered by name; `parse.plugin: "package.module:function"` loads a custom one.

Modules:
    base                 the registry, ParseContext and ParseError, `_row`/`_cell` columns,
                         CellMap, DataFrame to Arrow, required columns, parse in batches
    archive              a gzip or zip source inflated (bounded) before its parser reads it
    magic                what a file is by its magic bytes; a file not its source.format refused
    zipdir               a zip's directory, checked before it is listed (size, zip-slip names)
    charset              a feed's or JSON's encoding: BOM, declarations, UTF-8, `auto`
    table                CSV, XLSX, XLS and ODS (`parse.plugin: table`), CSV streamed in batches
    csv_reading          a CSV's rows by Arrow, as written; rows that do not fit the header
                         padded or rejected in place (`_rejected`), never shifted
    encoding             a CSV's text encoding: the declared one, strictly, or `auto` (detected)
    workbook_sheet       a workbook's sheet by python-calamine, a typed column per header cell
    series_map           a wide workbook to long rows, one series per entry (bcra_infomondia)
    json_records         the records of a JSON document (or of each page), flattened
    json_lines           JSON Lines, line by line in batches; a bad line is a reject row
    rss                  RSS and Atom feeds, one row per item (entity declarations refused)
    feed_xml             which XML problems of a feed are recoverable (read, noted)
    parquet              a Parquet file as it is
    columns              spreadsheet column letters (A <-> 0)
    workbook_guard       the check a workbook passes before calamine opens it
    workbook_budget      the budget it is checked against (Budget, Refused)
    workbook_xlsx        .xlsx: the zip archive, its members inflated here
    workbook_xlsx_cells  .xlsx: a sheet's cells as calamine reads them (SheetScan)
    workbook_xls         .xls: the OLE container and its BIFF records
    workbook_ods         .ods: content.xml's repeated rows and cells as calamine reads them

May import: `ingest_assets.contract`, `ingest_assets.rows.arrays` and `ingest_resources.errors`;
pandas, pyarrow, python-calamine, feedparser, charset-normalizer (`encoding: auto`). Never
Dagster, never a resource.
"""

from ingest_assets.parsers.base import ParseContext, ParseError, parse_raw, resolve_parser

__all__ = ["ParseContext", "ParseError", "parse_raw", "resolve_parser"]
