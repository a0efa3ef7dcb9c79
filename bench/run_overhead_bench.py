"""A small dataset's run, end to end, against a no-op asset chain of the same length run the same way.

Setup (in a temporary folder): a 10-row CSV, one dataset YAML reading it (daily partitions,
not_null, unique and range checks: raw -> parsed -> normalized -> published), a DAGSTER_HOME
prepared by `ingest instance` (SQLite) and shared by every process. Then, in fresh processes:

- `ingest run SMALL --partition P` vs `python floor_run.py P` (4 no-op partitioned assets,
  `dg.materialize` in-process, the same instance and console log level);
- `dagster asset materialize -m ingest_assets.definitions --select 'key:SMALL/*' --partition P`
  vs the same command on `-m floor_run --select 'key:FLOOR/*'`.

One warm-up round (the first Ingest run publishes the 10 rows; later ones find nothing new,
after fetching, parsing, normalizing and checking again), then --repeat rounds, each command
once per round; the figures are medians of wall time.

Usage: .venv/bin/python bench/run_overhead_bench.py [--repeat 5] [--label after]
"""

import argparse
import json
import tempfile
from pathlib import Path

from measure import BIN, HERE, medians, python_path, ratio, save, timed

PARTITION = "2026-11-20"
CSV = "id,obs_time,value\n" + "".join(
    f"{n},2026-11-{n + 10:02d},{100 + n * 1.5}\n" for n in range(1, 11)
)
DATASET = """dataset_id: SMALL
description: Ten rows from a CSV file
source: {{kind: file, path: {csv}, format: csv}}
normalize:
  primary_keys: [id]
  schema: {{value: float64, id: int64}}
partitions: {{kind: daily, start: 2026-01-01}}
checks:
  not_null: [obs_time, value]
  unique: [id, obs_time]
  ranges: {{value: {{min: 0}}}}
"""


def commands() -> dict[str, list[str]]:
    materialize = [str(BIN / "dagster"), "asset", "materialize", "--partition", PARTITION]
    return {
        "ingest_run": [str(BIN / "ingest"), "run", "SMALL", "--partition", PARTITION],
        "floor_in_process": [str(BIN / "python"), str(HERE / "floor_run.py"), PARTITION],
        "ingest_dagster_cli": [
            *materialize,
            *("-m", "ingest_assets.definitions", "--select", "key:SMALL/*"),
        ],
        "floor_dagster_cli": [*materialize, *("-m", "floor_run", "--select", "key:FLOOR/*")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds after one warm-up")
    parser.add_argument("--label", default="after", help="key of this run in the results file")
    parser.add_argument("--out", type=Path, default=HERE / "results_run_overhead.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingest_run_bench_") as tmp:
        root = Path(tmp)
        (root / "configs").mkdir()
        (root / "small.csv").write_text(CSV)
        (root / "configs" / "small.yaml").write_text(DATASET.format(csv=root / "small.csv"))
        env = {
            "INGEST_CONFIG_DIR": str(root / "configs"),
            "INGEST_STORE_ROOT": str(root / "store"),
            "DAGSTER_HOME": str(root / "dagster_home"),
            "PYTHONPATH": python_path(),
        }
        timed([str(BIN / "ingest"), "instance"], env, root)
        rounds: list[dict[str, float]] = []
        for number in range(args.repeat + 1):
            times = {name: round(timed(cmd, env, root)[0], 3) for name, cmd in commands().items()}
            print(f"{'warm-up' if number == 0 else f'round {number}'}: {json.dumps(times)}")
            if number:
                rounds.append(times)
    result = medians(rounds)
    ratios = {
        "ingest_run / floor_in_process": ratio(result["ingest_run"], result["floor_in_process"]),
        "dagster_cli: ingest / floor": ratio(
            result["ingest_dagster_cli"], result["floor_dagster_cli"]
        ),
    }
    print(f"medians: {json.dumps(result)}\nratios: {json.dumps(ratios)}")
    save(args.out, args.label, {"repeat": args.repeat, "median_s": result, "ratio": ratios}, env)


if __name__ == "__main__":
    main()
