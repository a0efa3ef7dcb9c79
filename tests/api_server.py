"""What the API tests share: a real uvicorn server on 127.0.0.1 (a free port, in a thread),
small datasets written as CSV and published through the stages, and their expected rows
computed from the CSV with the csv module (never by our code)."""

import csv
import datetime as dt
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from ingest_api import ApiSettings, create_app
from ingest_assets import stages
from ingest_assets.contract import DatasetConfig, load_config_file
from ingest_resources.runtime import Runtime

RATES_YAML = """\
dataset_id: API_RATES
description: rates for the API tests
source: {{kind: file, path: {path}, format: csv}}
parse_config: {{columns: {{series: internal_series_code}}}}
normalize:
  primary_keys: [internal_series_code, obs_time]
  schema: {{value: float64, obs_time: date, note: string}}
checks: {{max_rejected_ratio: 0.5}}
"""

# a key (id) that does not hold the time column: a revision can move a key to another month
CATALOG_YAML = """\
dataset_id: API_CATALOG
description: a catalog whose rows move between months
source: {{kind: file, path: {path}, format: csv}}
normalize:
  primary_keys: [id]
  time_column: updated
  schema: {{id: int64, updated: date, name: string}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(
    runtime: Runtime, configs: list[DatasetConfig], settings: ApiSettings | None = None
) -> Iterator[httpx.Client]:
    """The app under uvicorn on 127.0.0.1, and a client of it."""
    settings = settings or ApiSettings(rate=0)
    app = create_app(settings, runtime, configs)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def publish(runtime: Runtime, config: DatasetConfig, partition: str = "all") -> str:
    """The four stages, as a run does them; the version published."""
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    stages.run_normalize(runtime, config, partition)
    result = stages.run_publish(runtime, config, partition)
    assert result.version
    return str(result.version)


def write_config(folder: Path, template: str, csv_path: Path, name: str) -> DatasetConfig:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(template.format(path=csv_path)))
    return load_config_file(path)


def rates_rows(revised: bool = False) -> list[list[str]]:
    """Three series, a row every 3 days from 2024-01-01 to 2024-04-29 (41 days each); with
    `revised`, series A's February values change and every series gains May's days."""
    rows = []
    last = dt.date(2024, 5, 31) if revised else dt.date(2024, 4, 30)
    for series in ("A", "B", "C"):
        day, n = dt.date(2024, 1, 1), 0
        while day <= last:
            value = 100 + n + (0.5 if revised and series == "A" and day.month == 2 else 0)
            note = "holiday" if day.day == 1 else ("Ñandú" if series == "C" and n % 7 == 0 else "")
            rows.append([series, day.isoformat(), f"{value}", note])
            day += dt.timedelta(days=3)
            n += 1
    return rows


def write_rates(path: Path, revised: bool = False) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["series", "obs_time", "value", "note"])
        writer.writerows(rates_rows(revised))
        writer.writerow(["C", "not a date", "1", "a row that cannot be typed"])


def expected_rates(path: Path) -> dict[tuple[str, str], tuple[float, str | None]]:
    """(series, date) -> (value, note) read back from the CSV with the csv module; the row
    that is not a date is left out (it goes to quarantine)."""
    found = {}
    with path.open(newline="") as source:
        for row in csv.DictReader(source):
            try:
                dt.date.fromisoformat(row["obs_time"])
            except ValueError:
                continue
            found[(row["series"], row["obs_time"])] = (float(row["value"]), row["note"] or None)
    return found


def write_catalog(path: Path, moved: bool = False) -> None:
    """Items 1-30 updated in January or February; with `moved`, items 1-5 are updated again in
    March (their rows move month) and items 31-35 are new."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "updated", "name"])
        for item in range(1, 36 if moved else 31):
            month = 3 if moved and (item <= 5 or item > 30) else 1 + item % 2
            writer.writerow([item, f"2024-{month:02d}-{1 + item % 28:02d}", f"item {item}"])


def scan(client: httpx.Client, path: str, **params: object) -> tuple[list[dict], list[dict]]:
    """Every page of a scan: (rows, pages' bodies)."""
    rows, bodies = [], []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["rows"]
        bodies.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, bodies
