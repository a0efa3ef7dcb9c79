"""The Dagster side of `ingest run` and `ingest backfill`: a job named for the dataset, runs that
never stay NOT_STARTED, and a backfill recorded in the instance (the UI's Backfills tab).

Everything a user can get wrong (the dataset, the partition, the log level) is checked before
the instance is opened; a run that was created and could not finish (an error while it starts,
Ctrl-C) is marked failed, so the UI never shows its assets "Materializing" for ever.
"""

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ingest_assets.contract import DatasetConfig
from ingest_assets.orchestration.pools import run_tags

if TYPE_CHECKING:  # Dagster is imported when a run starts: `ingest list` stays quick
    import dagster as dg
    from dagster._core.execution.execute_in_process_result import ExecuteInProcessResult

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def log_level(value: str) -> str:
    """`--log-level`, checked before anything starts: one of LOG_LEVELS (any case)."""
    level = value.upper()
    if level not in LOG_LEVELS:
        raise SystemExit(
            f"ingest: --log-level {value!r} is not a log level; expected one of {', '.join(LOG_LEVELS)}"
        )
    return level


def job_name(config: DatasetConfig) -> str:
    """What the run is called in the UI's Runs list: the dataset's id."""
    return f"{config.dataset_id}__ingest"


def dataset_job(config: DatasetConfig) -> tuple["dg.JobDefinition", "dg.Definitions"]:
    """The dataset's assets as a job of their own (built here, for this process only: 1,000 such
    jobs in the code location would cost its load time, bench/README.md)."""
    import dagster as dg

    from ingest_assets.orchestration.factory import dataset_assets
    from ingest_resources.resource import IngestResource

    assets = dataset_assets(config)
    job = dg.define_asset_job(
        job_name(config), selection=dg.AssetSelection.assets(*assets), tags=run_tags(config)
    )
    defs = dg.Definitions(
        assets=assets,
        jobs=[job],
        resources={"ingest": IngestResource.from_env()},
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def(job_name(config)), defs


def execute(
    job: "dg.JobDefinition",
    instance: "dg.DagsterInstance",
    partition: str | None,
    level: str,
    tags: Mapping[str, str] | None = None,
) -> "ExecuteInProcessResult":
    """One in-process run. If it ends without a result (Dagster refused to start it, Ctrl-C),
    the run it created is marked failed before the error goes on."""
    import dagster as dg
    from dagster._core.utils import make_new_run_id

    run_id = make_new_run_id()
    try:
        return job.execute_in_process(
            instance=instance,
            partition_key=partition,
            run_config={"loggers": {"console": {"config": {"log_level": level}}}},
            raise_on_error=False,
            run_id=run_id,
            tags=dict(tags or {}),
        )
    except BaseException as exc:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "could not run"
            instance.report_run_failed(run, f"ingest: the run {why}: {type(exc).__name__}: {exc}")
        if isinstance(exc, dg.DagsterError):  # the run could not start: one line, no traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SystemExit(f"ingest: {job.name}: the run could not start: {first}") from None
        raise


def new_backfill_id() -> str:
    from dagster._core.utils import make_new_backfill_id

    return make_new_backfill_id()


def backfill_tags(backfill_id: str) -> dict[str, str]:
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    return {BACKFILL_ID_TAG: backfill_id}


def record_backfill(
    instance: "dg.DagsterInstance",
    defs: "dg.Definitions",
    config: DatasetConfig,
    backfill_id: str,
    started: float,
    succeeded: Sequence[str],
    failed: Sequence[str],
) -> None:
    """The backfill as Dagster's own (Backfills tab): its partitions, which were materialized and
    which failed, its runs found by their `dagster/backfill` tag. Recorded once its runs are done,
    as a finished backfill: a REQUESTED one would be picked up by a running daemon and run again."""
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    graph = defs.resolve_asset_graph()
    keys = [key for key in graph.get_all_asset_keys() if key.path[0] == config.dataset_id]
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=graph,
        partition_names=[*succeeded, *failed],
        asset_selection=keys,
        backfill_timestamp=started,
        tags=run_tags(config),
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=f"ingest backfill {config.dataset_id}",
        description=f"`ingest backfill` of {len(succeeded) + len(failed)} partition(s), in-process",
        run_config=None,
    )

    def subset(partitions: Sequence[str]) -> AssetGraphSubset:
        pairs = {AssetKeyPartitionKey(key, p) for key in keys for p in partitions}
        return AssetGraphSubset.from_asset_partition_set(pairs, graph)

    data = backfill.asset_backfill_data
    assert data is not None  # (an asset backfill always has it)
    data = data._replace(
        requested_runs_for_target_roots=True,
        requested_subset=data.target_subset,
        materialized_subset=subset(succeeded),
        failed_and_downstream_subset=subset(failed),
    )
    status = BulkActionStatus.COMPLETED_FAILED if failed else BulkActionStatus.COMPLETED_SUCCESS
    backfill = backfill.with_asset_backfill_data(data, instance, graph).with_status(status)
    instance.add_backfill(backfill._replace(backfill_end_timestamp=time.time()))
