"""A dataset as of one published version, read a month at a time.

The rows a reader may rely on (docs/storage.md) are the latest row of every key over the
chain's event files. Event files are immutable and filed one per (year, month) of the time
column, so the latest rows of a month, as of version V, are a replay (`eventstore.replay`) of
that month's files among the chain up to V: the same rows whatever is published after V.
That is what pins a scan: a cursor names V and a month, and every page is cut from the same
rows. (The projection windows are not read: they are rewritten in place by every publish and
rebuilt whole by `ingest repair`, so a scan pinned to V could not rely on them.)

A month's rows are in the order of its event file and projection window: time, then key_hash
(a total order: key_hash is unique). They are kept in a ByteLru; a month no later version
touched is shared by every version's snapshot. A month that only one version wrote is that
version's event file as it is (a version holds each key once), read without a replay, and not
sorted again when its footer declares that order.

When a dataset's primary key does not hold its time column, a revision can move a key to
another month; then a month's replay may hold keys whose latest row is elsewhere. Only then
(and only if the chain revised anything) the latest version of every key is replayed too
(key_hash and version only) and the month keeps its rows of those versions."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import pyarrow as pa
import pyarrow.parquet as pq

from ingest_api.cache import ByteLru
from ingest_assets import eventstore, layout
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.eventstore import Manifest
from ingest_assets.rows.hashing import KEY_HASH, digest_columns, digest_schema
from ingest_resources.object_store import ObjectStore

OP, VERSION = "op", "version"  # the event rows' own columns (docs/storage.md)
UNKNOWN = "unknown"  # the month of rows without a time


def month_label(key: str) -> str:
    year, month = layout.event_month(key)
    return UNKNOWN if year is None or month is None else f"{year:04d}-{month:02d}"


@dataclass(frozen=True)
class Month:
    """A month's latest rows as of a version, in scan order (time, then key_hash: the order of
    event files and projection windows)."""

    rows: pa.Table

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly the columns of `schema`, in its order: a column an older version
    lacked is null, a widened one (int64 -> double) cast."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table[field.name]
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class Snapshot:
    """The dataset `config` as of the last manifest of `chain`."""

    def __init__(
        self,
        store: ObjectStore,
        config: DatasetConfig,
        chain: tuple[Manifest, ...],
        months_cache: ByteLru[Month],
    ) -> None:
        self.store, self.config, self.chain, self.cache = store, config, chain, months_cache
        self.head = chain[-1]
        self.dataset_id = config.dataset_id
        self.version = self.head.version
        self.time_column = self.head.time_column
        self.series_column = SERIES_CODE if SERIES_CODE in self.head.schema else None

    @cached_property
    def files(self) -> dict[str, list[tuple[int, eventstore.EventFile]]]:
        """Each month's event files over the chain: (position of its manifest, file)."""
        found: dict[str, list[tuple[int, eventstore.EventFile]]] = {}
        for position, manifest in enumerate(self.chain):
            for file in manifest.files:
                found.setdefault(month_label(file.key), []).append((position, file))
        return found

    @cached_property
    def months(self) -> list[str]:
        """Every month with event files, in scan order (`unknown` last)."""
        return sorted(self.files, key=lambda label: (label == UNKNOWN, label))

    @cached_property
    def schema(self) -> pa.Schema:
        """The rows' schema (hashes as bytes, no `op`): the newest event file's. Columns are
        only ever added, and types only widened, so it holds every older file's columns."""
        for manifest in reversed(self.chain):
            if manifest.files:
                schema = digest_schema(self.store.parquet_schema(manifest.files[0].key))
                return pa.schema([f for f in schema if f.name != OP])
        return pa.schema([])

    @cached_property
    def keys_stay_in_their_month(self) -> bool:
        """A key's rows all fall in one month: its time is part of its key, or nothing was
        ever revised (only a revision can move a key)."""
        if self.time_column in self.head.primary_keys:
            return True
        return not any(manifest.counts.get("revised", 0) for manifest in self.chain)

    def month(self, label: str) -> Month:
        """The month's latest rows, sorted (from the cache, or replayed)."""
        entries = self.files.get(label, [])
        if self.keys_stay_in_their_month:  # the same files make the same month: shared
            key: tuple[str, ...] = (self.dataset_id, label, *(f.key for _, f in entries))
        else:
            key = (self.dataset_id, label, self.version)
        return self.cache.get(key, lambda: self._replay_month(entries), lambda m: m.nbytes)

    def _replay_month(self, entries: list[tuple[int, eventstore.EventFile]]) -> Month:
        if len(entries) == 1 and self.keys_stay_in_their_month:
            return self._one_file(entries[0][1].key)
        by_manifest: dict[int, list[eventstore.EventFile]] = {}
        for position, file in entries:
            by_manifest.setdefault(position, []).append(file)
        restricted = [
            replace(self.chain[position], files=tuple(files))
            for position, files in sorted(by_manifest.items())
        ]
        rows = eventstore.replay(self.store, restricted)
        if rows is None:
            return Month(pa.table({f.name: pa.array([], f.type) for f in self.schema}))
        if not self.keys_stay_in_their_month:
            rows = rows.join(
                self._latest_versions(), keys=[KEY_HASH, VERSION], join_type="left semi"
            )
        return Month(self._in_order(conform(rows, self.schema)))

    def _one_file(self, key: str) -> Month:
        """A month only one version wrote: its event file is its latest rows (a version holds
        a key once), already in scan order when its footer says so (one row group, sorted by
        time and key_hash: how a month that fits one row group is written)."""
        parquet = pq.ParquetFile(pa.BufferReader(self.store.get(key)))
        rows = conform(digest_columns(parquet.read()), self.schema)
        names = parquet.schema_arrow.names
        declared = (
            [
                (names[c.column_index], c.descending)
                for c in parquet.metadata.row_group(0).sorting_columns
            ]
            if parquet.metadata.num_row_groups == 1
            else []
        )
        if declared == [(self.time_column, False), (KEY_HASH, False)]:
            return Month(rows.combine_chunks())
        return Month(self._in_order(rows))

    def _in_order(self, rows: pa.Table) -> pa.Table:
        order = [(self.time_column, "ascending"), (KEY_HASH, "ascending")]
        return rows.sort_by(order).combine_chunks()

    def _latest_versions(self) -> pa.Table:
        """(key_hash, version) of every key's latest row as of this version."""

        def make() -> Month:
            found = eventstore.replay(self.store, list(self.chain), [KEY_HASH, VERSION])
            table = found.select([KEY_HASH, VERSION]) if found is not None else pa.table({})
            return Month(table)

        key = (self.dataset_id, "latest-versions", self.version)
        return self.cache.get(key, make, lambda m: m.nbytes).rows


SnapshotFactory = Callable[[DatasetConfig, tuple[Manifest, ...]], Snapshot]
