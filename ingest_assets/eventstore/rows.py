"""The normalized rows a publish reads: a table in memory, or staged Parquet parts."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from ingest_assets.eventstore.manifest import Manifest
from ingest_resources.object_store import ObjectStore


class Rows(Protocol):
    """The normalized rows to publish, read in batches (a staged file, or a table)."""

    @property
    def schema(self) -> pa.Schema: ...

    def batches(self, columns: list[str]) -> Iterator[pa.Table]: ...


@dataclass(frozen=True)
class TableRows:
    table: pa.Table
    batch_rows: int = 250_000

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def batches(self, columns: list[str]) -> Iterator[pa.Table]:
        table = self.table.select(columns)
        for start in range(0, max(table.num_rows, 1), self.batch_rows):
            yield table.slice(start, self.batch_rows)


@dataclass(frozen=True)
class StagedRows:
    """Staged Parquet parts, read one after another (they share the first one's schema), with
    their row counts. A part is named after what it is made of, so a part that the current
    version was published from (its manifest's `inputs.parts`) holds only rows the index has
    as they are: `unpublished` leaves it out and counts its rows as repeats."""

    store: ObjectStore
    parts: tuple[tuple[str, int], ...]  # (key, rows; -1: not known, never left out)

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.parts]

    @property
    def schema(self) -> pa.Schema:
        return self.store.parquet_schema(self.parts[0][0])

    def batches(self, columns: list[str]) -> Iterator[pa.Table]:
        for key, _ in self.parts:
            yield from self.store.iter_parquet(key, columns=columns)

    def unpublished(self, current: Manifest | None) -> tuple["StagedRows", int]:
        """The parts `current` was not published from, and the rows of those it was."""
        listed = set(current.input_parts if current else [])
        done = {key for key, rows in self.parts if key in listed and rows >= 0}
        rest = tuple(part for part in self.parts if part[0] not in done)
        return StagedRows(self.store, rest), sum(rows for key, rows in self.parts if key in done)
