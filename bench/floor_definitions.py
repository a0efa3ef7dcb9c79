"""The framework floor for the definitions benchmark: bare partitioned `@dg.asset` chains.

The same datasets as the Ingest side (read from the `spec.json` named by BENCH_FLOOR_SPEC):
per dataset, the same number of assets under the same key prefix and group, a deps chain, the
same partitions (one shared definition per kind and start), the same executor. No checks, no
sensors or schedules, no YAML, no resources.
"""

import json
import os
from functools import cache

import dagster as dg
from floor_assets import chain


@cache
def partitions(kind: str, start: str) -> dg.PartitionsDefinition:
    kinds = {"daily": dg.DailyPartitionsDefinition, "monthly": dg.MonthlyPartitionsDefinition}
    return kinds[kind](start_date=start)


def build() -> dg.Definitions:
    with open(os.environ["BENCH_FLOOR_SPEC"]) as handle:
        spec = json.load(handle)
    return dg.Definitions(
        assets=[
            asset
            for shape in spec
            for asset in chain(
                shape["dataset_id"], shape["assets"], partitions(shape["kind"], shape["start"])
            )
        ],
        executor=dg.in_process_executor,
    )


defs = build()
