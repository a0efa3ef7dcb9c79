"""Chaos test of exactly-once publishing: `ingest run` killed at random moments, on the local
store and on S3 + DynamoDB (a moto server started here), checked against a store that
published the same sources without any fault.

    .venv/bin/python bench/chaos.py                      # 15 rounds per backend, about 6 min
    .venv/bin/python bench/chaos.py --snapshot --rounds 75 --check-every 10 --label long
    .venv/bin/python bench/chaos.py --backends local --rounds 10 --seed 7

Each backend gets two datasets: CHAOS (unpartitioned, key `id`; a revision may move a key to
another month) and CHAOSP (daily partitions, key `code, obs_time`; each of its rounds runs the
next partition with `--partition`). Every round writes the dataset's next CSV source (new rows,
revised rows, the recent months again; deterministic from the seed), then one trial:

- clean: `ingest run` to completion;
- sigkill: SIGKILL after a random delay in [0, typical run time) (1 to 3 times in a row);
- sigkill_publish: SIGKILL a random 0-250 ms after the run's event folder appears;
- fault: INGEST_FAULT_INJECT at one of the publisher's crash points (exit 137);
- concurrent: two runs at once, both to completion;
- concurrent_kill: two runs at once, one of them killed (SIGKILL or a fault point);

and after any kill one more run, to completion. The same source is then published into the
reference store, in-process and without faults (stages.run_raw/parse/normalize/publish).
After each round the in-process `eventstore.verify` runs on the chaos store; every
--check-every rounds and at the end: `ingest verify` (must exit 0), `ingest gc`, what gc left,
`ingest verify` again, `ingest export --format csv` compared row for row (without `version`
and `collection_date`) with the reference store's export (in-process), the export against the
latest values computed from the generated CSVs, and the events of the chain (one insert per
key, no update repeating the key's row, one version per source with the reference's counts).

An inconsistency keeps its store under /tmp/chaos-failures/ and is listed in the results
(bench/results_chaos.json, under --label).
"""

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from measure import commit_of

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = REPO / ".venv" / "bin"
INGEST = str(BIN / "ingest")
FAILURES = Path("/tmp/chaos-failures")
FAULT_POINTS = ["after_data", "after_manifest", "before_swap", "after_swap", "after_projections"]
ACTIONS = {  # trial kind: weight
    "clean": 1.0,
    "sigkill": 3.0,
    "sigkill_publish": 2.0,
    "fault": 3.0,
    "concurrent": 1.0,
    "concurrent_kill": 1.5,
}
RUN_TIMEOUT_S = 120
CMD_TIMEOUT_S = 90
TTL_S = 4  # the datasets' lock TTL: DynamoDB leases of killed runs expire after it; gc's age

CHAOS_YAML = """\
dataset_id: CHAOS
description: chaos test, unpartitioned
source: {{kind: file, path: {path}, format: csv}}
normalize: {{primary_keys: [id], schema: {{id: int64, value: float64}}}}
lock: {{ttl_s: {ttl}}}
"""
CHAOSP_YAML = """\
dataset_id: CHAOSP
description: chaos test, daily partitions
source: {{kind: file, path: {path}, format: csv}}
normalize: {{primary_keys: [code, obs_time], schema: {{value: float64}}}}
partitions: {{kind: daily, start: 2024-01-01}}
lock: {{ttl_s: {ttl}}}
"""


# --------------------------------------------------------------------------- sources


class ChaosSource:
    """CHAOS: key id; obs_time a value column (a revision may move a key's month)."""

    dataset = "CHAOS"
    header = ["id", "obs_time", "value", "label"]

    def __init__(self, rng: random.Random, rows: int):
        self.rng = rng
        self.rows: dict[tuple, tuple] = {}  # key -> (obs_date, value, label): the latest values
        self.start = dt.date(2024, 1, 1)
        self.next_id = 0
        self.rounds = 0
        self.last_csv = ""
        self.initial = rows

    def _value(self) -> str:
        return f"{self.rng.uniform(-500, 5000):.2f}"

    def _label(self) -> str:
        return self.rng.choice(["alpha", "beta", "gamma", "delta", "épsilon", 'q"uote,d'])

    def _date(self, low: int, high: int) -> dt.date:
        return self.start + dt.timedelta(days=self.rng.randrange(low, high))

    def next(self, unchanged: bool) -> str:
        """The next CSV source (the previous one again when `unchanged`)."""
        if unchanged and self.last_csv:
            return self.last_csv
        touched: set[tuple] = set()
        if self.rounds == 0:
            for _ in range(self.initial):  # six months
                self._add(self._date(0, 182))
            include = set(self.rows)
        else:
            horizon = 182 + 7 * self.rounds  # a week more each round
            for _ in range(self.rng.randint(80, 160)):
                touched.add(self._add(self._date(horizon - 14, horizon)))
            for key in self.rng.sample(sorted(self.rows), min(len(self.rows), 60)):
                date, value, label = self.rows[key]
                if self.rng.random() < 0.15:
                    date = self._date(0, horizon)  # moves to another month
                if self.rng.random() < 0.1:
                    label = self._label()
                self.rows[key] = (date, self._value(), label)
                touched.add(key)
            recent = self.start + dt.timedelta(days=horizon - 90)
            include = touched | {k for k, row in self.rows.items() if row[0] >= recent}
        self.rounds += 1
        self.last_csv = self._render(include)
        return self.last_csv

    def _add(self, date: dt.date) -> tuple:
        key = (str(self.next_id),)
        self.next_id += 1
        self.rows[key] = (date, self._value(), self._label())
        return key

    def _render(self, keys) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        order = list(keys)
        self.rng.shuffle(order)
        for key in order:
            date, value, label = self.rows[key]
            writer.writerow([key[0], date.isoformat(), value, label])
        return out.getvalue()

    def expected(self) -> dict[tuple, tuple]:
        """Latest values per key, as compared with an export: key -> (date, float, label)."""
        return {k: (d.isoformat(), float(v), label) for k, (d, v, label) in self.rows.items()}

    @staticmethod
    def exported(row: dict) -> tuple[tuple, tuple]:
        return (row["id"],), (row["obs_time"][:10], float(row["value"]), row["label"])


class PartitionedSource(ChaosSource):
    """CHAOSP: key (code, obs_time); daily partitions, one more per round."""

    dataset = "CHAOSP"
    header = ["code", "obs_time", "value"]
    codes = [f"S{i:02d}" for i in range(8)]

    def next(self, unchanged: bool) -> str:
        if unchanged and self.last_csv:
            return self.last_csv
        touched: set[tuple] = set()
        days = self.initial // len(self.codes)
        if self.rounds == 0:
            for day in range(days):
                for code in self.codes:
                    touched.add(self._put(code, day))
        else:
            end = days + 3 * self.rounds
            for day in range(end - 3, end):
                for code in self.rng.sample(self.codes, self.rng.randint(5, len(self.codes))):
                    touched.add(self._put(code, day))
            for key in self.rng.sample(sorted(self.rows), min(len(self.rows), 50)):
                touched.add(self._put(key[0], (dt.date.fromisoformat(key[1]) - self.start).days))
        last = max(dt.date.fromisoformat(k[1]) for k in self.rows)
        recent = (last - dt.timedelta(days=100)).isoformat()
        include = touched | {k for k in self.rows if k[1] >= recent}
        self.rounds += 1
        self.last_csv = self._render(include)
        return self.last_csv

    def _put(self, code: str, day: int) -> tuple:
        date = self.start + dt.timedelta(days=day)
        key = (code, date.isoformat())
        self.rows[key] = (date, self._value(), "")
        return key

    def _render(self, keys) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        order = list(keys)
        self.rng.shuffle(order)
        for key in order:
            _, value, _ = self.rows[key]
            writer.writerow([key[0], key[1], value])
        return out.getvalue()

    def expected(self) -> dict[tuple, tuple]:
        return {k: (d.isoformat(), float(v), "") for k, (d, v, _) in self.rows.items()}

    @staticmethod
    def exported(row: dict) -> tuple[tuple, tuple]:
        date = row["obs_time"][:10]
        return (row["code"], date), (date, float(row["value"]), "")


# --------------------------------------------------------------------------- backends


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    """A moto server on 127.0.0.1, started and stopped here (by its own process id)."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("moto_server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


class Backend:
    """Where the chaos store and the reference store are, for subprocesses (env) and for
    this process (runtimes)."""

    def __init__(self, name: str, work: Path, config_dir: Path, moto: Moto | None = None):
        self.name, self.work, self.config_dir, self.moto = name, work, config_dir, moto
        self.bucket = "chaos-bench"
        self._runtimes: dict[str, object] = {}
        if moto is not None:
            aws = {
                "AWS_ENDPOINT_URL": moto.url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
            os.environ.update(aws)  # (this process's boto3 clients)
            self.aws = aws
            import boto3

            from ingest_resources.locks import create_lock_table

            boto3.client("s3", endpoint_url=moto.url).create_bucket(Bucket=self.bucket)
            dynamo = boto3.client("dynamodb", endpoint_url=moto.url)
            for which in ("chaos", "ref"):
                create_lock_table(dynamo, f"{which}-locks")
        else:
            self.aws = {}

    def root(self, which: str) -> Path:
        return self.work / f"store-{which}"

    def url(self, which: str) -> str | None:
        return f"s3://{self.bucket}/{which}" if self.moto else None

    def env(self, which: str, slot: str = "a") -> dict[str, str]:
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "AWS_", "DAGSTER_"))
        }
        env = {
            **base,
            **self.aws,
            "INGEST_CONFIG_DIR": str(self.config_dir),
            "INGEST_STORE_ROOT": str(self.root(which)),
            "DAGSTER_HOME": str(self.work / f"dagster-{which}-{slot}"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONFAULTHANDLER": "1",  # (a native crash prints every thread's stack)
        }
        if self.moto:
            env["INGEST_STORE_URL"] = self.url(which)
            env["INGEST_LOCK_TABLE"] = f"{which}-locks"
        return env

    def runtime(self, which: str):
        if which not in self._runtimes:
            from ingest_resources.runtime import build_runtime

            self._runtimes[which] = build_runtime(
                self.root(which),
                self.url(which),
                f"{which}-locks" if self.moto else None,
                self.moto.url if self.moto else None,
            )
        return self._runtimes[which]

    def copy_store(self, which: str, target: Path) -> None:
        """A copy of the whole store (what it held when the inconsistency was found)."""
        if self.moto is None:
            shutil.copytree(self.root(which), target, symlinks=True, dirs_exist_ok=True)
            return
        store = self.runtime(which).store
        client, prefix = store.client, store.prefix + "/"
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                path = target / item["Key"][len(prefix) :]
                path.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(self.bucket, item["Key"], str(path))


# --------------------------------------------------------------------------- runs


class Run:
    """One `ingest run` subprocess (its own session: killed as a group, by its id)."""

    def __init__(self, env, dataset, partition, log_dir: Path, fault: str | None = None):
        self.fault = fault
        env = dict(env)
        if fault:
            env["INGEST_FAULT_INJECT"] = fault
        command = [INGEST, "run", dataset] + (["--partition", partition] if partition else [])
        log_dir.mkdir(parents=True, exist_ok=True)
        self.out = tempfile.TemporaryFile(dir=log_dir)  # noqa: SIM115 - read after the run
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            command, env=env, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.killed = False
        self.seconds: float | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILL the run; False when it had already ended."""
        if not self.alive():
            return False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.killed = True
        return True

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.killed = False  # (not a kill of the chaos: a failure)
            self.proc.wait(10)
            code = -999  # timed out
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
        return code

    def output(self) -> str:
        self.out.seek(0)
        return self.out.read().decode(errors="replace")


def cli(env: dict, *args: str, timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [INGEST, *args],
            env=env,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, -999, exc.stdout or "", "timed out")


def tail(text: str, lines: int = 6) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- the store, read


def store_state(backend: Backend, dataset: str) -> dict:
    """What the chaos store holds for the dataset (read only)."""
    from ingest_assets import layout
    from ingest_assets.eventstore import EventStoreError, follow_ups, projections
    from ingest_assets.eventstore import index as key_index
    from ingest_assets.eventstore.chain import read_current, version_chain

    store = backend.runtime("chaos").store
    state: dict = {"current": None, "chain": [], "error": None}
    try:
        current, _ = read_current(store, dataset)
        chain = version_chain(store, dataset, current)
        state["current"] = current.version if current else None
        state["chain"] = [m.version for m in chain]
    except EventStoreError as exc:
        state["error"] = f"{type(exc).__name__}: {exc}"
    folders = {f for f in store.list_folders(layout.events(dataset)) if not f.startswith(".")}
    state["orphans"] = sorted(folders - set(state["chain"]))
    state["pending"] = sorted(follow_ups.pending(store, dataset))
    state["indexed"] = key_index.indexed_version(store, dataset)
    state["projected"] = projections.state_version(store, dataset)
    return state


def landing(before: dict, after: dict) -> str:
    """Where a kill landed, as the store shows it."""
    if after["error"]:
        return "store left unreadable"
    if after["current"] != before["current"]:
        behind = (
            after["pending"]
            or after["indexed"] != after["current"]
            or after["projected"] != after["current"]
        )
        return "after swap, follow-ups unfinished" if behind else "after swap, all done"
    if set(after["orphans"]) - set(before["orphans"]):
        return "event written, not swapped"
    return "before any event was written"


def leftovers(backend: Backend, dataset: str, min_age_s: float) -> dict[str, list[str]]:
    """What `ingest gc` should have removed and is still there (untouched for min_age_s)."""
    from ingest_assets import layout
    from ingest_assets.eventstore.chain import read_current, version_chain

    store = backend.runtime("chaos").store
    current, _ = read_current(store, dataset)
    chain = {m.version for m in version_chain(store, dataset, current)}
    now = time.time()
    events = layout.events(dataset) + "/"
    plans = layout.follow_ups(dataset) + "/"
    found: dict[str, list[str]] = {"orphan_event": [], "orphan_plan": [], "scratch": []}
    found["young"] = []
    found["lock_files"] = []
    for key, (_, modified) in store.stat_list(layout.dataset(dataset), hidden=True).items():
        parts = key.split("/")
        if key.endswith(".lock"):
            kind = "lock_files"
        elif any(part.startswith(".") for part in parts):
            kind = "scratch"
        elif key.startswith(events) and key[len(events) :].split("/", 1)[0] not in chain:
            kind = "orphan_event"
        elif key.startswith(plans) and key[len(plans) :].removesuffix(".json") not in chain:
            kind = "orphan_plan"
        else:
            continue
        if kind != "lock_files" and now - modified < min_age_s:
            kind = "young"
        found[kind].append(key)
    return found


def event_problems(backend: Backend, dataset: str) -> tuple[list[str], list[tuple]]:
    """Exactly-once in the events of the chain: one insert per key, updates only of known keys
    and only with another row; and the chain as (partition, added, revised, rows_total)."""
    from ingest_assets.eventstore.chain import read_current, version_chain
    from ingest_assets.eventstore.events import OP, read_event_rows
    from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, digest_columns

    store = backend.runtime("chaos").store
    current, _ = read_current(store, dataset)
    chain = version_chain(store, dataset, current)
    problems: list[str] = []
    seen: dict[bytes, bytes] = {}
    shape = []
    for manifest in chain:
        table = read_event_rows(store, manifest.file_keys, [KEY_HASH, ROW_HASH, OP])
        counts = Counter()
        if table is not None:
            table = digest_columns(table)
            keys = table[KEY_HASH].to_pylist()
            rows = table[ROW_HASH].to_pylist()
            ops = table[OP].to_pylist()
            if len(set(keys)) != len(keys):
                problems.append(f"version {manifest.version}: a key appears twice in one event")
            for key, row, op in zip(keys, rows, ops, strict=True):
                counts[op] += 1
                if op == "insert" and key in seen:
                    problems.append(f"version {manifest.version}: key {key.hex()} inserted again")
                elif op == "update" and key not in seen:
                    problems.append(
                        f"version {manifest.version}: update of unknown key {key.hex()}"
                    )
                elif op == "update" and seen[key] == row:
                    problems.append(
                        f"version {manifest.version}: key {key.hex()} updated to the row it had"
                    )
                seen[key] = row
        if counts["insert"] != manifest.counts.get("added") or counts[
            "update"
        ] != manifest.counts.get("revised"):
            problems.append(
                f"version {manifest.version}: manifest counts added={manifest.counts.get('added')} "
                f"revised={manifest.counts.get('revised')}, events hold {dict(counts)}"
            )
        shape.append(
            (
                manifest.partition,
                manifest.counts.get("added"),
                manifest.counts.get("revised"),
                manifest.rows_total,
            )
        )
    if current is not None and current.rows_total != len(seen):
        problems.append(f"rows_total {current.rows_total}, the events hold {len(seen)} keys")
    return problems, shape


def reference_shape(backend: Backend, dataset: str) -> list[tuple]:
    from ingest_assets.eventstore.chain import read_current, version_chain

    store = backend.runtime("ref").store
    current, _ = read_current(store, dataset)
    return [
        (m.partition, m.counts.get("added"), m.counts.get("revised"), m.rows_total)
        for m in version_chain(store, dataset, current)
    ]


def parse_export(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def compare_exports(chaos: list[dict], ref: list[dict]) -> list[str]:
    drop = ("version", "collection_date")

    def strip(row):
        return tuple((k, v) for k, v in row.items() if k not in drop)

    problems = []
    if len(chaos) != len(ref):
        problems.append(f"chaos export has {len(chaos)} rows, the reference {len(ref)}")
    differing = [
        i for i, (a, b) in enumerate(zip(chaos, ref, strict=False)) if strip(a) != strip(b)
    ]
    if differing:
        i = differing[0]
        problems.append(
            f"{len(differing)} row(s) differ from the reference; first at row {i}: "
            f"{dict(strip(chaos[i]))} vs {dict(strip(ref[i]))}"
        )
    return problems


def compare_expected(rows: list[dict], source: ChaosSource) -> tuple[list[str], int]:
    """The export against the latest values of the generated CSVs; and duplicate keys."""
    expected = source.expected()
    found: dict[tuple, tuple] = {}
    duplicates = 0
    for row in rows:
        key, values = source.exported(row)
        duplicates += key in found
        found[key] = values
    problems = []
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if duplicates:
        problems.append(f"{duplicates} duplicate key(s) in the export")
    if missing:
        problems.append(f"{len(missing)} key(s) missing from the export, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} key(s) in the export were never in a source: {extra[:3]}")
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} key(s) with values other than the latest source's; e.g. {k}: "
            f"export {found[k]}, source {expected[k]}"
        )
    return problems, duplicates


# --------------------------------------------------------------------------- the chaos


class Chaos:
    def __init__(self, args, backend: Backend, rng: random.Random, sources: dict, deadline: float):
        self.args, self.b, self.rng, self.sources = args, backend, rng, sources
        self.deadline = deadline
        self.logs = backend.work / "logs"
        self.stats: Counter = Counter()
        self.kills: Counter = Counter()  # by kind
        self.landings: Counter = Counter()
        self.run_failures: Counter = Counter()  # exit codes other than 0/137 of runs not killed
        self.durations: dict[str, list[float]] = {ds: [] for ds in sources}
        self.inconsistencies: list[dict] = []
        self.rounds: list[dict] = []
        self.partition_rounds = Counter()
        self.kept = 0

    # -- helpers

    def typical(self, dataset: str) -> float:
        found = self.durations[dataset][-12:]
        return statistics.median(found) if found else 3.0

    def partition(self, dataset: str) -> str | None:
        if dataset != "CHAOSP":
            return None
        day = dt.date(2024, 1, 1) + dt.timedelta(days=self.partition_rounds[dataset])
        return day.isoformat()

    def start(self, dataset: str, fault: str | None = None, slot: str = "a") -> Run:
        self.stats["runs"] += 1
        return Run(self.b.env("chaos", slot), dataset, self.partition(dataset), self.logs, fault)

    def settle(self, run: Run, record: dict, what: str) -> int:
        """Wait for a run and count how it ended."""
        code = run.wait()
        if run.killed:
            self.stats["runs_killed"] += 1
        elif code == 0:
            self.stats["runs_ok"] += 1
            if run.fault is None:
                self.durations[record["dataset"]].append(run.seconds)
        elif code == 137 and run.fault:
            self.stats["runs_faulted"] += 1
        else:
            self.stats["runs_failed"] += 1
            reason = _failure_reason(run.output())
            self.run_failures[reason] += 1
            record.setdefault("failures", []).append(f"{what}: exit {code}: {reason}")
        return code

    def complete(self, dataset: str, record: dict) -> None:
        """A run to completion after kills (up to three tries: a lock still held by a killed
        DynamoDB lease makes a run give up after the TTL)."""
        for attempt in range(3):
            run = self.start(dataset)
            self.stats["recovery_runs"] += 1
            if self.settle(run, record, f"recovery run {attempt + 1}") == 0:
                return
        self.inconsistent(record, "recovery", f"three runs in a row failed: {tail(run.output())}")

    def inconsistent(self, record: dict, kind: str, detail: str) -> None:
        entry = {
            "backend": self.b.name,
            "round": record.get("round"),
            "dataset": record.get("dataset"),
            "kind": kind,
            "detail": detail,
            "trial": {k: v for k, v in record.items() if k not in ("round", "dataset")},
        }
        if self.kept < 5:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            target = FAILURES / f"{stamp}-{self.b.name}-r{record.get('round')}-{kind}"
            target.mkdir(parents=True, exist_ok=True)
            self.b.copy_store("chaos", target / "store")
            shutil.copytree(self.b.config_dir, target / "configs", dirs_exist_ok=True)
            (target / "what.json").write_text(json.dumps(entry, indent=2, default=str))
            entry["kept_at"] = str(target)
            self.kept += 1
        self.inconsistencies.append(entry)
        print(f"  INCONSISTENCY [{self.b.name} r{record.get('round')}] {kind}: {detail[:500]}")

    # -- trials

    def trial(self, number: int, dataset: str, action: str, unchanged: bool) -> dict:
        source = self.sources[dataset]
        (self.b.config_dir.parent / f"{dataset.lower()}.csv").write_text(
            source.next(unchanged), encoding="utf-8"
        )
        if dataset == "CHAOSP":
            self.partition_rounds[dataset] += 1
        record = {"round": number, "dataset": dataset, "action": action, "unchanged": unchanged}
        record["partition"] = self.partition(dataset)
        before = store_state(self.b, dataset)
        started = time.monotonic()
        killed = False
        if action == "clean":
            self.settle(self.start(dataset), record, "run")
        elif action == "sigkill":
            times = self.rng.choice([1, 1, 1, 2, 3])
            record["kills"] = []
            for _ in range(times):
                run = self.start(dataset)
                delay = self.rng.uniform(0, self.typical(dataset))
                state = self._kill_after(run, delay, record, "sigkill")
                killed |= run.killed
                record["kills"].append((round(delay, 2), state))
                before = store_state(self.b, dataset)
        elif action == "sigkill_publish":
            run = self.start(dataset)
            state = self._kill_in_publish(run, before, record)
            killed = run.killed
            record["kills"] = [state]
        elif action == "fault":
            point = self.rng.choice(FAULT_POINTS)
            run = self.start(dataset, fault=point)
            code = self.settle(run, record, f"fault {point}")
            record["fault"] = (point, code)
            if code == 137:
                self.kills[f"fault:{point}"] += 1
                self.landings[landing(before, store_state(self.b, dataset))] += 1
                killed = True
            else:
                self.stats[f"fault_not_reached:{point}"] += 1
        elif action == "concurrent":
            runs = [self.start(dataset, slot="a")]
            time.sleep(self.rng.uniform(0, 0.5))
            runs.append(self.start(dataset, slot="b"))
            record["codes"] = [self.settle(r, record, "concurrent run") for r in runs]
            self.stats["concurrent_pairs"] += 1
        elif action == "concurrent_kill":
            self.stats["concurrent_pairs"] += 1
            point = self.rng.choice([None, *FAULT_POINTS])
            victim = self.start(dataset, fault=point, slot="a")
            time.sleep(self.rng.uniform(0, 0.5))
            other = self.start(dataset, slot="b")
            if point is None:
                state = self._kill_after(
                    victim, self.rng.uniform(0, self.typical(dataset)), record, "concurrent_sigkill"
                )
                record["victim"] = ("sigkill", state)
            else:
                code = self.settle(victim, record, f"concurrent fault {point}")
                record["victim"] = (point, code)
                if code == 137:
                    self.kills[f"concurrent_fault:{point}"] += 1
                else:
                    self.stats[f"fault_not_reached:{point}"] += 1
            killed = victim.killed or record["victim"][1] == 137
            record["other"] = self.settle(other, record, "concurrent run")
        if killed or record.get("failures"):
            self.complete(dataset, record)
        record["seconds"] = round(time.monotonic() - started, 2)
        self.reference(dataset, record)
        self.quick_check(dataset, record)
        self.stats["trials"] += 1
        return record

    def _kill_after(self, run: Run, delay: float, record: dict, kind: str) -> str:
        before = store_state(self.b, record["dataset"])
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.proc.wait(delay)
        if run.kill():
            run.wait()
            self.stats["runs_killed"] += 1
            self.kills[kind] += 1
            where = landing(before, store_state(self.b, record["dataset"]))
            self.landings[where] += 1
            return where
        self.settle(run, record, kind)
        self.stats[f"{kind}_after_exit"] += 1
        return "ended before the kill"

    def _kill_in_publish(self, run: Run, before: dict, record: dict) -> str:
        from ingest_assets import layout

        store = self.b.runtime("chaos").store
        events = layout.events(record["dataset"])
        known = set(store.list_folders(events))
        give_up = time.monotonic() + RUN_TIMEOUT_S
        while run.alive() and time.monotonic() < give_up:
            if set(store.list_folders(events)) - known:
                time.sleep(self.rng.uniform(0, 0.25))
                if run.kill():
                    run.wait()
                    self.stats["runs_killed"] += 1
                    self.kills["sigkill_publish"] += 1
                    where = landing(before, store_state(self.b, record["dataset"]))
                    self.landings[where] += 1
                    return where
                break
            time.sleep(0.02)
        self.settle(run, record, "sigkill_publish")
        self.stats["sigkill_publish_no_publish"] += 1
        return "ended before the kill"

    # -- checks

    def reference(self, dataset: str, record: dict) -> None:
        """The same source, published into the reference store without faults."""
        from ingest_assets import layout, stages
        from ingest_assets.contract import load_config_file

        runtime = self.b.runtime("ref")
        config = load_config_file(self.b.config_dir / f"{dataset.lower()}.yaml")
        partition = self.partition(dataset) or layout.UNPARTITIONED
        stages.run_raw(runtime, config, partition)
        stages.run_parse(runtime, config, partition)
        stages.run_normalize(runtime, config, partition)
        result = stages.run_publish(runtime, config, partition)
        record["reference"] = (result.rows_added, result.rows_revised)

    def reference_export(self, dataset: str) -> list[dict]:
        """The reference store's export, in-process (the code `ingest export` runs)."""
        from ingest_assets.contract import load_config_file
        from ingest_assets.stages.export import export_dataset

        config = load_config_file(self.b.config_dir / f"{dataset.lower()}.yaml")
        out = self.b.work / "reference-export.csv"
        export_dataset(self.b.runtime("ref").store, config, None, "csv", str(out))
        return parse_export(out.read_text(encoding="utf-8"))

    def quick_check(self, dataset: str, record: dict) -> None:
        """In-process verify of the chaos store after every trial (its runs have ended)."""
        from ingest_assets.contract import load_config_file
        from ingest_assets.eventstore import verify

        config = load_config_file(self.b.config_dir / f"{dataset.lower()}.yaml")
        report = verify(self.b.runtime("chaos").store, config)
        self.stats["verify_in_process"] += 1
        if not report.ok:
            self.stats["verify_in_process_failed"] += 1
            self.inconsistent(record, "verify", "; ".join(report.problems))
        state = store_state(self.b, dataset)
        if state["pending"]:
            self.stats["follow_ups_pending_after_trial"] += 1
            record["pending"] = state["pending"]

    def cli_verify(self, env: dict, dataset: str, record: dict, kind: str) -> None:
        """`ingest verify`, which must exit 0. A process that printed "ok" and then died
        (a signal at exit) is told apart from a store with problems."""
        verified = cli(env, "verify", dataset)
        self.stats["verify_cli"] += 1
        if verified.returncode == 0:
            return
        self.stats["verify_cli_failed"] += 1
        said_ok = f"{dataset}: ok:" in verified.stderr + verified.stdout
        if said_ok:
            self.stats["verify_cli_ok_but_crashed"] += 1
            kind += "_exit_status"
        self.inconsistent(
            record,
            kind,
            f"exit status {verified.returncode}; output: "
            + tail(verified.stdout + "\n" + verified.stderr, 40),
        )

    def checkpoint(self, number: int, final: bool) -> dict:
        """ingest verify, gc, verify, export against the reference and the sources."""
        if final:
            time.sleep(TTL_S + 1.5)  # what gc skips as maybe in use is now old enough
        summary: dict = {"round": number, "final": final}
        for dataset, source in self.sources.items():
            record = {"round": number, "dataset": dataset, "action": "checkpoint"}
            env = self.b.env("chaos")
            found = {}
            self.cli_verify(env, dataset, record, "verify")
            before = leftovers(self.b, dataset, TTL_S)
            collected = cli(env, "gc", dataset)
            self.stats["gc_runs"] += 1
            if collected.returncode != 0:
                self.inconsistent(
                    record,
                    "gc",
                    f"exit status {collected.returncode}: "
                    + tail(collected.stdout + collected.stderr),
                )
            self.stats["gc_removed"] += sum(
                line.startswith("removed ") for line in collected.stdout.splitlines()
            )
            after = leftovers(self.b, dataset, TTL_S + 0.5)
            found["before_gc"] = {k: len(v) for k, v in before.items()}
            found["after_gc"] = {k: len(v) for k, v in after.items()}
            left = after["orphan_event"] + after["orphan_plan"] + after["scratch"]
            if left:
                self.stats["leftovers_after_gc"] += len(left)
                self.inconsistent(record, "gc_leftovers", f"{len(left)} left, e.g. {left[:5]}")
            if final and after["young"]:
                self.stats["leftovers_after_gc"] += len(after["young"])
                self.inconsistent(record, "gc_leftovers", f"after the TTL: {after['young'][:5]}")
            self.cli_verify(env, dataset, record, "verify_after_gc")
            exported = cli(env, "export", dataset, "--format", "csv")
            self.stats["exports_compared"] += 1
            if exported.returncode:
                self.inconsistent(
                    record, "export", f"exit status {exported.returncode}: {tail(exported.stderr)}"
                )
                continue
            rows, ref_rows = parse_export(exported.stdout), self.reference_export(dataset)
            found["rows"] = len(rows)
            problems = compare_exports(rows, ref_rows)
            if problems:
                self.stats["export_differences"] += 1
                self.inconsistent(record, "export_vs_reference", "; ".join(problems))
            problems, duplicates = compare_expected(rows, source)
            self.stats["duplicate_keys"] += duplicates
            if problems:
                self.stats["expected_differences"] += 1
                self.inconsistent(record, "export_vs_sources", "; ".join(problems))
            problems, shape = event_problems(self.b, dataset)
            found["versions"] = len(shape)
            if problems:
                self.stats["exactly_once_violations"] += len(problems)
                self.inconsistent(record, "exactly_once", "; ".join(problems[:5]))
            if shape != reference_shape(self.b, dataset):
                self.stats["chain_mismatches"] += 1
                self.inconsistent(
                    record,
                    "chain_vs_reference",
                    f"chain (partition, added, revised, total) {shape[-5:]} vs the "
                    f"reference's {reference_shape(self.b, dataset)[-5:]}",
                )
            summary[dataset] = found
        self.stats["checkpoints"] += 1
        return summary

    def go(self) -> dict:
        checkpoints = []
        for dataset in self.sources:  # the first load of each, measured
            self.rounds.append(self.trial(0, dataset, "clean", False))
            self.trial(0, dataset, "clean", True)  # a rerun that finds nothing new
        names, weights = zip(*ACTIONS.items(), strict=True)
        done = 0
        for number in range(1, self.args.rounds + 1):
            if time.monotonic() > self.deadline:
                self.stats["rounds_skipped_for_time"] = self.args.rounds - number + 1
                break
            dataset = "CHAOSP" if self.rng.random() < 0.3 else "CHAOS"
            action = self.rng.choices(names, weights)[0]
            unchanged = self.rng.random() < 0.1
            record = self.trial(number, dataset, action, unchanged)
            self.rounds.append(record)
            done = number
            print(
                f"[{self.b.name}] round {number}: {dataset} {action}"
                f"{' (source unchanged)' if unchanged else ''} "
                f"{record.get('kills') or record.get('fault') or record.get('victim') or ''} "
                f"{record.get('failures') or ''} ({record['seconds']} s)",
                flush=True,
            )
            if number % self.args.check_every == 0 and number != self.args.rounds:
                checkpoints.append(self.checkpoint(number, final=False))
        checkpoints.append(self.checkpoint(done, final=True))
        return {
            "rounds": done,
            "stats": dict(sorted(self.stats.items())),
            "kills": dict(sorted(self.kills.items())),
            "kills_total": sum(self.kills.values()),
            "landings": dict(sorted(self.landings.items())),
            "run_failures": dict(self.run_failures),
            "typical_run_s": {ds: round(self.typical(ds), 2) for ds in self.sources},
            "inconsistencies": self.inconsistencies,
            "checkpoints": checkpoints,
            "trials": self.rounds,
        }


def _failure_reason(output: str) -> str:
    """A run's failure in a few words (the last error line, without versions and paths)."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        for marker in ("LockBusy", "StaleWriter", "PublishConflict", "BrokenChain", "CurrentLost"):
            if marker in line:
                return marker
    return lines[-1][:200] if lines else "no output"


def run_backend(name: str, args, seed: int, deadline: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-"))
    config_dir = work / "configs"
    config_dir.mkdir()
    for dataset, template in (("CHAOS", CHAOS_YAML), ("CHAOSP", CHAOSP_YAML)):
        path = work / f"{dataset.lower()}.csv"
        (config_dir / f"{dataset.lower()}.yaml").write_text(template.format(path=path, ttl=TTL_S))
    moto = Moto(work / "moto.log") if name == "s3" else None
    started = time.monotonic()
    try:
        backend = Backend(name, work, config_dir, moto)
        rng = random.Random(seed)
        sources = {
            "CHAOS": ChaosSource(random.Random(seed * 31 + 1), args.rows),
            "CHAOSP": PartitionedSource(random.Random(seed * 31 + 2), args.rows),
        }
        result = Chaos(args, backend, rng, sources, deadline).go()
    finally:
        if moto is not None:
            moto.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["work_dir"] = str(work) if args.keep else None
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="chaos rounds per backend")
    parser.add_argument("--backends", default="local,s3")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--rows", type=int, default=3000, help="rows of each first source")
    parser.add_argument("--check-every", type=int, default=8, help="rounds between checkpoints")
    parser.add_argument(
        "--max-minutes", type=float, default=30, help="stop starting rounds after this"
    )
    parser.add_argument("--label", default="default")
    parser.add_argument("--out", default=str(HERE / "results_chaos.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work folders in /tmp")
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="run a `git archive` of HEAD (in /tmp) instead of the working tree, which others "
        "may be editing meanwhile",
    )
    args = parser.parse_args()
    code = f"working tree at {commit_of()}"
    snapshot = None
    if args.snapshot:
        snapshot = Path(tempfile.mkdtemp(prefix="ingest-snapshot-"))
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive.stdout, check=True)
        sys.path.insert(0, str(snapshot))  # (this process imports ingest_assets lazily)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(snapshot), os.environ.get("PYTHONPATH", "")) if p
        )
        code = f"snapshot of {commit_of().split('+')[0]} (git archive HEAD)"
    print(f"code: {code}", flush=True)

    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    backends = {}
    try:
        for offset, name in enumerate(args.backends.split(",")):
            print(f"== backend {name}", flush=True)
            backends[name] = run_backend(name, args, args.seed + offset, deadline)
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
    totals: Counter = Counter()
    kills: Counter = Counter()
    for result in backends.values():
        totals.update(result["stats"])
        kills.update(result["kills"])
    entry = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": code,
        "commit_at_end": commit_of(),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(args),
        "seconds": round(time.monotonic() - started, 1),
        "totals": {
            "trials": totals["trials"],
            "runs": totals["runs"],
            "kills": sum(kills.values()),
            "kills_by_kind": dict(sorted(kills.items())),
            "inconsistencies": sum(len(r["inconsistencies"]) for r in backends.values()),
            **{
                k: totals[k]
                for k in (
                    "verify_cli",
                    "verify_cli_failed",
                    "verify_cli_ok_but_crashed",
                    "verify_in_process",
                    "verify_in_process_failed",
                    "export_differences",
                    "expected_differences",
                    "duplicate_keys",
                    "exactly_once_violations",
                    "chain_mismatches",
                    "leftovers_after_gc",
                    "runs_failed",
                )
            },
        },
        "backends": backends,
    }
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[args.label] = entry
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(json.dumps(entry["totals"], indent=1))
    for name, result in backends.items():
        print(f"{name}: landings {result['landings']}; run failures {result['run_failures']}")
    print(f"wrote {out} [{args.label}] in {entry['seconds']} s")
    return 1 if entry["totals"]["inconsistencies"] else 0


if __name__ == "__main__":
    sys.exit(main())
