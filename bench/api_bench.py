"""The read API under load: `ingest serve` against ROAPI serving the same Parquet files, and
DuckDB reading them in-process (the floor).

    .venv/bin/pip install -e '.[dev,bench]'             # roapi (a binary on PyPI)
    .venv/bin/python bench/api_bench.py                 # builds the store once (~9 min), measures
    .venv/bin/python bench/api_bench.py --seconds 10 --series 200 --days 1000 --root /tmp/ab-small

The dataset (bench/generate.py): --series x --days daily rows (1,000 x 5,000 = 5,000,000 by
default), one version, keyed by (internal_series_code, obs_time), published through the stages
into --root. Its event files (one a month) are "the same Parquet files" ROAPI loads (into memory,
as it does by default) and DuckDB reads.

Measured, each load for --seconds by a closed-loop generator here (N threads, keep-alive
connections, latency = request sent to body read):
- `series`: one series (at random among all) from 2015-01-01 to 2015-04-10, 100 rows
  (`?series=S&from=..&to=..&page_size=100`; ROAPI: the same as SQL, POST /api/sql);
- `scan`: a full cursor scan, pages of 1,000 rows (ROAPI has no cursor: `ORDER BY obs_time,
  key_hash LIMIT 1000 OFFSET k`, k going up);
at concurrency 1 and 8: requests, p50, p99.
- scan throughput in rows/s: every row once, as JSON (Ingest: cursor pages of 1,000, read by
  Python; ROAPI: one response, read by curl) and, --rounds times interleaved, as Arrow (Ingest:
  `format=arrow`, one streamed response, hashes as hex and again with `hashes=binary`; ROAPI:
  one Arrow stream response; both read by curl) next to DuckDB in-process (`SELECT *` read as
  Arrow record batches): the ratio is taken within a round, as this machine's load moves from
  minute to minute.
- the Ingest server's RSS (VmRSS, every 0.25 s) during its full scans: start, peak, end and at
  each tenth of the scan (--cache-mb sets the server's INGEST_API_CACHE_MB).
Needs curl on PATH.
Results go to bench/results_api.json under --label.
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from measure import REPO, save

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DATASET = "API_BENCH"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
WINDOW = ("2015-01-01", "2015-04-10")  # 100 days: 100 rows of one series
CONFIG = """\
dataset_id: API_BENCH
source: {{kind: file, path: {csv}, format: csv, max_bytes: 4000000000}}
parse_config: {{columns: {{series_code: internal_series_code}}}}
normalize:
  primary_keys: [internal_series_code, obs_time]
  time_column: obs_time
  schema: {{value: float64, obs_time: date}}
"""


def build(root: Path, series: int, days: int) -> Path:
    """The published store (kept in --root: a second run measures again without building)."""
    store = root / "store"
    if (store / "datasets" / DATASET / "current" / "manifest.json").exists():
        return store
    sys.path.insert(0, str(HERE))
    import generate

    from ingest_assets import stages
    from ingest_assets.contract import load_config_file
    from ingest_resources.runtime import local_runtime

    root.mkdir(parents=True, exist_ok=True)
    csv = root / "obs.csv"
    started = time.perf_counter()
    generate.write(csv, series, days, 0)
    (root / "configs").mkdir(exist_ok=True)
    (root / "configs" / "api_bench.yaml").write_text(CONFIG.format(csv=csv))
    config = load_config_file(root / "configs" / "api_bench.yaml")
    runtime = local_runtime(store)
    for step in (stages.run_raw, stages.run_parse, stages.run_normalize, stages.run_publish):
        step(runtime, config, "all")
    print(f"built {series * days:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    return store


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, path: str, process: subprocess.Popen[bytes], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited ({process.returncode})")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"server on port {port} did not answer {path}")


def start_ingest(root: Path, port: int, cache_mb: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "INGEST_STORE_ROOT": str(root / "store"),
        "INGEST_CONFIG_DIR": str(root / "configs"),
        "INGEST_API_RATE": "0",
        "INGEST_API_VERIFY": "off",
        "INGEST_API_CACHE_MB": str(cache_mb),
    }
    command = [str(BIN / "python"), "-m", "ingest_assets.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    wait_for(port, "/datasets", process)
    return process


def start_roapi(data: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        str(BIN / "roapi"),
        "-a",
        f"127.0.0.1:{port}",
        "-p",
        f"127.0.0.1:{free_port()}",
        "--addr-flight-sql",
        f"127.0.0.1:{free_port()}",
        "-t",
        f"{DATASET.lower()}={data},format=parquet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port, "/api/schema", process)
    return process


# A request: (method, path, body, headers); a worker makes them from its state and the last body
Request = tuple[str, str, bytes | None, dict[str, str]]
Next = Callable[[dict[str, object], bytes | None], Request]


def load(port: int, next_request: Next, concurrency: int, seconds: float) -> dict[str, object]:
    """Closed loop: `concurrency` threads, each on its own keep-alive connection, for `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        state: dict[str, object] = {"rng": random.Random(index), "worker": index}
        body: bytes | None = None
        mine: list[float] = []
        while time.monotonic() < stop:
            method, path, payload, headers = next_request(state, body)
            started = time.perf_counter()
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            body = response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    errors.append(f"{response.status}: {body[:200]!r}")
                body = None
        with lock:
            latencies.extend(mine)
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "per_s": round(len(ordered) / seconds, 1),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 2) if ordered else None,
        "p99_ms": round(1000 * ordered[int(len(ordered) * 0.99)], 2) if ordered else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def series_codes(count: int) -> list[str]:
    return [f"SER{index:04d}" for index in range(count)]


def ingest_series(codes: list[str]) -> Next:
    def make(state: dict[str, object], body: bytes | None) -> Request:
        code = state["rng"].choice(codes)  # type: ignore[attr-defined]
        query = f"series={code}&from={WINDOW[0]}&to={WINDOW[1]}&page_size=100"
        return "GET", f"/datasets/{DATASET}/data?{query}", None, {}

    return make


def ingest_scan(state: dict[str, object], body: bytes | None) -> Request:
    cursor = json.loads(body)["next_cursor"] if body else None
    query = "page_size=1000" + (f"&cursor={cursor}" if cursor else "")
    return "GET", f"/datasets/{DATASET}/data?{query}", None, {}


def roapi_sql(sql: str, accept: str = "application/json") -> Request:
    return "POST", "/api/sql", sql.encode(), {"Accept": accept}


def roapi_series(codes: list[str]) -> Next:
    def make(state: dict[str, object], body: bytes | None) -> Request:
        code = state["rng"].choice(codes)  # type: ignore[attr-defined]
        return roapi_sql(
            f"SELECT * FROM {DATASET.lower()} WHERE internal_series_code = '{code}' AND "
            f"obs_time BETWEEN '{WINDOW[0]}' AND '{WINDOW[1]}' ORDER BY obs_time LIMIT 100"
        )

    return make


def roapi_scan(state: dict[str, object], body: bytes | None) -> Request:
    offset = int(state.get("offset", 0))  # type: ignore[call-overload]
    state["offset"] = offset + 1000 if body and body != b"[]" else 0
    return roapi_sql(
        f"SELECT * FROM {DATASET.lower()} ORDER BY obs_time, key_hash "
        f"LIMIT 1000 OFFSET {state['offset']}"
    )


class Rss:
    """A process's VmRSS, sampled every 0.25 s on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self.done = pid, [], threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _read(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
        return 0

    def _sample(self) -> None:
        while not self.done.is_set():
            self.samples.append(self._read())
            time.sleep(0.25)

    def stop(self) -> dict[str, object]:
        """Start, peak and end, and the RSS at each tenth of the scan's time."""
        self.done.set()
        self.thread.join()
        samples = self.samples
        tenths = [samples[min(len(samples) - 1, len(samples) * i // 10)] for i in range(11)]
        return {
            "start_mb": samples[0],
            "peak_mb": max(samples),
            "end_mb": samples[-1],
            "by_tenth_mb": tenths,
        }


def fetch(port: int, request: Request) -> tuple[bytes, float]:
    method, path, payload, headers = request
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    body = response.read()
    seconds = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status} {body[:300]!r}")
    return body, seconds


def curl(url: str, out: Path, sql: str | None = None, accept: str | None = None) -> float:
    """One whole response read by curl (a native client: Python's http.client adds a second or
    two to 845 MB): the transfer's seconds, as curl times it."""
    command = ["curl", "-sS", "-o", str(out), "-w", "%{http_code} %{time_total}", url]
    if sql is not None:
        command += ["-X", "POST", "--data-binary", sql]
    if accept is not None:
        command += ["-H", f"Accept: {accept}"]
    status, seconds = subprocess.run(
        command, capture_output=True, text=True, check=True
    ).stdout.split()
    if status != "200":
        raise SystemExit(f"{url}: {status} {out.read_bytes()[:300]!r}")
    return float(seconds)


def arrow_rows(path: Path) -> int:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return int(pa.ipc.open_stream(source).read_all().num_rows)


def duckdb_read(data: Path) -> tuple[int, float]:
    """DuckDB in-process: every row of the Parquet files as Arrow record batches."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    started, count = time.perf_counter(), 0
    relation = connection.sql(f"SELECT * FROM read_parquet('{data}/*/*/*.parquet')")
    for batch in relation.to_arrow_reader(65_536):  # (a relation's reader: no extra copy)
        count += batch.num_rows
    return count, time.perf_counter() - started


def ratio(ingest: dict[str, object], duck: dict[str, object]) -> float:
    return round(float(ingest["s"]) / float(duck["s"]), 2)  # type: ignore[arg-type]


def figures(rows: int, seconds: float, **more: object) -> dict[str, object]:
    return {"rows": rows, "s": round(seconds, 2), "rows_per_s": round(rows / seconds), **more}


def scans(
    ingest: tuple[int, int], roapi_port: int, data: Path, rows: int, rounds: int
) -> dict[str, object]:
    """Every row once: as JSON (Ingest's cursor pages; ROAPI's one response), then `rounds`
    times as Arrow from each and DuckDB's in-process read, interleaved (the machine's load
    moves: a ratio is taken within a round)."""
    port, pid = ingest
    found: dict[str, object] = {}
    rss = Rss(pid)
    started, count, cursor = time.perf_counter(), 0, None
    while True:
        query = "page_size=1000" + (f"&cursor={cursor}" if cursor else "")
        body, _ = fetch(port, ("GET", f"/datasets/{DATASET}/data?{query}", None, {}))
        page = json.loads(body)
        count += page["count"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    found["ingest_json"] = figures(count, time.perf_counter() - started, rss=rss.stop())
    out = Path(tempfile.mkdtemp(prefix="api-bench-", dir="/dev/shm")) / "body"
    roapi = f"http://127.0.0.1:{roapi_port}/api/sql"
    table = DATASET.lower()
    try:
        seconds = curl(roapi, out, f"SELECT * FROM {table}", "application/json")
        found["roapi_json"] = figures(len(json.loads(out.read_bytes())), seconds)
        arrow: list[dict[str, object]] = []
        for index in range(rounds):
            rss = Rss(pid)
            seconds = curl(f"http://127.0.0.1:{port}/datasets/{DATASET}/data?format=arrow", out)
            ingest_round = figures(arrow_rows(out), seconds, rss=rss.stop())
            rss = Rss(pid)
            binary = f"http://127.0.0.1:{port}/datasets/{DATASET}/data?format=arrow&hashes=binary"
            seconds = curl(binary, out)
            binary_round = figures(arrow_rows(out), seconds, rss=rss.stop())
            seconds = curl(roapi, out, f"SELECT * FROM {table}", ARROW_STREAM)
            roapi_round = figures(arrow_rows(out), seconds)
            count, seconds = duckdb_read(data)
            duck = figures(count, seconds)
            arrow.append(
                {
                    "ingest": ingest_round,
                    "ingest_binary_hashes": binary_round,
                    "roapi": roapi_round,
                    "duckdb": duck,
                    "ingest_over_duckdb": ratio(ingest_round, duck),
                    "ingest_binary_over_duckdb": ratio(binary_round, duck),
                }
            )
            print(f"arrow round {index + 1}: {arrow[-1]}", flush=True)
    finally:
        out.unlink(missing_ok=True)
        out.parent.rmdir()
    found["arrow_rounds"] = arrow
    for name in ("ingest_over_duckdb", "ingest_binary_over_duckdb"):
        ratios = sorted(float(r[name]) for r in arrow)  # type: ignore[arg-type]
        found[f"{name}_median"] = ratios[len(ratios) // 2]
    counts = [found["ingest_json"], found["roapi_json"]] + [
        v for r in arrow for v in r.values() if isinstance(v, dict)
    ]
    assert all(c["rows"] == rows for c in counts), counts  # type: ignore[index]
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path("/tmp/ingest_api_bench"))
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--label", default="run")
    parser.add_argument(
        "--cache-mb", type=int, default=256, help="the server's INGEST_API_CACHE_MB"
    )
    parser.add_argument("--scans-only", action="store_true", help="no latency runs")
    parser.add_argument("--rounds", type=int, default=3, help="Arrow scans, interleaved")
    args = parser.parse_args()
    store = build(args.root, args.series, args.days)
    events = store / "datasets" / DATASET / "events"
    versions = sorted(p for p in events.iterdir() if p.is_dir())
    data = versions[-1] / "data"  # (one version: its event files are the latest rows)
    codes = series_codes(args.series)
    port, roapi_port = free_port(), free_port()
    ingest = start_ingest(args.root, port, args.cache_mb)
    roapi = start_roapi(data, roapi_port)
    result: dict[str, object] = {
        "rows": args.series * args.days,
        "series": args.series,
        "seconds": args.seconds,
        "cache_mb": args.cache_mb,
    }
    try:
        latency: dict[str, object] = {}
        for concurrency in () if args.scans_only else (1, 8):
            for name, target, make in (
                ("ingest_series", port, ingest_series(codes)),
                ("roapi_series", roapi_port, roapi_series(codes)),
                ("ingest_scan", port, ingest_scan),
                ("roapi_scan", roapi_port, roapi_scan),
            ):
                measured = load(target, make, concurrency, args.seconds)
                latency[f"{name}_c{concurrency}"] = measured
                print(f"{name} c={concurrency}: {measured}", flush=True)
        result["latency"] = latency
        result["scans"] = scans(
            (port, ingest.pid), roapi_port, data, args.series * args.days, args.rounds
        )
        print(json.dumps(result["scans"], indent=2), flush=True)
    finally:
        for process in (ingest, roapi):
            process.terminate()
            process.wait(timeout=30)
    save(HERE / "results_api.json", args.label, result, {"PYTHONPATH": str(REPO)})


if __name__ == "__main__":
    main()
