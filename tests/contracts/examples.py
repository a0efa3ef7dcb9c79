"""Dataset YAML shared by the contract tests: the examples of DESIGN.md, "The dataset contract"."""

# Verbatim from DESIGN.md: written for the system Ingest replaces, it must validate as written.
BCRA_TC_OFICIAL = """\
dataset_id: BCRA_TC_OFICIAL
frequency: D
lag_days: 2
source:
  kind: http
  url: "https://example.com/data.xlsx"
  format: xlsx
  sheet: "Data"
  header_row: 1
parse:
  plugin: bcra_infomondia
normalize:
  plugin: bcra_infomondia
  primary_keys: [obs_time]
  timezone: "America/Argentina/Cordoba"
parse_config:
  file_type: infomondia
  series_map:
    - internal_series_code: BCRA_TC_OFICIAL
      sheet: Data
      header_row: 1
      date_col: A
      value_col: B
notify:
  sns_topic_arn: "arn:aws:sns:us-east-1:123456789012:datasets"
"""

# "The whole contract" of DESIGN.md with every key present and a concrete value.
WHOLE_CONTRACT = """\
dataset_id: BCRA_TC_OFICIAL
description: Official exchange rate, daily
frequency: D
lag_days: 2
source:
  kind: http
  url: https://api.example.com/v1/series
  format: json
  sheet: Data
  header_row: 1
  encoding: utf-8
  delimiter: ","
  decimal: "."
  records_path: data.items
  headers: {Authorization: "Bearer ${API_TOKEN}"}
  params: {series: tc_oficial, limit: 500, verbose: true, from: "{partition_start}"}
  pagination: {kind: next_link, next_path: links.next, max_pages: 50}
  timeout_s: 30
  max_bytes: 104857600
  deadline_s: 300
  max_inflated_bytes: 1048576000
  follow_redirects: same_origin
  missing: error
  max_files_per_run: 1000
parse:
  plugin: bcra_infomondia
  options: {}
parse_config:
  file_type: infomondia
  series_map:
    - internal_series_code: BCRA_TC_OFICIAL
      sheet: Data
      header_row: 1
      date_col: A
      value_col: B
      unit: ARS/USD
      frequency: D
  columns: {Fecha: obs_time}
normalize:
  plugin: default
  primary_keys: [obs_time]
  timezone: America/Argentina/Cordoba
  time_column: obs_time
  schema: {value: float64, title: string, amount: "decimal(18, 4)", n: int64, ok: bool, day: date, at: timestamp}
transform:
  metadata: {unit: ARS/USD, frequency: D}
partitions:
  kind: daily
  start: 2024-01-01
  snapshot: false
incremental:
  revisions: update
publish:
  object_store: true
  postgres: {table: observations, schema: public}
  publish_empty: false
checks:
  not_null: [obs_time, value]
  unique: [internal_series_code, obs_time]
  ranges: {value: {min: 0}}
  allowed_values: {unit: [ARS/USD]}
  max_rejected_ratio: 0.01
schedule: "0 */6 * * *"
sensor: {enabled: true, interval_s: 300}
lock: {key: "etl:{dataset_id}", ttl_s: 300}
notify: {sns_topic_arn: "arn:aws:sns:us-east-1:123456789012:datasets"}
"""

# The smallest valid dataset, for tests that are about something else than the contract.
MINIMAL_CSV = """\
dataset_id: {dataset_id}
source: {{kind: file, path: sample_data/data.csv, format: csv}}
normalize: {{primary_keys: [id]}}
"""


def minimal(dataset_id: str = "MINIMAL") -> str:
    return MINIMAL_CSV.format(dataset_id=dataset_id)
