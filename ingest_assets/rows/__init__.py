"""Rows: what turns a parsed table into typed, keyed, checked rows. Pure: no Dagster, no store,
no I/O (a table in, tables out); the stages call it batch by batch.

- convert.py: a column of text to a contract type (`convert_column`, `text_of` as written,
  `typed_text` as another type reads it, `arrow_type`)
- numbers.py: numbers written with the contract's decimal mark and thousands separator, checked
  and made plain (`NumberRule`, `plain_numbers`)
- dates.py: the format of a date/time column inferred from its values (`infer_format`)
- normalize.py: one batch normalized (`normalize`: the parser's rejected rows, the plugin,
  metadata columns, types, time formats, keys, `collection_date`), with what it rejected
  (`Normalized`)
- quarantine.py: the quarantine table (`rejected_rows`, `Rejections`, reasons of conflicts)
- dedupe.py: the one rule for repeated keys, within a batch (`dedupe`) and across batches
  (`KeyTracker`, `judge`)
- hashing.py: `key_hash` and `row_hash`, as 20-byte digests or hex text
- arrays.py: Arrow columns built without Python lists
- check_plan.py: the checks a contract asks for (light: imported at load time);
  checks.py: those checks evaluated on a normalized partition

May import: numpy, pandas, pyarrow, duckdb; `ingest_assets.contract`; from
`ingest_assets.parsers.base` the hidden column names (`_row`, `_cell`, `_rejected`), the spreadsheet cell
map (`CellMap`, `cell_map`) and the helpers normalize shares with the parsers (`load_plugin`,
`to_arrow`, `with_row_numbers`);
`ingest_resources.errors` (the error hierarchy). Never Dagster, the event store, the stages,
the orchestration or a resource with I/O.
"""
