"""What an in-process run did, printed as `ingest run` shows it: a line per materialization
(its counts), warnings, notes, what a step observed instead of materializing, the checks that
did not pass, and each failed step's own words."""

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ingest_assets.contract import DatasetConfig

if TYPE_CHECKING:  # Dagster is imported when a run starts
    import dagster as dg
    from dagster._core.execution.execute_in_process_result import ExecuteInProcessResult

SHOWN = (
    "dagster/row_count",
    "rows_rejected",
    "rows_added",
    "rows_revised",
    "rows_superseded",
    "version",
    "bytes",
    "rows_upserted",
)


def report(
    config: DatasetConfig,
    result: "ExecuteInProcessResult",
    prefix: str,
    partition: str | None = None,
) -> bool:
    """Print what the run did, each line after `prefix`; True when it succeeded. `partition`: a
    run over a range of partitions reports each of them alike, only this one is shown."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if partition is not None and materialization.partition != partition:
            continue
        shown = {
            k: v.value for k, v in materialization.metadata.items() if k in SHOWN and v.value != ""
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
    for observation in _observations(result):
        for name, entry in observation.metadata.items():
            what = name.replace("_", " ")
            print(f"{prefix}{observation.asset_key.to_user_string()}: {what}: {entry.value}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            print(f"{prefix}{_check_line(evaluation)}", file=sys.stderr)
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                message = error.message.strip() if error else "failed"
                message = message.removeprefix(FAILURE)  # (the stage's own words follow)
                print(f"{prefix}{event.step_key}: {message}", file=sys.stderr)
    return result.success


def _check_line(evaluation: "dg.AssetCheckEvaluation") -> str:
    """A check that did not pass: a warning (it reports) or what blocked the publish."""
    name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
    if evaluation.severity.value == "ERROR":
        return f"check {name} failed and blocked the publish: {evaluation.description}"
    return f"warning: check {name}: {evaluation.description}"


def _observations(result: "ExecuteInProcessResult") -> list["dg.AssetObservation"]:
    """What a step reported instead of materializing (the warehouse without a database)."""
    return [
        event.asset_observation_data.asset_observation
        for event in result.all_events
        if event.is_asset_observation
    ]


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
    if "skipped" in metadata:  # no data for this run (no new file, a missing partition)
        return f"{config.dataset_id}: nothing to publish: {metadata['skipped'].value}"
    version = metadata["version"].value if "version" in metadata else ""
    if not version:
        return f"{config.dataset_id}: nothing new to publish; nothing is published yet"
    return f"{config.dataset_id}: nothing new to publish; the published version is {version}"
