"""The key index in memory: every published key_hash with its row_hash and version, compact.

A sha1 (20 bytes, or 40 hex digits as published) is held as three integers (8 + 8 + 4
bytes), so the index of 5,000,000 keys takes about 220 MB instead of 600 MB of Arrow text, and a
lookup is a binary search (numpy) instead of a hash join. The index holds one row per key,
whatever the number of versions published. Pure: no Dagster, no I/O.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ingest_assets.rows.hashing import Parts
from ingest_resources.parquet_writing import HASH_FIELD

KEY_PARTS, ROW_PARTS = ("k0", "k1", "k2"), ("r0", "r1", "r2")
VERSION = "version"
SCHEMA = pa.schema(
    [
        pa.field(name, pa.uint64() if name[1] != "2" else pa.uint32(), metadata=HASH_FIELD)
        for name in KEY_PARTS + ROW_PARTS
    ]
    + [(VERSION, pa.dictionary(pa.int32(), pa.string()))]
)


@dataclass
class KeyIndex:
    """Sorted by k0 (the first 8 bytes); `versions` is the list `version_codes` point into."""

    keys: Parts
    rows: Parts
    version_codes: np.ndarray
    versions: list[str]

    @classmethod
    def empty(cls) -> "KeyIndex":
        none = (np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.uint32))
        return cls(none, none, np.zeros(0, np.int32), [])

    def __len__(self) -> int:
        return len(self.keys[0])

    @classmethod
    def from_table(cls, table: pa.Table) -> "KeyIndex":
        return cls.from_batches([table], table.num_rows)

    @classmethod
    def from_batches(cls, batches: Iterable[pa.Table], count: int) -> "KeyIndex":
        """The index from its table read in batches (`count` rows in all) into arrays made
        once: reading it takes the index's own size, not the file's bytes, Arrow's columns and
        their copies at once."""
        keys = (np.empty(count, np.uint64), np.empty(count, np.uint64), np.empty(count, np.uint32))
        rows = (np.empty(count, np.uint64), np.empty(count, np.uint64), np.empty(count, np.uint32))
        codes = np.empty(count, np.int32)
        known: dict[str, int] = {}  # version -> code, in the order met
        start = 0
        for batch in batches:
            end = start + batch.num_rows
            targets: list[np.ndarray] = [*keys, *rows]
            for name, target in zip(KEY_PARTS + ROW_PARTS, targets, strict=True):
                target[start:end] = batch[name].to_numpy()
            version = batch[VERSION].combine_chunks()
            if not pa.types.is_dictionary(version.type):
                version = version.dictionary_encode()
            code_of = [known.setdefault(v, len(known)) for v in version.dictionary.to_pylist()]
            indices = version.indices.to_numpy(zero_copy_only=False)
            codes[start:end] = np.asarray(code_of, dtype=np.int32)[indices]
            start = end
        if start != count:
            raise ValueError(f"the key index holds {start} rows, its footer says {count}")
        return cls(keys, rows, codes, list(known))._sorted()

    def to_table(self) -> pa.Table:
        versions = pa.DictionaryArray.from_arrays(
            pa.array(self.version_codes, pa.int32()), pa.array(self.versions, pa.string())
        )
        columns = [*self.keys, *self.rows]
        return pa.Table.from_arrays([pa.array(c) for c in columns] + [versions], schema=SCHEMA)

    def _sorted(self) -> "KeyIndex":
        first = self.keys[0]
        if bool(np.all(first[1:] >= first[:-1])):  # as written: no sort to find that out
            return self
        order = np.argsort(first)  # (a lookup walks every key of equal k0: ties in any order)

        def take(parts: Parts) -> Parts:
            return parts[0][order], parts[1][order], parts[2][order]

        return KeyIndex(take(self.keys), take(self.rows), self.version_codes[order], self.versions)

    def lookup(self, keys: Parts) -> np.ndarray:
        """Position in the index of each key, -1 where it is not there."""
        k0, k1, k2 = self.keys
        found = np.full(len(keys[0]), -1, dtype=np.int64)
        if len(k0) == 0 or len(keys[0]) == 0:
            return found
        order = np.argsort(keys[0])  # searching in sorted order is far kinder to the cache
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.searchsorted(k0, keys[0][order], side="left")
        # nearly always 0 or 1 candidate; keys sharing their first 8 bytes are walked in turn
        pending = self._same_prefix(np.arange(len(position)), position, keys[0])
        while pending.size:
            at = position[pending]
            same = (k1[at] == keys[1][pending]) & (k2[at] == keys[2][pending])
            found[pending[same]] = at[same]
            rest = pending[~same]
            position[rest] += 1
            pending = self._same_prefix(rest, position, keys[0])
        return found

    def _same_prefix(
        self, which: np.ndarray, position: np.ndarray, first: np.ndarray
    ) -> np.ndarray:
        """Of `which`, those whose `position` is in the index and holds their first 8 bytes."""
        inside: np.ndarray = which[position[which] < len(self.keys[0])]
        same: np.ndarray = inside[self.keys[0][position[inside]] == first[inside]]
        return same

    def same_rows(self, at: np.ndarray, rows: Parts) -> np.ndarray:
        """Whether the index's row_hash at `at` (positions >= 0) equals `rows`."""
        r0, r1, r2 = self.rows
        same: np.ndarray = (r0[at] == rows[0]) & (r1[at] == rows[1]) & (r2[at] == rows[2])
        return same

    def merged(self, keys: list[Parts], rows: list[Parts], version: str) -> "KeyIndex":
        """The index with these keys (inserted or updated, given in batches) now at `version`.
        Built one component at a time, releasing the batches and this index's own components
        as it goes (this index is spent: it is left empty), so the peak is about one index, not
        two."""
        count = sum(len(k[0]) for k in keys)
        if count == 0:
            return self
        keep = np.ones(len(self), dtype=bool)
        for batch in keys:
            replaced = self.lookup(batch)
            keep[replaced[replaced >= 0]] = False
        versions = list(self.versions)
        if version not in versions:
            versions.append(version)
        codes = np.concatenate(
            [self.version_codes[keep], np.full(count, versions.index(version), dtype=np.int32)]
        )
        order = None
        built: list[np.ndarray] = []
        olds: list[np.ndarray | None] = [*self.keys, *self.rows]
        self.keys, self.rows = KeyIndex.empty().keys, KeyIndex.empty().rows
        self.version_codes, self.versions = np.zeros(0, np.int32), []
        for position, source in enumerate([keys] * 3 + [rows] * 3):
            old, olds[position] = olds[position], None  # (the last reference to it)
            assert old is not None
            column = np.concatenate([old[keep]] + [part[position % 3] for part in source])
            del old
            if order is None:  # k0 comes first: it decides the order of everything
                order = np.argsort(column)  # (ties in any order, as in `_sorted`)
            built.append(column[order])
            del column
        keys.clear()
        rows.clear()
        return KeyIndex(
            (built[0], built[1], built[2]), (built[3], built[4], built[5]), codes[order], versions
        )
