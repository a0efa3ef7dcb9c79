"""`ingest run DATASET` for a dataset of `files` partitions: every file of its landing zone not
yet ingested becomes a partition (added to the Dagster instance), and they are materialized in
runs of at most `source.max_files_per_run` files each (one run over a range of partitions)."""

from typing import TYPE_CHECKING

from ingest_assets.contract import DatasetConfig

if TYPE_CHECKING:  # Dagster is imported when a run starts
    import dagster as dg


def run_new_files(
    config: DatasetConfig,
    job: "dg.JobDefinition",
    instance: "dg.DagsterInstance",
    log_level: str,
    only: str | None = None,
) -> int:
    """Every new file (or the file `only`, ingested again if it changed) as partitions, run by
    the dataset's job (`launch.dataset_job`)."""
    from ingest_assets.cli.launch import execute
    from ingest_assets.cli.report import report
    from ingest_assets.orchestration.partitions import files_partitions_name
    from ingest_assets.stages.landing import landing_zone, new_files, published_files
    from ingest_resources.resource import IngestResource

    resource = IngestResource.from_env()
    where = landing_zone(config, "all")
    ledger = published_files(resource.runtime(), config)
    names = [f.name for f in new_files(config, where, ledger, [only] if only else None, False)]
    if not names:
        print(f"{config.dataset_id}: no new file in {where.glob}; nothing to run")
        return 0
    partitions = files_partitions_name(config.dataset_id)
    known = set(instance.get_dynamic_partitions(partitions))
    instance.add_dynamic_partitions(partitions, [n for n in names if n not in known])
    order = {name: i for i, name in enumerate(instance.get_dynamic_partitions(partitions))}
    names.sort(key=order.__getitem__)
    size = config.source.max_files_per_run or len(names)
    ok = True
    for chunk in _ranges(names, order, size):
        range_tags = {
            "dagster/asset_partition_range_start": chunk[0],
            "dagster/asset_partition_range_end": chunk[-1],
        }
        result = execute(job, instance, None, log_level, range_tags)
        prefix = f"[{len(chunk)} files: {chunk[0]} .. {chunk[-1]}] "
        ok = report(config, result, prefix, partition=chunk[-1]) and ok
    return 0 if ok else 1


def _ranges(names: list[str], order: dict[str, int], size: int) -> list[list[str]]:
    """`names` (in partition order) cut into runs of at most `size` names that are consecutive
    partitions: a run over a range reads every partition in it, and one that reached back over
    files already ingested (a changed old file beside new ones) would read them again, or fail
    on one deleted since."""
    ranges: list[list[str]] = []
    for name in names:
        last = ranges[-1] if ranges else None
        if last and len(last) < size and order[name] == order[last[-1]] + 1:
            last.append(name)
        else:
            ranges.append([name])
    return ranges
