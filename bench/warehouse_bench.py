"""Warehouse load benchmark: Ingest vs dlt vs a bare COPY, side by side on one PostgreSQL.

Four phases each: first load, identical reload, reload with 1% new rows (after each series' rows),
then 1% more appended at the end of the file, on a generated CSV of 200 series x 5,000 days (see
generate.py). Primary key (series_code, obs_time) everywhere.

- floor: COPY the CSV into a table with that primary key (first load only: the lower bound).
- dlt 1.31: pyarrow table in, write_disposition="merge", same primary key; times `pipeline.run`.
- Ingest: `ingest run BENCH_OBS` in a fresh process (as a user would), reporting both the
  whole-process wall time and the work itself (the sum of Dagster's step durations from the
  run's event log), with the peak RSS of the process.

Every timed phase starts after `sync`. With --rounds N, the whole comparison runs N times (fresh
databases each time) and the medians are reported.

Usage: .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/warehouse_bench.py [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pyarrow.csv as pacsv
from generate import workload

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KEYS = ("series_code", "obs_time")


def database(admin_url: str, name: str) -> str:
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def settle() -> None:
    """Flush the page cache's dirty pages before a timed phase, so that the writes of one
    contender (the floor's, dlt's) are not written back during, and billed to, the next."""
    os.sync()


def floor(url: str, csv: Path) -> float:
    settle()
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE floor_obs (series_code text, obs_time date, value double precision, "
            "unit text, source_agency text, comment text, PRIMARY KEY (series_code, obs_time))"
        )
        started = time.perf_counter()
        with csv.open() as handle:
            cursor.copy_expert("COPY floor_obs FROM STDIN WITH (FORMAT csv, HEADER true)", handle)
        connection.commit()
        return time.perf_counter() - started


def dlt_phase(url: str, csv: Path, workdir: Path) -> float:
    import dlt

    settle()
    table = pacsv.read_csv(csv)
    os.environ["DLT_DATA_DIR"] = str(workdir / "dlt_data")
    if "@" in url and ":" not in url.split("//", 1)[1].split("@", 1)[0]:
        url = url.replace("@", ":unused@", 1)  # dlt insists on a password; trust auth ignores it
    pipeline = dlt.pipeline(
        pipeline_name="bench_obs",
        destination=dlt.destinations.postgres(credentials=url),
        dataset_name="dlt_bench",
        pipelines_dir=str(workdir / "dlt_pipelines"),
    )
    started = time.perf_counter()
    pipeline.run(table, table_name="observations", write_disposition="merge", primary_key=KEYS)
    return time.perf_counter() - started


def write_config(config_dir: Path, csv: Path, warehouse: bool = True) -> None:
    """The benchmark dataset's YAML (with its PostgreSQL table unless `warehouse` is False)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "bench_obs.yaml").write_text(
        "dataset_id: BENCH_OBS\n"
        f"source: {{kind: file, path: {csv}, format: csv, max_bytes: 4000000000}}\n"
        "normalize:\n"
        "  primary_keys: [series_code, obs_time]\n"
        "  time_column: obs_time\n"
        "  schema: {value: float64, obs_time: date}\n"
        + (
            "publish: {postgres: {table: observations, schema: ingest_bench}}\n"
            if warehouse
            else ""
        )
    )


def ingest_phase(url: str | None, csv: Path, workdir: Path) -> dict:
    """`ingest run BENCH_OBS` in a new process, as a user would (with the warehouse when `url`):
    wall time, the work (the sum of Dagster's step durations) and the process's peak RSS."""
    config_dir = workdir / "configs"
    write_config(config_dir, csv, warehouse=url is not None)
    env = dict(
        os.environ,
        INGEST_CONFIG_DIR=str(config_dir),
        INGEST_STORE_ROOT=str(workdir / "store"),
        DAGSTER_HOME=str(workdir / "dagster_home"),
    )
    env.pop("INGEST_POSTGRES_URL", None)
    if url is not None:
        env["INGEST_POSTGRES_URL"] = url
    # GNU time reports the run's own peak RSS. (os.wait4 would not: Linux carries the forking
    # process's high-water mark, this benchmark's, into a child until it exits.)
    peak_file = workdir / "ingest.maxrss"
    command = ["/usr/bin/time", "-f", "%M", "-o", str(peak_file)]
    command += [str(Path(sys.executable).parent / "ingest"), "run", "BENCH_OBS"]
    settle()
    started = time.perf_counter()
    with (workdir / "ingest.log").open("w") as log:
        done = subprocess.run(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    output = (workdir / "ingest.log").read_text()
    if done.returncode != 0:
        raise SystemExit(f"ingest run failed:\n{output}")
    steps = step_durations(workdir / "dagster_home")
    return {
        "wall_s": wall,
        "steps_s": steps,
        "work_s": sum(steps.values()),
        "peak_rss_mb": int(peak_file.read_text().split()[-1]) / 1024,
        "output": output.strip(),
    }


def step_durations(home: Path) -> dict[str, float]:
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        durations = {}
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is not None and event.event_type_value == "STEP_SUCCESS":
                durations[event.step_key.split("__")[-1]] = (
                    event.event_specific_data.duration_ms / 1000
                )
        return durations


def ingest_phases(url: str | None, phases, workdir: Path, label: str) -> dict[str, dict]:
    """Every phase (name, CSV) in turn on one store, printed as it ends."""
    results = {}
    for name, csv in phases:
        phase = results[name] = ingest_phase(url, csv, workdir)
        print(
            f"{label}ingest {name}: work {phase['work_s']:.2f}s, wall {phase['wall_s']:.2f}s, "
            f"steps {phase['steps_s']}, peak RSS {phase['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    return results


def median_phases(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Per phase, the medians over the rounds of `ingest_phase`'s figures (peak RSS: the
    largest; the output: the last round's)."""
    merged = {}
    for name in rounds[0]:
        samples = [one[name] for one in rounds]
        merged[name] = {
            "wall_s": statistics.median(s["wall_s"] for s in samples),
            "work_s": statistics.median(s["work_s"] for s in samples),
            "steps_s": {
                step: statistics.median(s["steps_s"][step] for s in samples)
                for step in samples[0]["steps_s"]
            },
            "peak_rss_mb": max(s["peak_rss_mb"] for s in samples),
            "output": samples[-1]["output"],
        }
    return merged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ingest_bench"))
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="medians of this many rounds")
    args = parser.parse_args()
    work = args.workdir
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    files = workload(work, series=200)
    phases = (
        ("first load", files["base"]),
        ("identical reload", files["base"]),
        ("1% new rows", files["plus"]),
        ("1% appended", files["appended"]),
    )
    done: list[dict] = []
    for round_ in range(args.rounds):  # each round in fresh databases and folders
        one: dict = {}
        url = database(args.admin_url, "ingest_bench_floor")
        one["floor_first_load_s"] = floor(url, files["base"])
        print(f"floor (COPY into a PK table): {one['floor_first_load_s']:.1f}s", flush=True)
        if not args.skip_dlt:
            url = database(args.admin_url, "ingest_bench_dlt")
            one["dlt"] = {}
            for name, csv in phases:
                one["dlt"][name] = dlt_phase(url, csv, work / f"dlt{round_}")
                print(f"dlt {name}: {one['dlt'][name]:.1f}s", flush=True)
        url = database(args.admin_url, "ingest_bench_platform")
        one["ingest"] = ingest_phases(url, phases, work / f"ingest{round_}", "")
        done.append(one)
    results: dict = {"rows": 1_000_000, "rounds_run": args.rounds}
    results["floor_first_load_s"] = statistics.median(one["floor_first_load_s"] for one in done)
    if not args.skip_dlt:
        results["dlt"] = {
            name: statistics.median(one["dlt"][name] for one in done) for name, _ in phases
        }
    results["ingest"] = median_phases([one["ingest"] for one in done])
    results["ingest_peak_rss_mb"] = max(p["peak_rss_mb"] for p in results["ingest"].values())
    if args.rounds > 1:
        results["rounds"] = done
    print(f"ingest peak RSS (largest of the runs): {results['ingest_peak_rss_mb']:.0f} MB")
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
