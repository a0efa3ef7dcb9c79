"""The published stage: the staged normalized partition, unless a blocking check failed,
published as a new event version (the event store decides what is new or revised); and the
partition's quarantine, read back."""

import functools
from collections.abc import Callable

import pyarrow as pa

from ingest_assets import eventstore, layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.stages.landing import landed_entries, published_partition
from ingest_assets.stages.normalized import normalized_meta
from ingest_assets.stages.parts import content_named
from ingest_assets.stages.staged import ChecksFailedError, nothing_published, reporting_full_disk
from ingest_assets.stages.state import CheckRecord
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime


def blocking_failures(checks: dict[str, CheckRecord]) -> dict[str, CheckRecord]:
    return {name: record for name, record in checks.items() if record.blocking}


def run_publish(rt: Runtime, config: DatasetConfig, partition: str) -> eventstore.PublishResult:
    meta = normalized_meta(rt.store, config, partition)
    raw = meta.raw
    failed = blocking_failures(meta.checks)
    if failed:
        summary = "; ".join(f"{name}: {record.detail}" for name, record in failed.items())
        raise ChecksFailedError(
            f"dataset {config.dataset_id}, partition {partition}: not published, blocking checks "
            f"failed on the normalized data: {summary}. Fix the source or the contract and re-run "
            f"the partition (rejected rows are in {layout.quarantine(config.dataset_id, partition)}/).",
            failed,
        )
    current, _ = eventstore.read_current(rt.store, config.dataset_id)
    published = functools.partial(_published_since, rt.store, config, current)
    events = f"{layout.events(config.dataset_id)}/"
    with reporting_full_disk(rt.store, config, "published", partition, events, published) as store:
        if current and raw.fingerprint and current.fingerprint == raw.fingerprint:
            return _bring_up_to_date(rt, store, config, meta.counts.normalized)
        parts = tuple(  # (a part's rows are counted when read if it may have been rewritten)
            (part.key, part.rows if content_named(part.key) and part.rows is not None else -1)
            for part in meta.parts
        )
        return eventstore.publish(
            store,
            rt.locks,
            config,
            published_partition(config, partition),
            eventstore.StagedRows(store, parts),
            raw.manifest_inputs(meta.part_keys),
            meta.counts.to_dict(),
            meta.checks_dict(),
            notify=notifier(rt, config),
            formats=meta.formats,
            landed=landed_entries(store, raw) if config.source.is_landing else (),
        )


def _bring_up_to_date(
    rt: Runtime, store: ObjectStore, config: DatasetConfig, rows: int
) -> eventstore.PublishResult:
    """`current` was published from this very input: every row is there, unchanged; what a
    run before left undone (derived files, follow-ups) is finished all the same."""
    current, errors = eventstore.bring_up_to_date(store, rt.locks, config, notifier(rt, config))
    assert current is not None
    return eventstore.PublishResult(
        dataset_id=config.dataset_id,
        version=current.version,
        parent=current.version,
        committed=False,
        rows_added=0,
        rows_revised=0,
        rows_repeated=rows,
        manifest=current,
        follow_up_errors=tuple(errors),
    )


def _published_since(
    store: ObjectStore, config: DatasetConfig, before: "eventstore.Manifest | None"
) -> str:
    """Whether a publish that failed had swapped `current` first (then its version is
    published, and what it left undone is finished by the next run), in words."""
    was = before.version if before else None
    try:
        now, _ = eventstore.read_current(store, config.dataset_id)
    except Exception as exc:  # noqa: BLE001 - the message is what matters here
        return f"whether anything was published could not be read: {exc}"
    if now is None or now.version == was:
        return nothing_published(was)
    return (
        f"version {now.version} is published all the same (it is current; what it left "
        "undone is finished by the next run)"
    )


def notifier(rt: Runtime, config: DatasetConfig) -> Callable[[eventstore.Manifest], str | None]:
    """The version's notification (SNS, or a log line without a topic), deduplicated by
    dataset and version."""
    return lambda manifest: rt.notifier.notify(config.notify.sns_topic_arn, manifest.to_dict())


def read_quarantine(
    rt: Runtime, config: DatasetConfig, partition: str | None = None
) -> pa.Table | None:
    """Rejected rows of one partition (or all), with a `partition` column, newest run per partition."""
    if partition:
        prefix = layout.quarantine(config.dataset_id, partition)
    else:
        prefix = f"{layout.dataset(config.dataset_id)}/quarantine"
    tables = []
    for key in rt.store.list(prefix):
        if key.endswith(".parquet"):
            table = rt.store.read_parquet(key)
            name = key.split("/quarantine/", 1)[1].split("/", 1)[0]
            tables.append(
                table.add_column(
                    0, "partition", pa.repeat(pa.scalar(name, pa.string()), table.num_rows)
                )
            )
    return pa.concat_tables(tables, promote_options="permissive") if tables else None
