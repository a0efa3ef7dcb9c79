"""The normalized stage's batches taken together: the format of each date/time column, from
all its values (`input_formats`), what they add up to (`Tally`: counts, rejected rows, keys,
high-water marks) and the keys repeated across them (`dedupe_across`: the one rule of
`rows.dedupe` over the staged parts; conflicting rows quarantined, the parts that held dropped
rows rewritten without them).
"""

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.eventstore.diff import high_water_marks
from ingest_assets.parsers.base import HIDDEN_COLUMNS, ROW_COLUMN, cell_map
from ingest_assets.rows.convert import text_of, typed_text
from ingest_assets.rows.dates import ColumnFormat
from ingest_assets.rows.dedupe import NOTHING, KeyTracker, judge
from ingest_assets.rows.hashing import DIGEST_TYPE, KEY_HASH
from ingest_assets.rows.normalize import (
    TIME_TYPES,
    Normalized,
    is_number_type,
    is_time_type,
    target_types,
)
from ingest_assets.rows.quarantine import conflict_reasons, conflicting_rows
from ingest_assets.stages.parts import iter_parts, part_key
from ingest_assets.stages.staged import StageError
from ingest_assets.stages.state import StagedPart
from ingest_resources.object_store import ObjectStore


def input_formats(
    store: ObjectStore, parsed_key: str, config: DatasetConfig, kept: Mapping[str, str]
) -> dict[str, str]:
    """The format of each date/time column of the parsed rows: the contract's, else the one
    `kept` (the published version's), else one inferred from all the column's values (read
    alone, batch by batch), so that every batch reads it alike."""
    schema = store.parquet_schema(parsed_key)
    names = [name for name in schema.names if name not in HIDDEN_COLUMNS]
    formats: dict[str, str] = {}
    for name, type_name in target_types(names, config).items():
        data_type = schema.field(name).type
        if type_name not in TIME_TYPES or is_time_type(data_type):
            continue
        if name in config.normalize.formats or name in kept:
            formats[name] = config.normalize.formats.get(name) or kept[name]
            continue
        inference = ColumnFormat(name, is_number_type(data_type), config)
        for batch in store.iter_parquet(parsed_key, columns=[name]):
            inference.add(typed_text(text_of(pc.unique(batch[name]))))
        found = inference.result()
        if found is not None:
            formats[name] = found.format
    return formats


@dataclass
class Tally:
    """What the batches of one run add up to, batch by batch."""

    config: DatasetConfig
    parsed: int = 0
    duplicates: int = 0
    rejected: list[pa.Table] = field(default_factory=list)
    repeats: list[pa.Table] = field(default_factory=list)  # dropped in a batch: _row, key_hash
    keys: KeyTracker = field(default_factory=KeyTracker)
    conflicting: frozenset[bytes] = frozenset()  # keys a batch rejected as conflicting
    high_water_marks: dict[str, str] = field(default_factory=dict)

    def add(self, parsed_rows: int, result: Normalized) -> None:
        """A batch normalized now."""
        self.parsed += parsed_rows
        self.duplicates += result.duplicates_dropped
        if result.rejected.num_rows:
            self.rejected.append(result.rejected)
        if result.repeats.num_rows:
            self.repeats.append(result.repeats)
        self.keys.add(result.table[KEY_HASH])
        self.conflicting |= result.conflicting_keys
        self._mark(result.table)

    def add_kept(self, store: ObjectStore, part: StagedPart) -> None:
        """A part kept from the last run: its keys and newest times, read back (its batch was
        not normalized again)."""
        assert part.parsed is not None  # (a kept part is a clean one: listed with its counts)
        self.parsed += part.parsed
        for table in part_columns(store, [part.key], self.config, with_keys=True):
            self.keys.add(table[KEY_HASH])
            self._mark(table)

    def mark_again(self, store: ObjectStore, keys: list[str]) -> None:
        """The high-water marks of the parts as they are now (after rows were left out)."""
        self.high_water_marks = {}
        for table in part_columns(store, keys, self.config):
            self._mark(table)

    def late_conflicts(self, conflicting: frozenset[bytes]) -> dict[bytes, list[int]]:
        """The source rows dropped in their batch as exact repeats whose key turned out to
        conflict (in another batch), by key: rejected after all, as in one batch."""
        if not self.repeats or not conflicting:
            return {}
        repeats = pa.concat_tables(self.repeats)
        keys = pa.array(sorted(conflicting), DIGEST_TYPE)
        late = repeats.filter(pc.is_in(repeats[KEY_HASH], value_set=keys))
        found: dict[bytes, list[int]] = {}
        for key, row in zip(late[KEY_HASH].to_pylist(), late[ROW_COLUMN].to_pylist(), strict=True):
            found.setdefault(key, []).append(row)
        return found

    def _mark(self, table: pa.Table) -> None:
        self.high_water_marks = high_water_marks(self.config, table, self.high_water_marks)


def part_columns(
    store: ObjectStore, keys: list[str], config: DatasetConfig, with_keys: bool = False
) -> Iterator[pa.Table]:
    """The parts' columns that high-water marks (and, `with_keys`, repeats) are found from."""
    names = set(store.parquet_schema(keys[0]).names)
    wanted = [SERIES_CODE, config.normalize.time_column] + ([KEY_HASH] if with_keys else [])
    yield from iter_parts(store, keys, columns=[c for c in wanted if c in names])


def conform_part(key: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A later part in the first part's schema (a column all null in one batch, say)."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StageError(f"{key}: a batch's columns differ from the first batch's: {exc}") from None


def dedupe_across(
    store: ObjectStore, parts: list[StagedPart], tally: Tally, parsed_key: str
) -> tuple[pa.Table, int]:
    """Keys repeated across batches (rare): drop exact repeats (counted in `tally`),
    quarantine conflicts, with the rows a batch dropped as exact repeats of a key that turns
    out to conflict, and rewrite the parts that held them (`parts` is updated). However the
    input is cut into batches, the same rows are kept, dropped and quarantined. Returns (the
    quarantined rows, how many rows left the parts)."""
    candidates = tally.keys.candidates(tally.conflicting)
    verdict = NOTHING
    groups: dict[bytes, list[int]] = {}  # key -> its source rows quarantined here
    if candidates.size:
        rows = _take_positions(store, parts, candidates)
        verdict = judge(rows, candidates, tally.conflicting)
        row_of = dict(zip(candidates.tolist(), rows[ROW_COLUMN].to_pylist(), strict=True))
        groups = {key: [row_of[p] for p in where] for key, where in verdict.conflicted.items()}
    late = tally.late_conflicts(tally.conflicting | frozenset(verdict.conflicted))
    for key, late_rows in late.items():
        groups[key] = sorted(groups.get(key, []) + late_rows)
    tally.duplicates += int(verdict.repeats.size) - sum(len(r) for r in late.values())
    drop = np.union1d(verdict.repeats, verdict.conflicts)
    if drop.size:
        _drop_positions(store, parts, drop)
    if not groups:
        return pa.table({}), int(drop.size)
    reason_of = conflict_reasons(groups.values(), {r: r for rows in groups.values() for r in rows})
    # quarantined as the source has them: the parsed rows (text, cells), by source row number
    source = _parsed_rows(store, parsed_key, list(reason_of))
    in_order = [reason_of[row] for row in source[ROW_COLUMN].to_pylist()]
    cells = cell_map(store.parquet_schema(parsed_key).empty_table())
    return conflicting_rows(source, in_order, cells), int(drop.size)


def _parsed_rows(store: ObjectStore, parsed_key: str, rows: list[int]) -> pa.Table:
    wanted = pa.array(rows, pa.int64())
    parts = [
        batch.filter(pc.is_in(batch[ROW_COLUMN], value_set=wanted))
        for batch in store.iter_parquet(parsed_key)
    ]
    return pa.concat_tables(parts).combine_chunks()


def _part_spans(
    parts: list[StagedPart], positions: np.ndarray
) -> Iterator[tuple[int, StagedPart, np.ndarray]]:
    """(index, part, positions within it) for every part that holds some of the global
    `positions`."""
    start = 0
    for index, part in enumerate(parts):
        assert part.rows is not None  # (parts made by this run: counted)
        end = start + part.rows
        local = positions[(positions >= start) & (positions < end)] - start
        if local.size:
            yield index, part, local
        start = end


def _take_positions(store: ObjectStore, parts: list[StagedPart], positions: np.ndarray) -> pa.Table:
    return pa.concat_tables(
        [
            store.read_parquet(part.key).take(pa.array(local))
            for _, part, local in _part_spans(parts, positions)
        ]
    )


def _drop_positions(store: ObjectStore, parts: list[StagedPart], positions: np.ndarray) -> None:
    """Rewrite the parts that hold `positions` without those rows (no longer their batch's
    normalized rows as such: not kept for a later run), each as a part named after the part it
    is made of and the rows left out (the part it replaces stays until no list names it)."""
    for index, part, local in list(_part_spans(parts, positions)):
        table = store.read_parquet(part.key)
        keep = np.ones(table.num_rows, dtype=bool)
        keep[local] = False
        left_out = hashlib.sha256(np.ascontiguousarray(local, dtype=np.int64).tobytes())
        made_of = f"{part.key} without {left_out.hexdigest()}"
        key = part_key(part.key.rsplit("/", 1)[0], index, made_of)
        store.write_parquet(key, table.filter(pa.array(keep)))
        parts[index] = part.rewritten(key, int(keep.sum()))
