"""End to end, CSV -> published Parquet: Ingest vs dlt's filesystem load vs a bare pyarrow floor.

Workloads (generate.py): 1M rows (200 series x 5,000 days) and 5M rows (1,000 series x 5,000
days). Four phases each: first load, identical rerun, rerun with 1% new rows (after each series'
rows), then 1% more appended at the end of the file (a file that grows at its end).

- floor: `pyarrow.csv.read_csv` + `pyarrow.parquet.write_table` (zstd) of the file.
- floor, same work: the CSV read, sha1 of every row's key and values (DuckDB), an anti-join
  against the previous phase's (key, values) pairs, the new rows written (`floor_same_work`).
- dlt 1.31: its fastest filesystem load: a pyarrow table in, Parquet out,
  `write_disposition="replace"` (a rerun must not duplicate; the filesystem destination has no
  merge without delta/iceberg); the time of `pipeline.run`, plus the CSV read it needs.
- Ingest: `ingest run BENCH_OBS` in a new process, no warehouse: raw, parsed, normalized
  (typed, UTC, key and row hashes, checks), published (anti-join, event files, index,
  projections). "work" is the sum of Dagster's step durations; "wall" the whole process.
  Peak RSS is the process's (GNU time).

Every timed phase starts after `sync` (no writes of the one before are still being flushed).
With --rounds N, each size is measured N times from scratch and the medians are reported.

Usage: .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/pipeline_bench.py \
    [--sizes 1,5] [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import workload  # noqa: E402
from warehouse_bench import ingest_phases, median_phases, settle  # noqa: E402

SERIES = {1: 200, 5: 1000}  # million rows -> series of 5,000 days


def floor(csv: Path, out: Path) -> float:
    settle()
    started = time.perf_counter()
    pq.write_table(pacsv.read_csv(csv), out, compression="zstd")
    return time.perf_counter() - started


def floor_same_work(csv: Path, known: Path, out: Path) -> float:
    """The same logical work as Ingest's, bare (the floor the issue's target names: read, hash,
    anti-join, write): read the CSV; sha1 of each row's key and of its other values (DuckDB over
    the Arrow table: pyarrow has no sha1); drop the rows whose (key, values) pair the previous
    phase saw (`known`; an Arrow anti-join); write the rest as Parquet, and the pairs seen as
    the next phase's `known`. No typing beyond the CSV reader's, no staged copies, no checks."""
    import duckdb

    settle()
    started = time.perf_counter()
    table = pacsv.read_csv(csv)
    connection = duckdb.connect()
    connection.register("t", table)
    hashed = connection.sql(
        "SELECT *, sha1(concat_ws(chr(31), series_code, obs_time::VARCHAR)) AS key_hash, "
        "sha1(concat_ws(chr(31), value::VARCHAR, unit, source_agency, comment)) AS row_hash "
        "FROM t"
    ).to_arrow_table()
    new = hashed
    if known.exists():
        seen = pq.read_table(known)
        new = hashed.join(seen, keys=["key_hash", "row_hash"], join_type="left anti")
    pq.write_table(new, out, compression="zstd")
    pq.write_table(hashed.select(["key_hash", "row_hash"]), known, compression="zstd")
    return time.perf_counter() - started


def dlt_phase(csv: Path, workdir: Path) -> float:
    import dlt

    os.environ["DLT_DATA_DIR"] = str(workdir / "dlt_data")
    pipeline = dlt.pipeline(
        pipeline_name="bench_fs",
        destination=dlt.destinations.filesystem(bucket_url=str(workdir / "lake")),
        dataset_name="bench",
        pipelines_dir=str(workdir / "pipelines"),
    )
    settle()
    started = time.perf_counter()
    table = pacsv.read_csv(csv)
    pipeline.run(
        table,
        table_name="observations",
        write_disposition="replace",
        loader_file_format="parquet",
    )
    return time.perf_counter() - started


def run_size(millions: int, work: Path, skip_dlt: bool, rounds: int) -> dict:
    """Every measurement `rounds` times (each round from an empty store, in a fresh folder):
    the medians, and every round's figures under "rounds"."""
    work.mkdir(parents=True, exist_ok=True)
    files = workload(work, series=SERIES[millions])
    base = files["base"]
    phases = (
        ("first load", base),
        ("identical rerun", base),
        ("1% new rows", files["plus"]),
        ("1% appended", files["appended"]),
    )
    results: dict = {"rows": millions * 1_000_000, "csv_bytes": base.stat().st_size}
    done: list[dict] = []
    for round_ in range(rounds):
        one: dict = {"floor_s": floor(base, work / "floor.parquet")}
        print(
            f"{millions}M floor (pyarrow read_csv + write_table): {one['floor_s']:.2f}s", flush=True
        )
        known = work / f"floor_known{round_}.parquet"
        one["floor_same_work_s"] = {
            name: floor_same_work(csv, known, work / "floor_same_work.parquet")
            for name, csv in phases
        }
        print(f"{millions}M floor, same work: {one['floor_same_work_s']}", flush=True)
        if not skip_dlt:
            one["dlt"] = {}
            for name, csv in phases:
                one["dlt"][name] = dlt_phase(csv, work / f"dlt{round_}")
                print(f"{millions}M dlt {name}: {one['dlt'][name]:.2f}s", flush=True)
        one["ingest"] = ingest_phases(None, phases, work / f"ingest{round_}", f"{millions}M ")
        done.append(one)
    results["floor_s"] = statistics.median(one["floor_s"] for one in done)
    results["floor_same_work_s"] = {
        name: statistics.median(one["floor_same_work_s"][name] for one in done)
        for name, _ in phases
    }
    if not skip_dlt:
        results["dlt"] = {
            name: statistics.median(one["dlt"][name] for one in done) for name, _ in phases
        }
    results["ingest"] = median_phases([one["ingest"] for one in done])
    if rounds > 1:
        results["rounds"] = done
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,5", help="millions of rows, comma-separated")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ingest_pipeline_bench"))
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="medians of this many rounds")
    args = parser.parse_args()
    subprocess.run(["rm", "-rf", str(args.workdir)], check=True)
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        results[f"{size}M"] = run_size(size, args.workdir / f"{size}M", args.skip_dlt, args.rounds)
    out = HERE / "results_pipeline.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
