"""The fixed cost of small runs: `ingest run` of the 25-row sample (first and no-op) and a `make
demo` that finds nothing new, against the code location's load.

In a temporary DAGSTER_HOME and store, with the repository's sample configs, each in fresh
processes (the checkout measured is the one PYTHONPATH points at, else this one):

- `ingest run REDDIT_HOMELAB_FEED`, first (it publishes 25 rows), then --repeat no-op runs;
- `make demo` after a first one, --repeat times (its Makefile, VENV= the running venv);
- the code location's load: `python -c "from ingest_assets.definitions import defs;
  defs.get_repository_def()"`, --repeat times.

Medians of wall and CPU time (user + system, of the process and its children). Usage: .venv/bin/python bench/demo_cost_bench.py [--repeat 5] [--label after]
"""

import argparse
import json
import os
import resource
import statistics
import tempfile
from pathlib import Path

from measure import BIN, HERE, REPO, save, timed

DATASET = "REDDIT_HOMELAB_FEED"
LOAD = "from ingest_assets.definitions import defs; defs.get_repository_def()"


def cpu_timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process and its children: the machine is shared, and
    its load moves wall time far more than CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(command, env, cwd)[0]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "wall_s": round(statistics.median(w for w, _ in samples), 2),
        "cpu_s": round(statistics.median(c for _, c in samples), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds of each no-op")
    parser.add_argument("--label", default="after", help="key of this run in the results file")
    parser.add_argument("--out", type=Path, default=HERE / "results_demo_cost.json")
    args = parser.parse_args()
    checkout = Path(os.environ.get("PYTHONPATH") or REPO).resolve()
    with tempfile.TemporaryDirectory(prefix="ingest_demo_bench_") as tmp:
        root = Path(tmp)
        env = {
            "INGEST_CONFIG_DIR": str(checkout / "dataset_configs"),
            "INGEST_STORE_ROOT": str(root / "store"),
            "DAGSTER_HOME": str(root / "dagster_home"),
            "PYTHONPATH": str(checkout),
        }
        timed([str(BIN / "ingest"), "instance"], env, root)
        run = [str(BIN / "ingest"), "run", DATASET]
        first = cpu_timed(run, env, root)
        noop = [cpu_timed(run, env, root) for _ in range(args.repeat)]
        stamp = str(BIN.parent / ".installed")  # never reinstalled by a benchmark
        make = ["make", "-s", "-C", str(checkout), "-o", stamp, "demo", f"VENV={BIN.parent}"]
        timed(make, env, root)  # the first demo publishes every sample
        demo = [cpu_timed(make, env, root) for _ in range(args.repeat)]
        load = [cpu_timed([str(BIN / "python"), "-c", LOAD], env, root) for _ in range(args.repeat)]
    result = {
        "ingest_run_first": summary([first]),
        "ingest_run_noop": summary(noop),
        "make_demo_noop": summary(demo),
        "code_location_load": summary(load),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result))
    save(args.out, args.label, {"repeat": args.repeat, "median_s": result}, env)


if __name__ == "__main__":
    main()
