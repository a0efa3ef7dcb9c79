"""Repeated keys across batches, judged from their hashes alone (pure: no store)."""

import numpy as np
import pyarrow as pa

from ingest_assets.rows.dedupe import KeyTracker, judge
from ingest_assets.rows.hashing import key_hashes, row_hashes


def _hashes(keys: list[str]) -> pa.Array:
    return key_hashes(pa.table({"k": keys}), ["k"])


def test_no_repeated_key_gives_no_candidates():
    tracker = KeyTracker()
    tracker.add(_hashes(["a", "b", "c"]))
    tracker.add(_hashes(["d", "e"]))
    assert tracker.candidates().tolist() == []


def test_keys_repeated_across_batches_are_candidates_in_position_order():
    tracker = KeyTracker()
    tracker.add(_hashes(["a", "b", "c"]))  # positions 0-2
    tracker.add(_hashes(["d", "a", "e", "c", "a"]))  # positions 3-7
    assert tracker.candidates().tolist() == [0, 2, 4, 6, 7]


def test_a_key_rejected_within_a_batch_makes_its_other_rows_candidates():
    tracker = KeyTracker()
    tracker.add(_hashes(["a", "b"]))
    tracker.add(_hashes(["c", "d"]))
    rejected = frozenset(_hashes(["d"]).to_pylist())
    assert tracker.candidates(rejected).tolist() == [3]


def test_judge_drops_exact_repeats_and_rejects_conflicts():
    table = pa.table({"k": ["a", "a", "b", "b"], "v": ["1", "1", "1", "2"]})
    rows = pa.table({"key_hash": key_hashes(table, ["k"]), "row_hash": row_hashes(table, ["v"])})
    repeats, conflicts, conflicted = judge(rows, np.array([10, 20, 30, 40]))
    assert repeats.tolist() == [20]  # the second "a", equal to the first
    assert sorted(conflicts.tolist()) == [30, 40]  # "b" with two different values
    assert list(conflicted.values()) == [[30, 40]]
