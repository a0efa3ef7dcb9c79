"""A landing zone of many small CSV files: first ingest, a re-run with nothing new, a re-run with
100 new files; wall time and peak memory of each, each in a fresh process. Against dlt's
filesystem source on the same files (bench/landing_dlt.py, run in a venv with dlt 1.31).

    PYTHONPATH=. .venv/bin/python bench/landing_bench.py [--files 10000] [--rows 100]
        [--dlt-python /path/to/venv-with-dlt/bin/python] [--s3]

Results go to bench/results_landing.json (and bench/README.md, "Landing zones", by hand).
One phase: `landing_bench.py phase ROOT` (ingest what is new in ROOT/landing, print JSON).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def write_files(folder: Path, first: int, count: int, rows: int) -> None:
    """`count` CSV files of `rows` rows, numbered from `first`, in folders of 1,000."""
    for n in range(first, first + count):
        path = folder / f"day={n // 1000:03d}" / f"part-{n:06d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{n * rows + i},{(n * rows + i) * 0.5},file {n}" for i in range(rows)]
        path.write_text("id,value,label\n" + "\n".join(lines) + "\n")


def config(root: Path, s3_bucket: str | None = None):  # type: ignore[no-untyped-def]
    from ingest_assets.contract import parse_config

    if s3_bucket:
        source = {"kind": "s3", "url": f"s3://{s3_bucket}/landing/**/*.csv", "format": "csv"}
    else:
        source = {"kind": "file", "glob": str(root / "landing" / "**" / "*.csv"), "format": "csv"}
    return parse_config(
        {
            "dataset_id": "LANDING_BENCH",
            "source": source,
            "normalize": {
                "primary_keys": ["id"],
                "schema": {"id": "int64", "value": "float64", "label": "string"},
            },
        },
        "landing_bench.yaml",
    )


def phase(root: Path, s3_bucket: str | None) -> dict[str, object]:
    """One run of the stages over what is new, timed stage by stage (this process)."""
    from ingest_assets import stages
    from ingest_resources.runtime import local_runtime

    runtime = local_runtime(root / "store")
    cfg = config(root, s3_bucket)
    times: dict[str, float] = {}
    started = time.perf_counter()
    info = stages.run_raw(runtime, cfg, "all")
    times["raw"] = time.perf_counter() - started
    added = 0
    if not info.missing:
        for name, step in (
            ("parsed", stages.run_parse),
            ("normalized", stages.run_normalize),
            ("published", stages.run_publish),
        ):
            begun = time.perf_counter()
            result = step(runtime, cfg, "all")
            times[name] = time.perf_counter() - begun
        added = result.rows_added  # type: ignore[union-attr]
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "stages": {k: round(v, 3) for k, v in times.items()},
        "rows_added": added,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "source": info.source,
    }


def fresh(command: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=REPO
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(wall, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", nargs="?", default="all")
    parser.add_argument("root", nargs="?")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--dlt-python")
    parser.add_argument("--s3-bucket")  # (a phase's: the files are in this bucket)
    parser.add_argument("--s3", action="store_true", help="the files on moto S3 (server mode)")
    args = parser.parse_args()
    if args.what == "phase":
        print(json.dumps(phase(Path(args.root), args.s3_bucket)))
        return
    root = Path(tempfile.mkdtemp(prefix="landing-bench-"))
    try:
        results = run_all(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = HERE / "results_landing.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous[f"{args.files}x{args.rows}{'-s3' if args.s3 else ''}"] = results
    out.write_text(json.dumps(previous, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def run_all(root: Path, args: argparse.Namespace) -> dict[str, object]:
    if args.s3:
        return run_s3(root, args)
    landing = root / "landing"
    started = time.perf_counter()
    write_files(landing, 0, args.files, args.rows)
    results: dict[str, object] = {
        "files": args.files,
        "rows_per_file": args.rows,
        "generate_seconds": round(time.perf_counter() - started, 1),
    }
    me = [sys.executable, str(Path(__file__).resolve()), "phase", str(root)]
    results["ingest_first"] = fresh(me)
    results["ingest_nothing_new"] = fresh(me)
    write_files(landing, args.files, args.new, args.rows)
    results[f"ingest_{args.new}_new"] = fresh(me)
    if args.dlt_python:
        dlt = [args.dlt_python, str(HERE / "landing_dlt.py"), str(landing), str(root / "dlt")]
        shutil.rmtree(landing, ignore_errors=True)
        write_files(landing, 0, args.files, args.rows)
        results["dlt_first"] = fresh(dlt)
        results["dlt_nothing_new"] = fresh(dlt)
        write_files(landing, args.files, args.new, args.rows)
        results[f"dlt_{args.new}_new"] = fresh(dlt)
    return results


def run_s3(root: Path, args: argparse.Namespace) -> dict[str, object]:
    """The same three phases, the files on moto S3 (server mode, this process)."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="landing-bench")
        local = root / "files"

        def upload(first: int, count: int) -> None:
            write_files(local, first, count, args.rows)
            for path in sorted(local.rglob("*.csv")):
                key = "landing/" + path.relative_to(local).as_posix()
                s3.put_object(Bucket="landing-bench", Key=key, Body=path.read_bytes())
            shutil.rmtree(local)

        started = time.perf_counter()
        upload(0, args.files)
        results: dict[str, object] = {
            "files": args.files,
            "rows_per_file": args.rows,
            "upload_seconds": round(time.perf_counter() - started, 1),
        }
        me = [sys.executable, str(Path(__file__).resolve()), "phase", str(root)]
        me += ["--s3-bucket", "landing-bench"]
        results["ingest_first"] = fresh(me, env)
        results["ingest_nothing_new"] = fresh(me, env)
        upload(args.files, args.new)
        results[f"ingest_{args.new}_new"] = fresh(me, env)
        return results
    finally:
        server.stop()


if __name__ == "__main__":
    main()
