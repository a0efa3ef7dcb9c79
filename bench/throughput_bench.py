"""Throughput of an installation (bench/README.md, "Throughput"): many small datasets (CSV and
JSON, 1,000 rows each, one daily partition each) and one large one, on the S3 store and DynamoDB
locks (moto, in a process of its own) with the Dagster instance on PostgreSQL (a fresh database).

Each shape runs the same partition of every small dataset as one Dagster run
(`dagster asset materialize --select '*'`), into a store prefix of its own:
- `multiprocess`: the multiprocess executor (a process per step, 2 at a time);
- `celery-N`: the Celery executor with N worker processes on Redis (databases 13 and 14).
"Ours" is the time inside the steps (STEP_START to STEP_SUCCESS in the event log, summed);
the rest of the wall time is Dagster's (code location loads, step launch, event writes).

    python bench/throughput_bench.py                       # 200 datasets, celery 1/2/4, ~15 min
    python bench/throughput_bench.py --datasets 20 --shapes multiprocess
    python bench/throughput_bench.py --big-rows 1000000 --shapes big
    python bench/throughput_bench.py --shapes per-run      # 3 runs of one dataset each
"""

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PARTITION = "2026-01-01"
ROWS = 1000
BROKER, BACKEND = 13, 14
CONFIG = """\
dataset_id: {dataset}
source: {{kind: file, path: {path}, format: {format}{records}, max_bytes: 1000000000}}
normalize:
  primary_keys: [series, n]
  schema: {{n: int64, value: float64}}
partitions: {{kind: daily, start: 2026-01-01}}
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_datasets(root: Path, count: int, big_rows: int) -> dict[str, int]:
    """`count` small datasets (alternately CSV and JSON) and, with big_rows, BIG (CSV)."""
    (root / "configs").mkdir(parents=True)
    (root / "data").mkdir()
    rows: dict[str, int] = {}

    def add(dataset: str, format_: str, n: int) -> None:
        path = root / "data" / f"{dataset}.{format_}"
        if format_ == "json":
            records = [
                {"series": f"{dataset}-{i % 10}", "n": i, "value": i * 0.5} for i in range(n)
            ]
            path.write_text(json.dumps({"results": records}))
        else:
            with path.open("w") as out:
                out.write("series,n,value\n")
                for start in range(0, n, 100_000):
                    out.write(
                        "".join(
                            f"{dataset}-{i % 10},{i},{i * 0.5}\n"
                            for i in range(start, min(n, start + 100_000))
                        )
                    )
        records = ", records_path: results" if format_ == "json" else ""
        text = CONFIG.format(dataset=dataset, path=path, format=format_, records=records)
        (root / "configs" / f"{dataset.lower()}.yaml").write_text(text)
        rows[dataset] = n

    for i in range(count):
        add(f"T{i:04d}", "json" if i % 2 else "csv", ROWS)
    if big_rows:
        add("BIG", "csv", big_rows)
    return rows


class Installation:
    """moto (S3, DynamoDB) in a process, a fresh PostgreSQL database, a DAGSTER_HOME."""

    def __init__(self, root: Path) -> None:
        self.root = root
        port = _port()
        self.moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._set_up(f"http://127.0.0.1:{port}")
        except BaseException:
            self.moto.terminate()  # (no server left behind by a setup that failed)
            raise

    def _set_up(self, endpoint: str) -> None:
        import boto3
        import psycopg2

        root = self.root
        self.database = f"ingest_throughput_{uuid.uuid4().hex[:8]}"
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.database}"')
        admin.close()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "INGEST_CONFIG_DIR": str(root / "configs"),
            "INGEST_PROJECT_ROOT": str(REPO),
            "INGEST_STORE_ROOT": str(root / "scratch"),
            "INGEST_LOCK_TABLE": "bench-locks",
            # (a bare `dagster` command needs the driver named: DAGSTER_NOTES.md)
            "INGEST_DAGSTER_PG_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.database}",
            "DAGSTER_HOME": str(root / "dagster_home"),
            "INGEST_CELERY_BROKER": f"redis://127.0.0.1:6379/{BROKER}",
            "INGEST_CELERY_BACKEND": f"redis://127.0.0.1:6379/{BACKEND}",
        }
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("AWS_")})
        for _ in range(100):
            try:
                s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
                s3.create_bucket(Bucket="bench")
                break
            except Exception:  # noqa: BLE001 - moto still starting
                time.sleep(0.2)
        sys.path.insert(0, str(REPO))
        from ingest_resources.locks import create_lock_table

        dynamo = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        create_lock_table(dynamo, "bench-locks")
        subprocess.run(
            [sys.executable, "-m", "ingest_assets.cli", "instance"], env=self.env, check=True
        )

    def close(self) -> None:
        import psycopg2

        self.moto.terminate()
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        admin.close()


def _workers(env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen]:
    """`count` worker processes, started and answering a ping before the run is timed."""
    import redis
    from celery import Celery

    for db in (BROKER, BACKEND):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ingest_assets.orchestration.celery_worker"]
            + ["worker", "-Q", "dagster", "--concurrency", "1", "-n", f"w{i}@%h", "-l", "WARNING"]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env,
            stdout=(logs / f"worker{i}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]
    app = Celery(broker=env["INGEST_CELERY_BROKER"], backend=env["INGEST_CELERY_BACKEND"])
    deadline = time.monotonic() + 120
    while len(app.control.ping(timeout=1.0)) < count:
        assert time.monotonic() < deadline, "the Celery workers did not start"
    return workers


def _run_figures(env: dict[str, str], run_id: str) -> dict[str, Any]:
    """From the run's event log: steps, time inside them (ours), rows published."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER", "INGEST_DAGSTER"))})
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_record_by_id(run_id)
        starts: dict[str, float] = {}
        inside, rows_added, steps = 0.0, 0, 0
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[record.step_key] = record.timestamp
            elif event.event_type_value == "STEP_SUCCESS":
                inside += record.timestamp - starts[record.step_key]
                steps += 1
            elif event.event_type_value == "ASSET_MATERIALIZATION":
                key = event.asset_key.path
                if key[-1] == "published":
                    value = event.step_materialization_data.materialization.metadata.get(
                        "rows_added"
                    )
                    rows_added += int(value.value) if value else 0
        assert run is not None
        return {
            "status": run.dagster_run.status.value,
            "run_seconds": round((run.end_time or 0) - (run.start_time or 0), 1),
            "steps": steps,
            "inside_steps_seconds": round(inside, 1),
            "rows_added": rows_added,
        }


def run_shape(install: Installation, shape: str, select: str, datasets: int) -> dict[str, Any]:
    env = dict(install.env)
    env["INGEST_STORE_URL"] = f"s3://bench/{shape}-{uuid.uuid4().hex[:6]}"
    workers: list[subprocess.Popen] = []
    if shape.startswith("celery"):
        env["INGEST_EXECUTOR"] = "celery"
        workers = _workers(env, int(shape.split("-")[1]), install.root)
    elif shape == "multiprocess":
        env["INGEST_EXECUTOR"] = "multiprocess"
        env["INGEST_MAX_CONCURRENT"] = "2"
    else:
        env["INGEST_EXECUTOR"] = "in_process"
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m"]
    command += ["ingest_assets.definitions", "--select", select, "--partition", PARTITION]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=install.root)
    wall = time.perf_counter() - started
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"{shape} failed:\n{done.stderr[-4000:]}")
    run_id = _last_run_id(env)
    figures = _run_figures(env, run_id)
    figures.update(
        shape=shape,
        datasets=datasets,
        wall_seconds=round(wall, 1),
        datasets_per_minute=round(datasets / wall * 60, 1),
    )
    # per step: the time inside it (ours) and the rest of the workers' time (Dagster's, and idle)
    slots = wall * _parallel(shape)
    figures["ours_per_step_s"] = round(figures["inside_steps_seconds"] / figures["steps"], 3)
    figures["rest_per_step_s"] = round(
        (slots - figures["inside_steps_seconds"]) / figures["steps"], 3
    )
    print(json.dumps(figures), flush=True)
    return figures


def _parallel(shape: str) -> int:
    return (
        int(shape.split("-")[1])
        if shape.startswith("celery")
        else 2
        if shape == "multiprocess"
        else 1
    )


def _last_run_id(env: dict[str, str]) -> str:
    import psycopg2

    url = env["INGEST_DAGSTER_PG_URL"].replace("+psycopg2", "")
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id FROM runs ORDER BY create_timestamp DESC LIMIT 1")
        (run_id,) = cursor.fetchone()
    return run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--big-rows", type=int, default=0, help="rows of BIG (0: no BIG)")
    parser.add_argument("--shapes", default="celery-1,celery-2,celery-4")
    parser.add_argument("--out", default=str(HERE / "results_throughput.json"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ingest_throughput_"))
    rows = write_datasets(root, args.datasets, args.big_rows)
    install = Installation(root)
    results = []
    try:
        for shape in args.shapes.split(","):
            if shape == "per-run":  # runs of one small dataset each, in-process
                for i in range(3):
                    figures = run_shape(install, "in_process", f"key:T{i:04d}/*", 1)
                    figures["shape"] = f"per-run ({args.datasets} datasets loaded)"
                    results.append(figures)
                continue
            if shape == "big":
                figures = run_shape(install, "in_process", "key:BIG/*", 1)
                figures["shape"] = f"big ({args.big_rows:,} rows, in_process)"
                assert figures["rows_added"] == rows["BIG"], figures
            else:
                figures = run_shape(install, shape, "key:T*/*", args.datasets)
                assert figures["rows_added"] == ROWS * args.datasets, figures
            results.append(figures)
    finally:
        install.close()
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {"runs": []}
    previous["runs"] += [
        {**r, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")} for r in results
    ]
    previous["machine"] = f"{os.cpu_count()} cores"
    out.write_text(json.dumps(previous, indent=2) + "\n")


if __name__ == "__main__":
    main()
