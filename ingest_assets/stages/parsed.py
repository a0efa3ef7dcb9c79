"""The parsed stage: the raw bytes as a table, in batches, with the fetch they came from
(`state.RawInfo`, with the input fingerprint) in the footer; parsed again only when that
fingerprint changes."""

import dataclasses
import logging
from collections.abc import Iterable, Iterator

import pyarrow as pa

from ingest_assets import eventstore, layout
from ingest_assets.contract import DatasetConfig
from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import HIDDEN_COLUMNS, parse_batches, require_columns
from ingest_assets.rows.normalize import SYSTEM_COLUMNS
from ingest_assets.stages.staged import (
    PART,
    PREVIEW_HEAD,
    RAW_META,
    HeadKeeper,
    Staged,
    StageError,
    input_fingerprint,
    made_of,
    reporting_full_disk,
)
from ingest_assets.stages.state import RawInfo, read_latest
from ingest_resources import progress
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime

log = logging.getLogger(__name__)


def _with_meta(
    batches: Iterable[pa.Table], key: bytes, value: bytes, ctx: ParseContext, first: list[bool]
) -> Iterator[pa.Table]:
    for batch in batches:
        progress.add(rows=batch.num_rows)
        if first[0]:
            require_columns(batch, ctx)
            first[0] = False
        yield batch.replace_schema_metadata({**(batch.schema.metadata or {}), key: value})


def run_parse(rt: Runtime, config: DatasetConfig, partition: str) -> tuple[Staged, RawInfo]:
    """Parse the raw object into the parsed stage, in batches when the format streams. Its one
    part is written under a name of this run's and renamed over the last one: a reader (a
    concurrent run's normalize) gets the old part or the new, whole; nothing is removed first."""
    latest = read_latest(rt.store, config.dataset_id, partition)
    if latest is None:
        raise StageError(
            f"dataset {config.dataset_id}: no raw data for partition {partition!r}; "
            f"materialize {config.dataset_id}/raw first"
        )
    if latest.missing:
        raise StageError(
            f"dataset {config.dataset_id}: partition {partition!r} has no data: {latest.source}"
        )
    # a feed's or JSON's encoding may come from the response's charset: the rows depend on it
    fingerprint = input_fingerprint(config, made_of(latest.sha256, latest.content_type))
    raw = dataclasses.replace(latest, fingerprint=fingerprint)
    key = f"{layout.staging(config.dataset_id, 'parsed', partition)}/{PART}"
    reused = _reuse(rt.store, key, fingerprint)
    if reused is not None:  # the same bytes under the same contract: parsed already
        return reused, raw
    with reporting_full_disk(rt.store, config, "parsed", partition, key) as store:
        rows, schema, head, notes = _write_parsed(store, config, raw, key)
    if schema is None:
        raise StageError(
            f"dataset {config.dataset_id}: {raw.source}: the parser {config.parser!r} gave "
            f"no table at all for partition {partition!r} (expected a table, even an empty one)"
        )
    pa.default_memory_pool().release_unused()
    return Staged(rows, schema, head.table(schema), notes), raw


def _write_parsed(
    store: ObjectStore, config: DatasetConfig, raw: RawInfo, key: str
) -> tuple[int, pa.Schema | None, HeadKeeper, tuple[str, ...]]:
    """The parser's batches into the parsed part at `key`, each tagged with the raw info; with
    the parser's notes (what it read leniently or guessed)."""
    context = ParseContext(config, raw.source, content_type=raw.content_type)
    raw_meta = raw.footer()
    if config.source.is_landing:  # the run's files, one after the other
        from ingest_assets.stages.landing import landing_batches

        head = HeadKeeper(
            _with_meta(landing_batches(store, config, raw), RAW_META, raw_meta, context, [True])
        )
        rows, schema = store.write_parquet_batches(key, head)
        return rows, schema, head, tuple(context.notes)
    with store.local_file(raw.key) as path:
        try:
            head = HeadKeeper(
                _with_meta(parse_batches(path, context), RAW_META, raw_meta, context, [True])
            )
            rows, schema = store.write_parquet_batches(key, head)
        except pa.ArrowInvalid as exc:  # Arrow reads this CSV differently from pandas
            log.warning(
                "dataset %s: %s: read whole by the general CSV reader (memory grows with the "
                "file): %s",
                config.dataset_id,
                raw.source,
                str(exc).splitlines()[0],
            )
            context.notes.clear()  # (read again from the start)
            whole = parse_batches(path, context, whole=True)
            head = HeadKeeper(_with_meta(whole, RAW_META, raw_meta, context, [True]))
            rows, schema = store.write_parquet_batches(key, head)
    return rows, schema, head, tuple(context.notes)


def _reuse(store: ObjectStore, key: str, fingerprint: str) -> "Staged | None":
    """The staged output at `key` if it was made from this fingerprint (else None)."""
    if not store.exists(key):
        return None
    schema = store.parquet_schema(key)
    made_from = RawInfo.of_parsed(schema)
    if made_from is None or made_from.fingerprint != fingerprint:
        return None
    head = next(store.iter_parquet(key, batch_rows=PREVIEW_HEAD), schema.empty_table())
    return Staged(store.parquet_rows(key), schema, head)


def source_drift(rt: Runtime, config: DatasetConfig, parsed: Staged) -> dict[str, list[str]]:
    """Source columns added or gone since the published version (reported at parse time; the
    schema_drift check decides whether it blocks)."""
    current, _ = eventstore.read_current(rt.store, config.dataset_id)
    if not current:
        return {"added": [], "missing": []}
    platform = {*SYSTEM_COLUMNS, *config.transform.metadata, "frequency", *HIDDEN_COLUMNS}
    published = set(current.schema) - platform
    source = set(parsed.column_names) - platform
    return {"added": sorted(source - published), "missing": sorted(published - source)}
