"""What each asset does when it runs: call its stage and turn the result into metadata.

The run-time half of the factory. It imports the data path (stages, Arrow, pandas), so the
factory imports it only when an asset first runs, never while the code location loads.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager

import dagster as dg
import pyarrow as pa

from ingest_assets import stages
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.orchestration.metadata import as_json, column_schema, preview, series_chart
from ingest_assets.orchestration.partitions import run_files, run_partition
from ingest_assets.parsers.base import HIDDEN_COLUMNS
from ingest_assets.rows.check_plan import planned_checks
from ingest_assets.rows.checks import CheckResult
from ingest_resources import progress
from ingest_resources.errors import IngestError
from ingest_resources.notify import notification_status
from ingest_resources.resource import IngestResource

Context = dg.AssetExecutionContext


def check_result(result: CheckResult) -> dg.AssetCheckResult:
    metadata: dict[str, dg.RawMetadataValue] = {
        "detail": result.detail,
        "failing_rows": result.failing_rows,
    }
    if result.sample:
        metadata["sample"] = preview(pa.Table.from_pylist(result.sample))
    return dg.AssetCheckResult(
        check_name=result.check.check_name,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR
        if result.check.blocking
        else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=result.detail,
    )


def _fail(exc: Exception) -> dg.Failure:
    """An `IngestError` fails with its message alone, retried by the asset's policy when it is
    retryable; anything else is a bug, named by its type, and never retried."""
    if isinstance(exc, IngestError):
        return dg.Failure(description=str(exc), allow_retries=exc.retryable)
    return dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False)


def _skipped(context: Context, ingest: IngestResource, config: DatasetConfig) -> str | None:
    """Why this partition has no data (its file was missing, `source.missing: skip`)."""
    try:
        return stages.skipped(ingest.runtime().store, config, run_partition(context, config))
    except Exception as exc:
        raise _fail(exc) from exc


def _empty(why: str, **metadata: int | bool) -> dg.MaterializeResult:
    """A stage of a partition skipped for want of its file: recorded as such, nothing published."""
    return dg.MaterializeResult(metadata={"skipped": why, "dagster/row_count": 0, **metadata})


def raw(context: Context, ingest: IngestResource, config: DatasetConfig) -> dg.MaterializeResult:
    try:
        with _tracked(context):
            info = stages.run_raw(
                ingest.runtime(),
                config,
                run_partition(context, config),
                files=run_files(context, config),
            )
    except Exception as exc:
        raise _fail(exc) from exc
    if info.missing:
        context.log.warning(f"dataset {config.dataset_id}: {info.source}; partition skipped")
        return _empty(info.source)
    context.log.info(f"{_name(context)}: {info.bytes} bytes from {info.source}")
    return dg.MaterializeResult(
        metadata={
            "bytes": info.bytes,
            "sha256": info.sha256,
            "source": info.source,
            "etag": info.etag or "",
            "last_modified": info.last_modified or "",
            "object": info.key,
        },
        data_version=dg.DataVersion(info.sha256),
    )


def parsed(context: Context, ingest: IngestResource, config: DatasetConfig) -> dg.MaterializeResult:
    why = _skipped(context, ingest, config)
    if why:
        return _empty(why)
    try:
        runtime = ingest.runtime()
        with _tracked(context):
            table, raw_info = stages.run_parse(runtime, config, run_partition(context, config))
        drift = stages.source_drift(runtime, config, table)
    except Exception as exc:
        raise _fail(exc) from exc
    for note in table.notes:
        context.log.warning(f"dataset {config.dataset_id}: {note}")
    if drift["added"] or drift["missing"]:
        context.log.warning(
            f"dataset {config.dataset_id}: the source's columns changed since the published "
            f"version: new {drift['added']}, gone {drift['missing']}"
        )
    context.log.info(f"{_name(context)}: {table.num_rows} rows parsed")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "columns": len([c for c in table.column_names if c not in HIDDEN_COLUMNS]),
            "dagster/column_schema": column_schema(table.schema),
            "preview": preview(table.head),
            "raw_sha256": raw_info.sha256,
            "source_columns_added": as_json(drift["added"]),
            "source_columns_missing": as_json(drift["missing"]),
            **({"parse_notes": as_json(list(table.notes))} if table.notes else {}),
        }
    )


def normalized(
    context: Context, ingest: IngestResource, config: DatasetConfig
) -> dg.MaterializeResult:
    why = _skipped(context, ingest, config)
    if why:  # the checks hold vacuously on no rows: said so, never counted as a data check
        detail = f"not evaluated: the partition has no data ({why})"
        return dg.MaterializeResult(
            metadata={"skipped": why, "dagster/row_count": 0, "rows_rejected": 0},
            check_results=[
                dg.AssetCheckResult(check_name=c.check_name, passed=True, description=detail)
                for c in planned_checks(config)
            ],
        )
    try:
        with _tracked(context):
            outcome = stages.run_normalize(ingest.runtime(), config, run_partition(context, config))
    except Exception as exc:
        raise _fail(exc) from exc
    table, counts = outcome.staged, outcome.counts
    # date/time formats the contract does not name: inferred, or kept from the published version
    inferred = {c: f for c, f in outcome.formats.items() if c not in config.normalize.formats}
    context.log.info(
        f"{_name(context)}: {table.num_rows} rows staged, {counts.rejected} rejected, "
        f"{counts.duplicates} duplicate"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "rows_parsed": counts.parsed,
            "rows_rejected": counts.rejected,
            "rows_duplicate": counts.duplicates,
            "quarantine": outcome.quarantine_key if counts.rejected else "",
            "dagster/column_schema": column_schema(table.schema),
            "high_water_marks": as_json(outcome.high_water_marks),
            "preview": preview(table.head),
            **({"inferred_formats": as_json(inferred)} if inferred else {}),
        },
        check_results=[check_result(r) for r in outcome.checks],
    )


def published(
    context: Context, ingest: IngestResource, config: DatasetConfig
) -> dg.MaterializeResult:
    why = _skipped(context, ingest, config)
    if why:
        return _empty(why, rows_added=0, rows_revised=0, new_version=False)
    try:
        runtime = ingest.runtime()
        partition = run_partition(context, config)
        with _tracked(context):
            result = stages.run_publish(runtime, config, partition)
        chart = _chart(runtime, config, partition)
    except Exception as exc:
        raise _fail(exc) from exc
    manifest = result.manifest.to_dict() if result.manifest else {}
    for error in result.follow_up_errors:  # published all the same; the next run finishes them
        context.log.warning(error)
    notification = notification_status(
        config.notify.sns_topic_arn, result.committed, list(result.follow_up_errors)
    )
    context.log.info(
        f"{_name(context)}: "
        + (f"published version {result.version}" if result.committed else "nothing new")
        + f", {result.rows_added} rows added, {result.rows_revised} revised; "
        f"notification: {notification}"
    )
    return dg.MaterializeResult(
        metadata={
            "rows_added": result.rows_added,
            "rows_revised": result.rows_revised,
            "rows_repeated": result.rows_repeated,
            "rows_superseded": result.rows_superseded,
            "new_version": result.committed,
            "version": result.version or "",
            "parent_version": result.parent or "",
            "dagster/row_count": manifest.get("rows_total", 0),
            "high_water_marks": as_json(manifest.get("high_water_marks", {})),
            "manifest": as_json(manifest),
            "notification": notification,
            **({"formats": as_json(manifest["formats"])} if manifest.get("formats") else {}),
            **({"series": chart} if chart else {}),
            **(
                {"follow_up_errors": as_json(list(result.follow_up_errors))}
                if result.follow_up_errors
                else {}
            ),
        }
    )


def warehouse(
    context: Context, ingest: IngestResource, config: DatasetConfig
) -> Iterator[dg.MaterializeResult]:
    """Loads PostgreSQL, or, without INGEST_POSTGRES_URL, materializes nothing (the asset stays
    unmaterialized; `output_required=False`) and records an observation saying why."""
    try:
        with _tracked(context):
            outcome = stages.run_warehouse(ingest.runtime(), config)
    except Exception as exc:
        raise _fail(exc) from exc
    if outcome.skipped:
        reason = f"no database to load {outcome.table} into ({outcome.skipped})"
        context.log.warning(f"{_name(context)}: {reason}")
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=context.partition_key if context.has_partition_key else None,
                metadata={"not_materialized": reason},
            )
        )
        return
    context.log.info(
        f"{_name(context)}: {outcome.rows_inserted} rows inserted, {outcome.rows_updated} "
        f"updated in {outcome.table}"
    )
    yield dg.MaterializeResult(
        metadata={
            "table": outcome.table,
            "rows_upserted": outcome.rows_inserted + outcome.rows_updated,
            "rows_inserted": outcome.rows_inserted,
            "rows_updated": outcome.rows_updated,
            "versions_loaded": as_json(outcome.versions_loaded),
        }
    )


def _tracked(context: Context) -> AbstractContextManager[progress.Progress]:
    """Rows and bytes of the stage as it goes: a line in the run's log every few seconds."""
    return progress.tracking(_name(context), context.log.info)


def _name(context: Context) -> str:
    """The asset and partition a log line is about."""
    where = f" [{context.partition_key}]" if context.has_partition_key else ""
    return f"{context.asset_key.to_user_string()}{where}"


def _chart(runtime, config: DatasetConfig, partition: str) -> dg.MetadataValue | None:
    """The per-series summary of the partition's rows as this run checked them: on every
    materialization, so the asset's latest one shows it whether or not it published a version
    (a re-run that finds nothing new holds the rows of the published version)."""
    time_column = config.normalize.time_column
    columns = [SERIES_CODE, time_column, "value"]
    table = stages.read_normalized(runtime, config, partition, columns=columns)
    return series_chart(table, SERIES_CODE, time_column, "value")
