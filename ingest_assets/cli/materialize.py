"""`ingest run` and `ingest backfill`: in-process Dagster runs of a dataset's assets, summarised."""

import argparse
import gc
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ingest_assets.cli.datasets import dataset_config
from ingest_assets.cli.instance import open_instance
from ingest_assets.contract import DatasetConfig

if TYPE_CHECKING:  # Dagster is imported when a run starts: `ingest list` stays quick
    import dagster as dg


def _materialize(config: DatasetConfig, partition: str | None, instance, log_level: str) -> bool:
    """One in-process run of the dataset's assets; prints what happened. True on success."""
    import dagster as dg

    from ingest_assets.orchestration.factory import dataset_assets
    from ingest_resources.resource import IngestResource

    result = dg.materialize(
        dataset_assets(config),
        instance=instance,
        partition_key=partition,
        resources={"ingest": IngestResource.from_env()},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    prefix = f"[{partition}] " if partition else ""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        shown = {
            k: v.value
            for k, v in materialization.metadata.items()
            if k
            in (
                "dagster/row_count",
                "rows_rejected",
                "rows_added",
                "rows_revised",
                "rows_superseded",
                "version",
                "bytes",
                "rows_upserted",
                "skipped",
            )
            and v.value != ""
        }
        print(
            f"{prefix}{materialization.asset_key.to_user_string()}: {json.dumps(shown, default=str)}"
        )
        for error in _listed(materialization.metadata, "follow_up_errors"):
            print(f"{prefix}warning: {error} (the next run finishes it)", file=sys.stderr)
        for note in _listed(materialization.metadata, "parse_notes"):
            print(f"{prefix}note: {note}", file=sys.stderr)
        nothing_new = _nothing_new(config, materialization.metadata)
        if nothing_new:
            print(f"{prefix}{nothing_new}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            level = "blocked publish" if evaluation.severity.value == "ERROR" else "warning"
            print(
                f"{prefix}check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
                f"failed ({level}): {evaluation.description}",
                file=sys.stderr,
            )
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                message = error.message.strip() if error else "failed"
                message = message.removeprefix(FAILURE)  # (the stage's own words follow)
                print(f"{prefix}{event.step_key}: {message}", file=sys.stderr)
    return result.success


def _listed(metadata: Mapping[str, "dg.MetadataValue"], name: str) -> list[object]:
    """A metadata entry that holds a list (JSON), or nothing."""
    entry = metadata.get(name)
    value = entry.value if entry else []
    return value if isinstance(value, list) else []


FAILURE = "dagster._core.definitions.events.Failure: "  # how Dagster names a stage's failure


def _nothing_new(config: DatasetConfig, metadata: Mapping[str, "dg.MetadataValue"]) -> str | None:
    """The line saying that a publish found nothing new (a rerun, or a run that overlapped
    another of the same input, which published it): None when it published a version."""
    new_version = metadata.get("new_version")
    if new_version is None or new_version.value:
        return None
    version = metadata["version"].value if "version" in metadata else ""
    if not version:
        return f"{config.dataset_id}: nothing new to publish; nothing is published yet"
    return f"{config.dataset_id}: nothing new to publish; the published version is {version}"


def _settle() -> None:
    """Get the process ready to run: load the data path (pandas, Arrow; the code location
    leaves it to the first asset that runs, which would count it as that step's work), then
    `gc.freeze` what is loaded (Dagster, the instance, the contract, the libraries): it stays
    until the process ends, and the run's collections and the one at exit need not walk it
    again (about 0.7 s of a small dataset's `ingest run`)."""
    import ingest_assets.orchestration.assets  # noqa: F401

    gc.freeze()


def _partitions(config: DatasetConfig):
    from ingest_assets.orchestration.partitions import partitions_definition

    return partitions_definition(config.partitions)


def cmd_run(args: argparse.Namespace) -> int:
    config = dataset_config(args.dataset)
    if config.partitions.kind == "files":  # every file not yet ingested, or --partition's
        from ingest_assets.cli.landing import run_new_files

        with open_instance() as instance:
            _settle()
            return run_new_files(config, instance, args.log_level, args.partition)
    partitions = _partitions(config)
    partition = args.partition
    if partitions is None and partition:
        raise SystemExit(
            f"ingest: dataset {config.dataset_id} is not partitioned; drop --partition"
        )
    if partitions is not None and partition is None:
        partition = partitions.get_last_partition_key()
    if partitions is not None and not partitions.has_partition_key(partition):
        raise SystemExit(
            f"ingest: {partition!r} is not a partition of {config.dataset_id} ({config.partitions.kind})"
        )
    with open_instance() as instance:
        _settle()
        return 0 if _materialize(config, partition, instance, args.log_level) else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    """Every partition from --start to --end (inclusive), one run each, oldest first."""
    config = dataset_config(args.dataset)
    partitions = _partitions(config)
    if partitions is None:
        raise SystemExit(
            f"ingest: dataset {config.dataset_id} is not partitioned; use `ingest run`"
        )
    keys = partitions.get_partition_keys()
    for bound in (args.start, args.end):
        if bound not in keys:
            raise SystemExit(
                f"ingest: {bound!r} is not a partition of {config.dataset_id} ({config.partitions.kind})"
            )
    selected = keys[keys.index(args.start) : keys.index(args.end) + 1]
    if not selected:
        raise SystemExit(f"ingest: --start {args.start} is after --end {args.end}")
    failed = []
    with open_instance() as instance:
        _settle()
        for partition in selected:
            if not _materialize(config, partition, instance, args.log_level):
                failed.append(partition)
    print(
        f"{config.dataset_id}: {len(selected) - len(failed)} of {len(selected)} partitions succeeded",
        file=sys.stderr,
    )
    if failed:
        print(f"failed partitions: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
