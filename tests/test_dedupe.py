"""Repeated keys within and across batches, judged from their hashes alone (pure: no store)."""

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_assets.parsers.base import ROW_COLUMN
from ingest_assets.rows.dedupe import KeyTracker, dedupe, judge
from ingest_assets.rows.hashing import DIGEST_TYPE, key_hashes, row_hashes
from ingest_assets.stages.parts import read_parts
from ingest_resources import object_store
from ingest_resources.runtime import local_runtime


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


# --- the one rule against a plain-Python model of it -------------------------------------------

# Keys share their first 8 bytes in twos (a prefix collision is no repeat) and end in zero bytes
# or not; row hashes are few, so keys repeat, exactly or with other values.
KEYS = [bytes([prefix] * 8 + [suffix] * 12) for prefix in (0, 7) for suffix in (0, 1, 255)]
HASHES = [bytes([value] * 20) for value in (0, 1, 2)]
ROWS = st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(HASHES)), max_size=40)


def model(rows: list[tuple[bytes, bytes]], rejected=frozenset()):
    """The rule, plainly: (positions of exact repeats after their key's first row, {key: the
    positions of its rows} for keys with more than one row hash or in `rejected`)."""
    positions, hashes = defaultdict(list), defaultdict(set)
    for position, (key, row_hash) in enumerate(rows):
        positions[key].append(position)
        hashes[key].add(row_hash)
    repeats, conflicted = [], {}
    for key, where in positions.items():
        if len(hashes[key]) > 1 or key in rejected:
            conflicted[key] = where
        else:
            repeats += where[1:]
    return sorted(repeats), conflicted


def digests(values: list[bytes]) -> pa.Array:
    return pa.array(values, DIGEST_TYPE)


@given(ROWS)
def test_the_rule_within_a_batch_is_the_model(rows):
    verdict = dedupe(digests([k for k, _ in rows]), digests([h for _, h in rows]))
    repeats, conflicted = model(rows)
    assert verdict.repeats.tolist() == repeats
    assert verdict.conflicts.tolist() == sorted(p for ps in conflicted.values() for p in ps)
    assert list(verdict.conflicted.items()) == list(conflicted.items())


def stage(batches: list[list[tuple[bytes, bytes]]]):
    """What the normalized stage does with the batches of one input: the rule within each
    batch (`dedupe`), then across them (`KeyTracker`, `judge`) over the rows the batches
    accepted, with the keys they rejected; then the rows a batch dropped as exact repeats of a
    key that turned out to conflict are rejected after all (`Tally.late_conflicts`). Returns
    (accepted, dropped, rejected) as positions in the whole input, and the conflicting keys
    found across batches."""
    tracker, rejected_keys, accepted = KeyTracker(), frozenset(), []
    dropped, rejected, start = [], [], 0
    dropped_keys = {}  # position -> key of the rows dropped within a batch
    for batch in batches:
        verdict = dedupe(digests([k for k, _ in batch]), digests([h for _, h in batch]))
        dropped += [start + p for p in verdict.repeats.tolist()]
        dropped_keys |= {start + p: batch[p][0] for p in verdict.repeats.tolist()}
        rejected += [start + p for p in verdict.conflicts.tolist()]
        out = set(verdict.repeats.tolist()) | set(verdict.conflicts.tolist())
        kept = [p for p in range(len(batch)) if p not in out]
        tracker.add(digests([batch[p][0] for p in kept]))
        rejected_keys |= frozenset(verdict.conflicted)
        accepted += [(start + p, *batch[p]) for p in kept]
        start += len(batch)
    candidates = tracker.candidates(rejected_keys)
    rows = pa.table(
        {
            "key_hash": digests([accepted[p][1] for p in candidates.tolist()]),
            "row_hash": digests([accepted[p][2] for p in candidates.tolist()]),
        }
    )
    verdict = judge(rows, candidates, rejected_keys)
    dropped += [accepted[p][0] for p in verdict.repeats.tolist()]
    rejected += [accepted[p][0] for p in verdict.conflicts.tolist()]
    out = set(verdict.repeats.tolist()) | set(verdict.conflicts.tolist())
    final = [row[0] for p, row in enumerate(accepted) if p not in out]
    across = {k: [accepted[p][0] for p in ps] for k, ps in verdict.conflicted.items()}
    conflicting = rejected_keys | set(verdict.conflicted)
    late = [p for p, key in dropped_keys.items() if key in conflicting]
    dropped = [p for p in dropped if p not in late]
    return final, sorted(dropped), sorted(rejected + late), across


@given(ROWS, st.lists(st.integers(1, 8), min_size=1, max_size=40))
def test_the_rule_across_batches_is_the_model_batch_by_batch_then_across(rows, sizes):
    batches, start = [], 0
    for size in sizes:
        batches.append(rows[start : start + size])
        start += size
    batches.append(rows[start:])
    accepted, dropped, rejected, across = stage(batches)

    # the model, batch by batch, then over the rows the batches accepted, then the repeats a
    # batch dropped of keys found conflicting
    kept, model_dropped, model_rejected, rejected_keys, start = [], [], [], set(), 0
    dropped_keys = {}
    for batch in batches:
        repeats, conflicted = model(batch)
        out = set(repeats) | {p for ps in conflicted.values() for p in ps}
        model_dropped += [start + p for p in repeats]
        dropped_keys |= {start + p: batch[p][0] for p in repeats}
        model_rejected += [start + p for ps in conflicted.values() for p in ps]
        kept += [(start + p, *batch[p]) for p in range(len(batch)) if p not in out]
        rejected_keys |= set(conflicted)
        start += len(batch)
    repeats, conflicted = model([(k, h) for _, k, h in kept], frozenset(rejected_keys))
    model_dropped += [kept[p][0] for p in repeats]
    model_rejected += [kept[p][0] for ps in conflicted.values() for p in ps]
    out = set(repeats) | {p for ps in conflicted.values() for p in ps}
    late = [p for p, key in dropped_keys.items() if key in rejected_keys | set(conflicted)]
    model_dropped = [p for p in model_dropped if p not in late]
    model_rejected += late
    assert accepted == [row[0] for p, row in enumerate(kept) if p not in out]
    assert (dropped, rejected) == (sorted(model_dropped), sorted(model_rejected))
    assert across == {k: [kept[p][0] for p in ps] for k, ps in conflicted.items()}

    # however the input is cut, the outcome is the whole input's: each key's first row kept
    # if it has one value (its exact repeats dropped), every row of a key with several rejected
    whole_repeats, whole_conflicted = model(rows)
    whole_out = set(whole_repeats) | {p for ps in whole_conflicted.values() for p in ps}
    assert accepted == [p for p in range(len(rows)) if p not in whole_out]
    assert dropped == whole_repeats
    assert rejected == sorted(p for ps in whole_conflicted.values() for p in ps)


# --- the same, through the normalized stage: a CSV cut into batches of 1 to 5 rows -------------

STAGE_ROWS = st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from("12")), max_size=14)


@settings(max_examples=40, deadline=None)
@given(STAGE_ROWS, st.integers(1, 5))
def test_the_staged_outcome_does_not_depend_on_the_batches(rows, size):
    """The case found: (A,1),(A,1) in one batch and (A,2) in the next quarantined 2 rows and
    counted 1 repeat, where one batch quarantines all 3. Compared with the model of the whole
    input: which rows are kept, how many repeats are dropped, which rows are quarantined."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        path.write_text("k,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
        config = parse_config(
            {
                "dataset_id": "KEYS",
                "source": {"kind": "file", "path": str(path), "format": "csv"},
                "normalize": {"primary_keys": ["k"]},
                "checks": {"max_rejected_ratio": 1.0},
            },
            "keys.yaml",
        )
        runtime = local_runtime(Path(folder) / "store")
        before = object_store.BATCH_ROWS
        object_store.BATCH_ROWS = (size, size)
        try:
            stages.run_raw(runtime, config, "all")
            stages.run_parse(runtime, config, "all")
            outcome = stages.run_normalize(runtime, config, "all")
            kept = read_parts(runtime.store, outcome.keys)[ROW_COLUMN].to_pylist()
            rejected = outcome.rejected.to_pylist()  # (no table at all without a rejected row)
        finally:
            object_store.BATCH_ROWS = before
    repeats, conflicted = model([(k.encode(), v.encode()) for k, v in rows])
    first_row = 2  # (the header is row 1)
    whole_out = set(repeats) | {p for ps in conflicted.values() for p in ps}
    assert kept == [p + first_row for p in range(len(rows)) if p not in whole_out]
    assert outcome.counts.duplicates == len(repeats)
    assert sorted(r[ROW_COLUMN] for r in rejected) == sorted(
        p + first_row for ps in conflicted.values() for p in ps
    )
    assert {r["reason_code"] for r in rejected} <= {"conflicting_duplicate"}
