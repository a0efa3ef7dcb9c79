"""N realistic dataset YAMLs for the definitions benchmark, and the same shape for the floor.

The mix: daily and monthly partitions from a few shared start dates, CSV, JSON and XLSX
sources over file and HTTP, checks (not_null, unique, ranges) on every dataset, allowed values
and a freshness window on some, a schedule on every 4th, a sensor on every 5th, and a
PostgreSQL warehouse (a fifth asset) on every 10th. `spec.json` beside the YAMLs lists, per
dataset, what the bare floor needs: its id, number of assets and partitions.
"""

import json
from pathlib import Path

STARTS = ("2020-01-01", "2023-01-01", "2024-06-01")
SPEC_FILE = "spec.json"


def dataset_yaml(number: int) -> tuple[str, dict]:
    dataset_id = f"BENCH_{number:05d}"
    kind = "monthly" if number % 3 == 2 else "daily"
    start = STARTS[number % len(STARTS)]
    warehouse = number % 10 == 0
    lines = [
        f"dataset_id: {dataset_id}",
        f"description: Benchmark dataset {number}",
        f"frequency: {'M' if kind == 'monthly' else 'D'}",
    ]
    if number % 2:
        lines.append("lag_days: 3")
    if number % 4 == 1:
        lines += [
            "source:",
            "  kind: http",
            f"  url: https://api.example.org/v1/series/{number}?from={{partition_start}}",
            "  format: json",
            "  records_path: data.items",
            '  headers: {Authorization: "Bearer ${BENCH_TOKEN}"}',
            "  timeout_s: 20",
        ]
    elif number % 4 == 2:
        lines += [
            "source:",
            "  kind: file",
            f"  path: /srv/data/bench/{number}.xlsx",
            "  format: xlsx",
            "  sheet: Data",
            "  header_row: 2",
        ]
    else:
        lines += [
            "source:",
            "  kind: file",
            f"  path: /srv/data/bench/{number}.csv",
            "  format: csv",
            '  delimiter: ";"',
            '  decimal: ","',
            "  encoding: latin-1",
        ]
    lines += [
        "parse_config:",
        "  columns: {Fecha: obs_time, Serie: series, Valor: value}",
        "normalize:",
        "  primary_keys: [series, obs_time]",
        "  timezone: America/Argentina/Buenos_Aires",
        "  schema: {value: float64, series: string}",
        "transform:",
        "  metadata: {unit: ARS, source_agency: BENCH}",
        "partitions:",
        f"  kind: {kind}",
        f"  start: {start}",
        "checks:",
        "  not_null: [obs_time, value]",
        "  unique: [series, obs_time]",
        "  ranges: {value: {min: 0, max: 1000000}}",
        "  max_rejected_ratio: 0.01",
    ]
    if number % 3 == 0:
        lines += ["  allowed_values: {unit: [ARS, USD]}", "  severity: {freshness: error}"]
    if warehouse:
        lines += ["publish:", "  postgres: {table: bench_observations, schema: public}"]
    if number % 4 == 0:
        lines.append(f'schedule: "{number % 60} 6 * * *"')
    if number % 5 == 0:
        lines.append("sensor: {enabled: true, interval_s: 600}")
    shape = {"dataset_id": dataset_id, "assets": 5 if warehouse else 4, "kind": kind}
    return "\n".join(lines) + "\n", shape | {"start": start}


def write_mix(folder: Path, count: int) -> list[dict]:
    """Write `count` dataset YAMLs and `spec.json` into `folder`; returns the spec."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = []
    for number in range(count):
        text, shape = dataset_yaml(number)
        (folder / f"bench_{number:05d}.yaml").write_text(text)
        spec.append(shape)
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    return spec
