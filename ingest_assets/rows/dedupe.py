"""Repeated primary keys: the one rule, within a batch and across the batches of one input.

The rule: exact repeats of a key (the same `row_hash`) keep their first row; a key seen with
different `row_hash`es rejects all its rows (quarantined as `conflicting_duplicate`).

Keys are first compared by the first 8 bytes of `key_hash` (a sort of 8-byte integers: 8 bytes
a row, all that is kept of a batch across batches); only the rows behind a repeated prefix are
judged on their full hashes, so a prefix collision never merges two different keys. Within a
batch `normalize` applies `dedupe` to its rows; across batches the stage keeps a `KeyTracker`,
fetches the rows of its `candidates` and `judge`s them, with the keys a batch already rejected
(a key conflicting within one batch rejects its rows in the others). Pure: no Dagster, no I/O.
"""

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ingest_assets.rows.hashing import DIGEST_BYTES, DIGEST_TYPE, KEY_HASH, ROW_HASH, key_prefixes

NO_POSITIONS = np.zeros(0, dtype=np.int64)
_DIGEST = np.dtype(f"V{DIGEST_BYTES}")  # a digest as one opaque numpy value: sorts, compares


class Verdict(NamedTuple):
    """What the rule says of some rows, by their positions."""

    repeats: np.ndarray  # exact repeats of an earlier row of their key: dropped (sorted)
    conflicts: np.ndarray  # the rows of keys seen with different values: rejected (sorted)
    conflicted: dict[bytes, list[int]]  # key_hash -> the positions of its rejected rows


NOTHING = Verdict(NO_POSITIONS, NO_POSITIONS, {})


def repeated_positions(
    prefixes: np.ndarray, rejected: frozenset[bytes] = frozenset()
) -> np.ndarray:
    """Sorted positions whose key prefix occurs more than once, or is the prefix of a key in
    `rejected`: the only rows the rule can drop or reject."""
    if prefixes.size == 0:
        return NO_POSITIONS
    if not rejected:  # the common case, no key repeated: a sort of the values tells
        ordered = np.sort(prefixes)
        if not (ordered[1:] == ordered[:-1]).any():
            return NO_POSITIONS
    order = np.argsort(prefixes)  # (positions come back sorted: the order of ties is moot)
    ordered = prefixes[order]
    same = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(prefixes), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    if rejected:
        repeated |= np.isin(ordered, key_prefixes(pa.array(sorted(rejected), DIGEST_TYPE)))
    return np.sort(order[repeated])


def _digests(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """20-byte digests as numpy values (no copy, no Python objects)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.type != DIGEST_TYPE or column.null_count:
        raise TypeError(f"expected {DIGEST_TYPE} digests without nulls, got {column.type}")
    if len(column) == 0:
        return np.zeros(0, dtype=_DIGEST)
    values = np.frombuffer(column.buffers()[1], dtype=_DIGEST)
    return values[column.offset : column.offset + len(column)]


def judge(
    rows: pa.Table, positions: np.ndarray, rejected: frozenset[bytes] = frozenset()
) -> Verdict:
    """The rule over `rows` (with KEY_HASH and ROW_HASH), which stand at `positions` (sorted):
    exact repeats after their key's first row are dropped; every row of a key with more than
    one ROW_HASH, or in `rejected` (a key rejected elsewhere), is rejected."""
    keys, hashes = _digests(rows[KEY_HASH]), _digests(rows[ROW_HASH])
    if len(keys) == 0:
        return NOTHING
    distinct_keys, key_of = np.unique(keys, return_inverse=True)
    hash_of = np.unique(hashes, return_inverse=True)[1].astype(np.int64)
    width = int(hash_of.max()) + 1
    pairs = np.unique(key_of.astype(np.int64) * width + hash_of)  # each (key, hash) once
    values_of_key = np.bincount(pairs // width, minlength=len(distinct_keys))
    conflicting = values_of_key > 1
    if rejected:
        conflicting |= np.isin(distinct_keys, np.array(sorted(rejected), dtype=_DIGEST))
    in_conflict = conflicting[key_of]
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(key_of, return_index=True)[1]] = True
    positions = np.asarray(positions, dtype=np.int64)
    repeats = positions[~first & ~in_conflict]
    conflicts = positions[in_conflict]
    conflicted: dict[bytes, list[int]] = {}  # (rare: a loop over the rejected rows is fine)
    for index in np.flatnonzero(in_conflict):
        key = distinct_keys[key_of[index]].tobytes()
        conflicted.setdefault(key, []).append(int(positions[index]))
    return Verdict(repeats, conflicts, conflicted)


def dedupe(key_hash: pa.Array | pa.ChunkedArray, row_hash: pa.Array | pa.ChunkedArray) -> Verdict:
    """The rule over one batch, by position in it."""
    candidates = repeated_positions(key_prefixes(key_hash))
    if candidates.size == 0:
        return NOTHING
    index = pa.array(candidates)
    rows = pa.table({KEY_HASH: key_hash.take(index), ROW_HASH: row_hash.take(index)})
    return judge(rows, candidates)


class KeyTracker:
    """Collects key prefixes batch by batch; tells which global positions may repeat."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []

    def add(self, key_hash: pa.Array | pa.ChunkedArray) -> None:
        self._parts.append(key_prefixes(key_hash))

    def candidates(self, rejected: frozenset[bytes] = frozenset()) -> np.ndarray:
        """Sorted positions (over all batches, in order) whose prefix occurs more than once, or
        is the prefix of a key already rejected as conflicting within a batch."""
        if not self._parts:
            return NO_POSITIONS
        return repeated_positions(np.concatenate(self._parts), rejected)
