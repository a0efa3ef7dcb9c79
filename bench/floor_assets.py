"""Bare no-op assets: the framework floor both benchmarks compare Ingest against."""

import dagster as dg

STAGES = ("raw", "parsed", "normalized", "published", "warehouse")


def chain(
    dataset_id: str, assets: int, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """`assets` no-op assets `<dataset_id>/raw -> parsed -> ...`, a group of their own, a deps chain."""
    built: list[dg.AssetsDefinition] = []
    for name in STAGES[:assets]:

        @dg.asset(
            name=name,
            key_prefix=[dataset_id],
            group_name=dataset_id,
            partitions_def=partitions,
            deps=built[-1:],
        )
        def _noop() -> None:
            return None

        built.append(_noop)
    return built
