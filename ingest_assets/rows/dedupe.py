"""Repeated primary keys across the batches of one input. Pure: no Dagster, no I/O.

Within a batch, `normalize` already keeps the first of exact repeats and rejects keys with
conflicting values. Across batches only the keys are kept in memory, as the first 8 bytes of
`key_hash` (8 bytes a row); the rows behind a repeated prefix are then fetched and judged on
their full hashes, so a prefix collision never merges two different keys.
"""

import numpy as np
import pyarrow as pa

from ingest_assets.eventstore.keyindex import key_prefixes
from ingest_assets.rows.hashing import DIGEST_TYPE
from ingest_assets.rows.normalize import KEY_HASH, ROW_HASH


class KeyTracker:
    """Collects key prefixes batch by batch; tells which global positions may repeat."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []

    def add(self, key_hash: pa.Array | pa.ChunkedArray) -> None:
        self._parts.append(key_prefixes(key_hash))

    def candidates(self, conflicting: frozenset[bytes] = frozenset()) -> np.ndarray:
        """Sorted positions (over all batches, in order) whose prefix occurs more than once, or
        is the prefix of a key already rejected as conflicting within a batch."""
        if not self._parts:
            return np.zeros(0, dtype=np.int64)
        keys = np.concatenate(self._parts)
        if not conflicting:  # the common case, no key repeated: a sort of the values tells
            ordered = np.sort(keys)
            if not (ordered[1:] == ordered[:-1]).any():
                return np.zeros(0, dtype=np.int64)
        order = np.argsort(keys)  # (positions come back sorted: the order of ties is moot)
        ordered = keys[order]
        same = ordered[1:] == ordered[:-1]
        repeated = np.zeros(len(keys), dtype=bool)
        repeated[1:] |= same
        repeated[:-1] |= same
        if conflicting:
            rejected = key_prefixes(pa.array(sorted(conflicting), DIGEST_TYPE))
            repeated |= np.isin(ordered, rejected)
        return np.sort(order[repeated])


def judge(
    rows: pa.Table, positions: np.ndarray, conflicting: frozenset[bytes] = frozenset()
) -> tuple[np.ndarray, np.ndarray, dict]:
    """For the candidate `rows` (at global `positions`): (positions of exact repeats to drop,
    positions of conflicting rows to reject, {key_hash: [positions of its rows]} for those).
    A key in `conflicting` (rejected within a batch) rejects its rows in the other batches."""
    keys = rows[KEY_HASH].to_pylist()
    hashes = rows[ROW_HASH].to_pylist()
    groups: dict[bytes, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    repeats, conflicts, conflicted = [], [], {}
    for key, members in groups.items():
        if key in conflicting or len({hashes[i] for i in members}) > 1:
            conflicts += [positions[i] for i in members]
            conflicted[key] = [int(positions[i]) for i in members]
        elif len(members) > 1:
            repeats += [positions[i] for i in members[1:]]
        # else: a prefix shared by different keys: nothing to do
    return np.array(repeats, dtype=np.int64), np.array(conflicts, dtype=np.int64), conflicted
