"""Parsers turn a source's raw bytes into rows, as the source means them.

A parser is `fn(data: bytes, ctx: ParseContext) -> pandas.DataFrame | pyarrow.Table`. Built-ins
are registered by name; `parse.plugin: "package.module:function"` loads a custom one.

Modules:
    base                 the registry, ParseContext and ParseError, `_row`/`_cell` columns,
                         CellMap, DataFrame to Arrow, required columns, parse in batches
    table                CSV, XLSX, XLS and ODS (`parse.plugin: table`), CSV streamed in batches
    csv_reading          a CSV's rows by Arrow, as written; rows that do not fit the header
                         padded or rejected in place (`_rejected`), never shifted
    encoding             a CSV's text encoding: the declared one, strictly, or `auto` (detected)
    workbook_sheet       a workbook's sheet by python-calamine, a typed column per header cell
    series_map           a wide workbook to long rows, one series per entry (bcra_infomondia)
    json_records         the records of a JSON document (or of each page), flattened
    rss                  RSS and Atom feeds, one row per item (entity declarations refused)
    parquet              a Parquet file as it is
    columns              spreadsheet column letters (A <-> 0)
    workbook_guard       the check a workbook passes before calamine opens it
    workbook_budget      the budget it is checked against (Budget, Refused)
    workbook_xlsx        .xlsx: the zip archive, its members inflated here
    workbook_xlsx_cells  .xlsx: a sheet's cells as calamine reads them (SheetScan)
    workbook_xls         .xls: the OLE container and its BIFF records
    workbook_ods         .ods: content.xml's repeated rows and cells as calamine reads them

May import: `ingest_assets.contract`, `ingest_assets.rows.arrays` and `ingest_resources.errors`;
pandas, pyarrow, python-calamine, feedparser, charset-normalizer. Never Dagster, never a
resource.
"""

from ingest_assets.parsers.base import ParseContext, ParseError, parse_raw, resolve_parser

__all__ = ["ParseContext", "ParseError", "parse_raw", "resolve_parser"]
