"""Load one code location the way Dagster does, timing each phase; prints one JSON line.

Usage: python bench/load_probe.py MODULE. Run in a fresh process per measurement. Phases:
- import: `import dagster` (the framework's own import, the same on both sides);
- definitions: importing MODULE, which builds its `defs`;
- repository: `defs.get_repository_def()` and the implicit asset job, as a run process does
  (`ReconstructableJob.get_definition` -> `get_maybe_subset_job_def("__ASSET_JOB", ...)`);
- snapshot: `RepositorySnap.from_def`, what a code server (`dagster dev`) serves on top of that:
  every job, sensor, schedule and asset node.
"""

import importlib
import json
import sys
import time


def main(module: str) -> None:
    times = {"start": time.perf_counter()}
    import dagster as dg

    times["import"] = time.perf_counter()
    defs = importlib.import_module(module).defs
    times["definitions"] = time.perf_counter()
    repository = defs.get_repository_def()
    repository.get_job("__ASSET_JOB")
    times["repository"] = time.perf_counter()
    from dagster._core.remote_representation.external_data import RepositorySnap

    snap = RepositorySnap.from_def(repository)
    times["snapshot"] = time.perf_counter()
    phases = list(times)
    result = {b: round(times[b] - times[a], 3) for a, b in zip(phases, phases[1:], strict=False)}
    result["assets"] = len(snap.asset_nodes)
    result["checks"] = len(repository.asset_graph.asset_check_keys)
    result["sensors"] = len(snap.sensors)
    result["schedules"] = len(snap.schedules)
    result["dagster"] = dg.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
