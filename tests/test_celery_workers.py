"""INGEST_EXECUTOR=celery end to end: two Celery worker processes on this machine's Redis (its
databases 11 and 12, flushed), the Dagster instance on PostgreSQL (a fresh database), the S3 store
and DynamoDB locks on moto, sources over HTTP. Runs of three datasets (CSV and JSON) over three
partitions publish every source row exactly once. In the last run the worker process fetching a
source is killed (SIGKILL) in mid-step: the step goes back to the queue (executors.CELERY_CONFIG),
a worker runs it again, and the run ends with every source row published once."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
from werkzeug import Request, Response

from ingest_assets.contract import load_config_file
from ingest_assets.stages.export import published_table
from ingest_resources.runtime import runtime_from_env

REPO = Path(__file__).resolve().parents[1]
# Celery workers on Redis (about 60 s): `make test-deploy`, not `make test` (its budget)
pytestmark = pytest.mark.skipif(
    os.environ.get("INGEST_TEST_DEPLOY") != "1", reason="runs under `make test-deploy`"
)
BROKER, BACKEND = 11, 12
PARTITIONS = ["2025-01-01", "2025-01-02", "2025-01-03"]
ROWS = 300  # per dataset and partition
DATASETS = {"CEL_A": "csv", "CEL_B": "csv", "CEL_J": "json"}
CONFIG = """\
dataset_id: {dataset}
source:
  kind: http
  url: "{base}/{dataset}/{{partition_start}}.{format}"
  format: {format}
{records}normalize:
  primary_keys: [series, n]
  schema: {{n: int64, value: float64}}
partitions: {{kind: daily, start: 2025-01-01}}
"""


def source_rows(dataset: str, partition: str) -> list[tuple[str, int, float]]:
    day = int(partition[-2:])
    return [(f"{dataset}-{day}", n, n * 1.5 + day) for n in range(ROWS)]


def body(dataset: str, partition: str) -> str:
    rows = source_rows(dataset, partition)
    if DATASETS[dataset] == "json":
        return json.dumps({"results": [{"series": s, "n": n, "value": v} for s, n, v in rows]})
    return "series,n,value\n" + "".join(f"{s},{n},{v}\n" for s, n, v in rows)


class Sources:
    """The HTTP sources; the first fetch of CEL_B's last partition hangs until released (the
    worker running it is killed meanwhile)."""

    HANGING = "/CEL_B/2025-01-03.csv"

    def __init__(self) -> None:
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.hung = False

    def __call__(self, request: Request) -> Response:
        if request.path == self.HANGING and not self.hung:
            self.hung = True
            self.hanging.set()
            self.release.wait(60)
        dataset, file = request.path.strip("/").split("/")
        return Response(body(dataset, file.split(".")[0]))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _workers_of(instance, run_id: str, step: str | None = None) -> list[str]:
    """The workers (`w1`, `w2`) that started a step (or any step) of a run, once per start."""
    return [
        record.dagster_event.event_specific_data.metadata["Celery worker"].value.split("@")[0]
        for record in instance.all_logs(run_id)
        if record.dagster_event
        and "in celery worker" in record.message
        and (step is None or record.step_key == step)
    ]


def _dagster(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)


def _materialize(env: dict[str, str], partition: str) -> subprocess.CompletedProcess:
    return _dagster(
        env,
        *[sys.executable, "-m", "dagster", "asset", "materialize", "-m"],
        *["ingest_assets.definitions", "--select", "*", "--partition", partition],
    )


@pytest.mark.timeout(240)
def test_celery_workers_publish_every_row_once_and_a_killed_worker_is_retried(
    tmp_path: Path, aws, pg_database, httpserver, monkeypatch
) -> None:
    from ingest_assets.cli.instance import open_instance

    for db in (BROKER, BACKEND):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
    sources = Sources()
    httpserver.expect_request(re.compile(r"^/CEL_.*")).respond_with_handler(sources)
    configs = tmp_path / "configs"
    configs.mkdir()
    base = f"http://127.0.0.1:{httpserver.port}"
    for dataset, format_ in DATASETS.items():
        records = "  records_path: results\n" if format_ == "json" else ""
        text = CONFIG.format(dataset=dataset, base=base, format=format_, records=records)
        (configs / f"{dataset}.yaml").write_text(text)
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    monkeypatch.setenv("INGEST_PROJECT_ROOT", str(REPO))
    monkeypatch.setenv("INGEST_DAGSTER_PG_URL", pg_database)
    monkeypatch.setenv("INGEST_EXECUTOR", "celery")
    monkeypatch.setenv("INGEST_CELERY_BROKER", f"redis://127.0.0.1:6379/{BROKER}")
    monkeypatch.setenv("INGEST_CELERY_BACKEND", f"redis://127.0.0.1:6379/{BACKEND}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with open_instance() as instance:  # DAGSTER_HOME on PostgreSQL, as `ingest instance` sets it
        env = dict(os.environ)
        workers = {
            f"w{i}": subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "ingest_assets.orchestration.celery_worker"]
                + [
                    "worker",
                    "-Q",
                    "dagster",
                    "--concurrency",
                    "1",
                    "-n",
                    f"w{i}@%h",
                    "-l",
                    "WARNING",
                ]
                + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=env,
                cwd=tmp_path,
                stdout=(tmp_path / f"w{i}.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            for i in (1, 2)
        }
        try:
            for partition in PARTITIONS[:2]:
                done = _materialize(env, partition)
                assert done.returncode == 0, done.stderr[-4000:]
            ran_on = {
                record.dagster_event.event_specific_data.metadata["Celery worker"].value.split("@")[
                    0
                ]
                for record in instance.all_logs(instance.get_runs()[0].run_id)
                if record.dagster_event and "in celery worker" in record.message
            }
            assert ran_on <= set(workers) and ran_on, ran_on

            # the last partition: the worker process fetching CEL_B is killed in mid-fetch
            results: list[subprocess.CompletedProcess] = []
            last = threading.Thread(target=lambda: results.append(_materialize(env, PARTITIONS[2])))
            last.start()
            assert sources.hanging.wait(90), "the fetch of CEL_B never started"
            run = instance.get_runs(limit=1)[0]
            (executing,) = _workers_of(instance, run.run_id, "CEL_B__raw")
            (child,) = _children(workers[executing].pid)
            os.kill(child, signal.SIGKILL)
            sources.release.set()  # (the killed fetch's connection: let the server thread go)
            last.join(150)
            assert results, [(tmp_path / f"{w}.log").read_text()[-3000:] for w in workers]
            # the step went back to the queue, ran again, and the run ended well
            assert results[0].returncode == 0, results[0].stderr[-4000:]
            assert instance.get_run_by_id(run.run_id).status.value == "SUCCESS"
            assert len(_workers_of(instance, run.run_id, "CEL_B__raw")) == 2
            starts = [
                r
                for r in instance.all_logs(run.run_id)
                if r.step_key == "CEL_B__raw"
                and r.dagster_event
                and r.dagster_event.event_type_value == "STEP_START"
            ]
            assert len(starts) == 2  # started twice: the kill was in mid-step
        finally:
            sources.release.set()
            for worker in workers.values():
                worker.terminate()
            for worker in workers.values():
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
    runtime = runtime_from_env()
    for dataset in DATASETS:
        config = load_config_file(configs / f"{dataset}.yaml")
        table = published_table(runtime.store, config)
        columns = [table[name].to_pylist() for name in ("series", "n", "value")]
        published = sorted(zip(*columns, strict=True))
        wanted = sorted(row for p in PARTITIONS for row in source_rows(dataset, p))
        assert published == wanted, dataset  # every row of every partition, once
