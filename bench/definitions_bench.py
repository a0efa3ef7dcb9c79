"""Code-location load time: Ingest's definitions for N dataset YAMLs vs bare partitioned assets.

For each N (default 10, 100, 1000) this writes N realistic dataset YAMLs (see dataset_mix.py)
into a temporary folder, then loads, in a fresh process each time, both
- Ingest: `ingest_assets.definitions` with INGEST_CONFIG_DIR at that folder, and
- the floor: `floor_definitions`, the same datasets as bare `@dg.asset` chains (same keys,
  groups, partitions and deps; no checks, sensors, schedules or YAML),
through `load_probe.py`, which times the same phases on both sides (see its docstring). The
figures are medians over --repeat processes per side, the two sides alternating.

Usage: .venv/bin/python bench/definitions_bench.py [--sizes 10 100 1000] [--repeat 5] [--label after]
"""

import argparse
import json
import tempfile
from pathlib import Path

from dataset_mix import SPEC_FILE, write_mix
from measure import BIN, HERE, medians, python_path, ratio, save, timed

SIDES = {
    "ingest": ("ingest_assets.definitions", lambda folder: {"INGEST_CONFIG_DIR": str(folder)}),
    "floor": (
        "floor_definitions",
        lambda folder: {"BENCH_FLOOR_SPEC": str(folder / SPEC_FILE), "PYTHONPATH": python_path()},
    ),
}


def load_once(module: str, env: dict[str, str], cwd: Path) -> dict[str, float]:
    wall, out = timed([str(BIN / "python"), str(HERE / "load_probe.py"), module], env, cwd)
    phases = json.loads(out.strip().splitlines()[-1])
    run_process = phases["import"] + phases["definitions"] + phases["repository"]
    return {
        **{k: v for k, v in phases.items() if isinstance(v, float)},
        "run_process": round(run_process, 3),
        "code_server": round(run_process + phases["snapshot"], 3),
        "wall": round(wall, 3),
        **{k: v for k, v in phases.items() if isinstance(v, int)},
    }


def measure(size: int, repeat: int, workdir: Path) -> dict:
    folder = workdir / f"configs_{size}"
    spec = write_mix(folder, size)
    result: dict = {
        "datasets": size,
        "assets": sum(s["assets"] for s in spec),
    }
    samples: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for _ in range(repeat):  # the sides alternate, so a busy moment of the machine hits both
        for side, (module, env_for) in SIDES.items():
            env = {"INGEST_STORE_ROOT": str(workdir / "store"), **env_for(folder)}
            samples[side].append(load_once(module, env, workdir))
    for side in SIDES:
        result[side] = medians(samples[side])
        print(f"N={size} {side}: {json.dumps(result[side])}", flush=True)
    ingest, floor = result["ingest"], result["floor"]
    result["ratio"] = {
        k: ratio(ingest[k], floor[k]) for k in ("run_process", "code_server", "wall")
    }
    print(f"N={size} ratio: {json.dumps(result['ratio'])}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per side and size")
    parser.add_argument("--label", default="after", help="key of this run in the results file")
    parser.add_argument("--out", type=Path, default=HERE / "results_definitions.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingest_defs_bench_") as tmp:
        results = [measure(size, args.repeat, Path(tmp)) for size in args.sizes]
    save(args.out, args.label, {"repeat": args.repeat, "sizes": results}, {})


if __name__ == "__main__":
    main()
