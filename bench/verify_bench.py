"""What `ingest verify` costs on a large chain: 5,000,000 event rows in 50 versions, on the
local store; and what one more publish costs on top of those 50 versions.

    .venv/bin/python bench/verify_bench.py                 # builds the store (about 3 min), measures
    .venv/bin/python bench/verify_bench.py --label again   # reuses the store in --root
    .venv/bin/python bench/verify_bench.py --versions 10 --rows 20000 --root /tmp/vb-small

The dataset is a panel of daily series keyed by (code, obs_time): version k holds one more
month of new rows (about 3,300 series x the month's days), and from the second version on,
--revised of its rows are new values for keys of the three months before (late corrections).
With the defaults: 50 versions of 100,000 rows (90,000 new, 10,000 revised), 5,000,000 event
rows, 4,510,000 keys, one event file a month per version. The versions are published with the
Python API (`eventstore.publish`, rows with key_hash and row_hash as the pipeline stages them).

Measured, each in a fresh process (peak RSS from GNU time), on a warm page cache:
- `eventstore.verify(store, config)`: wall time, and its parts (the chain with every event
  file's sha256: `derived=False`; then the replay and the derived files);
- `ingest verify DATASET`: wall time and peak RSS of the command;
- `open_chain` (what every publish does first: `current`, the chain's manifests, one listing
  of the event files with their sizes) at 50 versions and at 1;
- one more publish of the same shape on top of the 50 versions (on a copy of the store), and
  on top of a 1-version store, for comparison.
Results go to bench/results_verify.json under --label.
"""

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import commit_of

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = REPO / ".venv" / "bin"
TIME = Path("/usr/bin/time")  # GNU time, for the peak RSS of a command
DATASET = "VERIFY_BENCH"
START = dt.date(2021, 1, 1)
CONFIG_YAML = """\
dataset_id: VERIFY_BENCH
description: verify benchmark (rows published with the Python API)
source: {kind: file, path: unused.csv, format: csv}
normalize: {primary_keys: [code, obs_time], schema: {value: float64}}
"""


def config():
    import yaml

    from ingest_assets.contract import parse_config

    return parse_config(yaml.safe_load(CONFIG_YAML), "verify_bench.yaml")


def month_start(k: int) -> dt.date:
    year, month = divmod(START.month - 1 + k, 12)
    return dt.date(START.year + year, month + 1, 1)


def new_keys(k: int, rows: int):
    """The keys of version k's new rows: every series on each day of month k."""
    import numpy as np

    first, last = month_start(k), month_start(k + 1)
    days = (last - first).days
    series = -(-rows // days)
    day = np.repeat(np.arange(days), series)[:rows]
    code = np.tile(np.arange(series), days)[:rows]
    epoch = (dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
    micros = (epoch + day.astype(np.int64) * 86_400_000_000).astype(np.int64)
    return code, micros


def version_table(k: int, rows: int, revised: float, seed: int):
    """Version k's rows: new keys of month k, and (k > 0) revisions of the 3 months before."""
    import numpy as np
    import pyarrow as pa

    from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, key_hashes, row_hashes

    rng = np.random.default_rng(seed * 1000 + k)
    n_revised = int(rows * revised) if k > 0 else 0
    codes, micros = new_keys(k, rows - n_revised)
    if n_revised:
        earlier = [
            new_keys(j, rows - (int(rows * revised) if j else 0)) for j in range(max(0, k - 3), k)
        ]
        pool_codes = np.concatenate([c for c, _ in earlier])
        pool_micros = np.concatenate([m for _, m in earlier])
        pick = rng.choice(len(pool_codes), n_revised, replace=False)
        codes = np.concatenate([codes, pool_codes[pick]])
        micros = np.concatenate([micros, pool_micros[pick]])
    names = np.char.add("S", np.char.zfill(codes.astype(str), 5))
    table = pa.table(
        {
            "code": pa.array(names, pa.string()),
            "obs_time": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "value": pa.array(np.round(rng.uniform(-1000, 100_000, len(codes)), 2), pa.float64()),
        }
    )
    return table.append_column(KEY_HASH, key_hashes(table, ["code", "obs_time"])).append_column(
        ROW_HASH, row_hashes(table, ["value"])
    )


def publish_version(store_root: Path, k: int, rows: int, revised: float, seed: int) -> dict:
    from ingest_assets import eventstore
    from ingest_resources.local_store import LocalObjectStore
    from ingest_resources.locks import LocalLocks

    table = version_table(k, rows, revised, seed)
    store, locks = LocalObjectStore(store_root / "store"), LocalLocks(store_root / "locks")
    started = time.perf_counter()
    result = eventstore.publish(
        store, locks, config(), "all", table, {"bench": k}, {"normalized": table.num_rows}
    )
    seconds = time.perf_counter() - started
    assert result.committed and not result.follow_up_errors, result
    return {
        "version": k + 1,
        "rows": table.num_rows,
        "added": result.rows_added,
        "revised": result.rows_revised,
        "seconds": round(seconds, 3),
    }


def build(root: Path, versions: int, rows: int, revised: float, seed: int) -> list[dict]:
    shutil.rmtree(root, ignore_errors=True)
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "verify_bench.yaml").write_text(CONFIG_YAML)
    log = []
    started = time.perf_counter()
    for k in range(versions):
        log.append(publish_version(root, k, rows, revised, seed))
        if k % 10 == 9 or k == versions - 1:
            print(
                f"  published {k + 1} versions ({time.perf_counter() - started:.0f} s; "
                f"last {log[-1]['seconds']} s)",
                flush=True,
            )
    spec = {"versions": versions, "rows": rows, "revised": revised, "seed": seed}
    (root / "built.json").write_text(json.dumps({"spec": spec, "log": log}, indent=1))
    return log


# --------------------------------------------------------------------------- child processes


def child(mode: str, root: Path, extra: dict) -> dict:
    """One measurement, in this (fresh) process; the parent reads its peak RSS."""
    from ingest_assets import eventstore
    from ingest_resources.local_store import LocalObjectStore

    store = LocalObjectStore(root / "store")
    if mode == "verify":
        started = time.perf_counter()
        report = eventstore.verify(store, config())
        seconds = time.perf_counter() - started
        return {
            "seconds": round(seconds, 3),
            "ok": report.ok,
            "problems": report.problems[:5],
            "versions": report.versions,
            "files": report.files,
            "bytes": report.bytes,
            "rows": report.rows,
            "windows": report.windows,
        }
    if mode == "verify_chain":  # the chain and every file's sha256, no replay
        started = time.perf_counter()
        report = eventstore.verify(store, config(), derived=False)
        return {"seconds": round(time.perf_counter() - started, 3), "ok": report.ok}
    if mode == "open_chain":
        try:
            from ingest_assets.eventstore.settle import open_chain
        except ImportError:  # (before settle.py)
            from ingest_assets.eventstore.commit import open_chain
        times = []
        for _ in range(5):
            started = time.perf_counter()
            _, _, chain = open_chain(store, DATASET)
            times.append(time.perf_counter() - started)
        return {"seconds": round(statistics.median(times), 4), "versions": len(chain)}
    if mode == "publish":
        return publish_version(root, extra["k"], extra["rows"], extra["revised"], extra["seed"])
    raise SystemExit(f"unknown child mode {mode}")


def measured(command: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and output of a fresh process. The RSS is GNU time's: the
    rusage of a child of this process would count this process's own RSS (Linux keeps the
    high-water mark of the forked copy across exec), and this process may be large."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss_file:
        timer = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name] if TIME.exists() else []
        started = time.perf_counter()
        proc = subprocess.Popen(timer + command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
        found = rss_file.read().strip().splitlines()
        rss_kb = int(found[-1]) if timer and found and found[-1].isdigit() else usage.ru_maxrss
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed ({code}):\n{text[-3000:]}")
    return wall, rss_kb // 1024, text


def run_child(mode: str, root: Path, **extra) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--root", str(root)]
    command += ["--child-args", json.dumps(extra)]
    wall, rss, text = measured(command, env=dict(os.environ))
    result = json.loads(text.strip().splitlines()[-1])
    result["process_wall_s"] = round(wall, 3)
    result["peak_rss_mb"] = rss
    return result


def copy_store(root: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(root, target, symlinks=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/verify-bench", help="where the store is built")
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--rows", type=int, default=100_000, help="rows per version")
    parser.add_argument("--revised", type=float, default=0.1, help="share of revised rows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="build the store again")
    parser.add_argument("--label", default="default")
    parser.add_argument("--out", default=str(HERE / "results_verify.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = Path(args.root)
    if args.child:
        print(json.dumps(child(args.child, root, json.loads(args.child_args))))
        return 0

    spec = {
        "versions": args.versions,
        "rows": args.rows,
        "revised": args.revised,
        "seed": args.seed,
    }
    built = root / "built.json"
    build_seconds = None
    if args.rebuild or not built.exists() or json.loads(built.read_text())["spec"] != spec:
        print(f"building {args.versions} versions of {args.rows:,} rows in {root}", flush=True)
        started = time.perf_counter()
        build(root, args.versions, args.rows, args.revised, args.seed)
        build_seconds = round(time.perf_counter() - started, 1)
    log = json.loads(built.read_text())["log"]
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # (other work on the machine)
    store_bytes = sum(f.stat().st_size for f in (root / "store").rglob("*") if f.is_file())
    event_rows = sum(entry["rows"] for entry in log)

    print("verify, in a fresh process each time", flush=True)
    verifies = [run_child("verify", root) for _ in range(args.repeat)]
    assert all(v["ok"] for v in verifies), verifies[0]["problems"]
    chains = [run_child("verify_chain", root) for _ in range(args.repeat)]

    print("ingest verify", flush=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "AWS_"))},
        "INGEST_CONFIG_DIR": str(root / "configs"),
        "INGEST_STORE_ROOT": str(root / "store"),
    }
    commands = []
    for _ in range(args.repeat):
        wall, rss, text = measured([str(BIN / "ingest"), "verify", DATASET], env)
        assert " ok: " in text, text
        commands.append({"wall_s": round(wall, 3), "peak_rss_mb": rss, "output": text.strip()})

    print("open_chain and one more publish", flush=True)
    open_50 = run_child("open_chain", root)
    scratch = Path(tempfile.mkdtemp(prefix="verify-bench-on-top-"))
    try:
        on_top = []
        for _ in range(args.repeat):
            copy_store(root, scratch / "big")
            shape = {"rows": args.rows, "revised": args.revised, "seed": args.seed}
            on_top.append(run_child("publish", scratch / "big", k=args.versions, **shape))
        # the same shape of publish on top of one version
        small = scratch / "small"
        (small / "configs").mkdir(parents=True)
        publish_version(small, 0, args.rows, args.revised, args.seed)
        open_1 = run_child("open_chain", small)
        on_one = []
        for _ in range(args.repeat):
            copy_store(small, scratch / "small2")
            on_one.append(run_child("publish", scratch / "small2", k=1, **shape))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def med(items, key):
        return round(statistics.median(item[key] for item in items), 3)

    entry = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit_of(),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_start_and_end": [load_at_start, [round(x, 2) for x in os.getloadavg()]],
        "spec": spec,
        "dataset": {
            "versions": verifies[0]["versions"],
            "event_rows": event_rows,
            "keys": verifies[0]["rows"],
            "event_files": verifies[0]["files"],
            "event_bytes": verifies[0]["bytes"],
            "windows": verifies[0]["windows"],
            "store_bytes": store_bytes,
            "build_s": build_seconds,
        },
        "verify_in_process_s": med(verifies, "seconds"),
        "verify_in_process_runs_s": [v["seconds"] for v in verifies],
        "verify_chain_only_s": med(chains, "seconds"),
        "verify_process_peak_rss_mb": max(v["peak_rss_mb"] for v in verifies),
        "ingest_verify_wall_s": med(commands, "wall_s"),
        "ingest_verify_runs_s": [c["wall_s"] for c in commands],
        "ingest_verify_peak_rss_mb": max(c["peak_rss_mb"] for c in commands),
        "ingest_verify_output": commands[0]["output"],
        "open_chain_s": {"whole_chain": open_50["seconds"], "one_version": open_1["seconds"]},
        "publish_on_top_s": med(on_top, "seconds"),
        "publish_on_top_runs_s": [p["seconds"] for p in on_top],
        "publish_on_top_peak_rss_mb": max(p["peak_rss_mb"] for p in on_top),
        "publish_on_one_version_s": med(on_one, "seconds"),
        "publish_on_one_version_peak_rss_mb": max(p["peak_rss_mb"] for p in on_one),
        "publish_rows": {"added": on_top[0]["added"], "revised": on_top[0]["revised"]},
        "build_publish_s": {
            "version_2": log[1]["seconds"] if len(log) > 1 else None,
            "version_25": log[24]["seconds"] if len(log) > 24 else None,
            "version_50": log[49]["seconds"] if len(log) > 49 else None,
            "all": [entry["seconds"] for entry in log],
        },
    }
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[args.label] = entry
    out.write_text(json.dumps(results, indent=1) + "\n")
    shown = {k: v for k, v in entry.items() if k not in ("build_publish_s", "ingest_verify_output")}
    print(json.dumps(shown, indent=1))
    print(f"wrote {out} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
