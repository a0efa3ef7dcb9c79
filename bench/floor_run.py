"""The framework floor for the run-overhead benchmark: a chain of 4 no-op daily-partitioned assets.

`dagster asset materialize -m floor_run --select 'key:FLOOR/*' --partition P` runs it through
Dagster's CLI; `python floor_run.py P` runs it in-process with `dg.materialize`, the way
`ingest run` does (same instance from DAGSTER_HOME, same console log level).
"""

import sys

import dagster as dg
from floor_assets import chain

ASSETS = chain("FLOOR", 4, dg.DailyPartitionsDefinition(start_date="2026-01-01"))
defs = dg.Definitions(assets=ASSETS, executor=dg.in_process_executor)

if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            ASSETS,
            instance=instance,
            partition_key=sys.argv[1],
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            raise_on_error=False,
        )
    sys.exit(0 if result.success else 1)
