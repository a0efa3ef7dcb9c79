"""`ingest run` and `ingest backfill`: in-process Dagster runs of a dataset's assets, summarised."""

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ingest_assets.cli.datasets import dataset_config, selected_datasets
from ingest_assets.cli.instance import open_instance
from ingest_assets.cli.landing import run_new_files
from ingest_assets.cli.launch import (
    backfill_tags,
    dataset_job,
    execute,
    log_level,
    new_backfill_id,
    record_backfill,
)
from ingest_assets.cli.report import report
from ingest_assets.contract import DatasetConfig
from ingest_resources.errors import IngestError

if TYPE_CHECKING:  # Dagster is imported when a run starts: `ingest list` stays quick
    import dagster as dg


def _materialize(
    config: DatasetConfig,
    job: "dg.JobDefinition",
    partition: str | None,
    instance: "dg.DagsterInstance",
    level: str,
    tags: Mapping[str, str] | None = None,
) -> bool:
    """One in-process run of the dataset's job; prints what happened. True on success."""
    result = execute(job, instance, partition, level, tags)
    return report(config, result, f"[{partition}] " if partition else "")


def _progress_shown(level: str) -> AbstractContextManager[None]:
    """Progress of long stages on standard error: a bar on a terminal, else plain lines (none
    of ours at INFO or DEBUG, where Dagster's log lines carry them)."""
    from ingest_resources import progress

    if level in ("INFO", "DEBUG"):  # (a bar would break Dagster's lines on a terminal)
        return contextlib.nullcontext()
    return progress.shown_on(progress.Console(sys.stderr, plain=True))


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


def _run_partition(config: DatasetConfig, partition: str | None) -> str | None:
    """The partition to run, checked: the latest one when none is given (a dataset of `files`
    partitions: None, its new files are found when it runs)."""
    if config.partitions.kind == "files":
        return partition
    partitions = _partitions(config)
    if partitions is None and partition:
        raise SystemExit(
            f"ingest: dataset {config.dataset_id} is not partitioned; drop --partition"
        )
    if partitions is not None and partition is None:
        partition = partitions.get_last_partition_key()
        if partition is None:
            raise SystemExit(
                f"ingest: dataset {config.dataset_id} has no partition yet (partitions.start "
                f"{config.partitions.start} is not over)"
            )
    if partitions is not None and not partitions.has_partition_key(partition):
        raise SystemExit(
            f"ingest: {partition!r} is not a partition of {config.dataset_id} ({config.partitions.kind})"
        )
    return partition


def _changed(configs: list[DatasetConfig]) -> list[DatasetConfig]:
    """The datasets a run may find something new in; each of the others said and left out."""
    from ingest_assets.cli.datasets import store_runtime
    from ingest_assets.stages.unchanged import unchanged_since

    runtime, changed = store_runtime(), []
    for config in configs:
        version = unchanged_since(runtime, config)
        if version is None:
            changed.append(config)
        else:
            print(
                f"== {config.dataset_id}: source and contract unchanged since version {version}; "
                "not run"
            )
    return changed


def cmd_run(args: argparse.Namespace) -> int:
    """One dataset, or with --all each dataset's latest partition in this one process (Dagster,
    the libraries and the instance loaded once: `make demo`)."""
    level = log_level(args.log_level)
    if args.all and args.partition:
        raise SystemExit("ingest: --all runs each dataset's latest partition; drop --partition")
    configs = selected_datasets(args)
    if args.if_changed:
        configs = _changed(configs)
        if not configs:
            return 0
    failed: list[str] = []
    planned = []
    for config in configs:  # (checked before any run starts: a bad one leaves no run)
        try:
            planned.append((config, _run_partition(config, args.partition), dataset_job(config)[0]))
        except SystemExit as exc:
            if not args.all:
                raise
            print(f"== {config.dataset_id}\n{exc}", file=sys.stderr)
            failed.append(config.dataset_id)
    with _progress_shown(level), open_instance() as instance:
        _settle()
        for config, partition, job in planned:
            if args.all:
                print(f"== {config.dataset_id}", flush=True)
            try:
                if config.partitions.kind == "files":  # every new file, or --partition's
                    ok = run_new_files(config, job, instance, level, partition) == 0
                else:
                    ok = _materialize(config, job, partition, instance, level)
            except (SystemExit, IngestError) as exc:  # (--all: the others still run)
                if not args.all:
                    raise
                print(exc if isinstance(exc, SystemExit) else f"ingest: {exc}", file=sys.stderr)
                ok = False
            if not ok:
                failed.append(config.dataset_id)
    if failed and args.all:
        print(f"ingest: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Every partition from --start to --end (inclusive), one run each, oldest first: a Dagster
    backfill (Backfills tab) whose runs carry its `dagster/backfill` tag, run in this process."""
    level = log_level(args.log_level)
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
    job, defs = dataset_job(config)
    backfill_id, started = new_backfill_id(), time.time()
    succeeded: list[str] = []
    failed: list[str] = []
    with _progress_shown(level), open_instance() as instance:
        _settle()
        try:
            for partition in selected:
                tags = backfill_tags(backfill_id)
                ok = _materialize(config, job, partition, instance, level, tags)
                (succeeded if ok else failed).append(partition)
        finally:  # (interrupted: the partitions that ran, if any did)
            if succeeded or failed:
                record_backfill(instance, defs, config, backfill_id, started, succeeded, failed)
    print(
        f"{config.dataset_id}: backfill {backfill_id}: {len(selected) - len(failed)} of "
        f"{len(selected)} partitions succeeded",
        file=sys.stderr,
    )
    if failed:
        print(f"failed partitions: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
