"""The normalized stage as one part per parsed batch: an input that grew at its end keeps the
parts of its old batches (made under the same contract, code and day) and normalizes only the
rest, with the same staged, quarantined and published rows as a run from scratch."""

import datetime as dt

import pytest

from ingest_assets import layout, stages
from ingest_assets.stages import normalized as normalized_stage
from ingest_assets.stages.export import published_table
from ingest_assets.stages.parts import batch_digest, part_keys
from ingest_resources import object_store
from ingest_resources.runtime import local_runtime

CONFIG = """
dataset_id: GROWING
source: {{kind: file, path: {path}, format: csv}}
normalize:
  primary_keys: [series, obs_time]
  schema: {{value: float64, obs_time: date}}
transform:
  metadata: {{unit: {unit}}}
checks:
  max_rejected_ratio: 0.5
"""
DAY = dt.date(2026, 11, 22)


@pytest.fixture(autouse=True)
def four_row_batches(monkeypatch):
    monkeypatch.setattr(object_store, "BATCH_ROWS", (4, 4))


def batch_sizes(monkeypatch, module, name: str, position: int) -> list[int]:
    """The row counts of the batches `module.name` is called with (the batch is its argument at
    `position`), from now on."""
    sizes: list[int] = []
    original = getattr(module, name)

    def recorded(*args):
        sizes.append(args[position].num_rows)
        return original(*args)

    monkeypatch.setattr(module, name, recorded)
    return sizes


@pytest.fixture
def counted(monkeypatch):
    """The batches `normalize` is called for (two at a time, on threads: the order they start
    in is not fixed, so tests compare them sorted)."""
    return batch_sizes(monkeypatch, normalized_stage, "normalize", 0)


@pytest.fixture
def growing(tmp_path, write_dataset):
    csv = tmp_path / "obs.csv"

    def make(days: range, extra: str = "", unit: str = "ARS", path=csv):
        path.write_text(
            "series,obs_time,value\n" + "".join(f"A,2024-01-{d:02d},{d}\n" for d in days) + extra
        )
        return write_dataset(CONFIG.format(path=path, unit=unit))

    return make


def run(runtime, config, day=DAY):
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    outcome = stages.run_normalize(runtime, config, "all", today=day)
    return outcome, stages.run_publish(runtime, config, "all")


def staged(runtime) -> dict[str, bytes]:
    folder = layout.staging("GROWING", "normalized", "all")
    return {key: runtime.store.get(key) for key in part_keys(runtime.store, folder)}


def test_a_grown_input_normalizes_only_its_new_batches(runtime, growing, counted, tmp_path):
    first, _ = run(runtime, growing(range(1, 11)))  # batches of 4, 4, 2 rows
    assert sorted(counted) == [2, 4, 4] and len(first.keys) == 3
    before = staged(runtime)
    counted.clear()
    outcome, published = run(runtime, growing(range(1, 14)))  # 4, 4, 4, 1: two batches alike
    assert sorted(counted) == [1, 4]
    after = staged(runtime)
    assert [after[k] == before.get(k) for k in sorted(after)] == [True, True, False, False]
    assert outcome.counts.to_dict() == {
        "parsed": 13,
        "rejected": 0,
        "duplicates": 0,
        "normalized": 13,
    }
    assert (published.rows_added, published.rows_revised) == (3, 0)
    assert outcome.high_water_marks == {"GROWING": "2024-01-13"}
    scratch = local_runtime(tmp_path / "scratch")  # the same input from nothing
    fresh, _ = run(scratch, growing(range(1, 14)))
    assert outcome.table.equals(fresh.table)
    config = growing(range(1, 14))
    grown, whole = (
        published_table(r.store, config).drop_columns(["version"]) for r in (runtime, scratch)
    )
    assert grown.equals(whole)  # the same rows, keys and hashes (the versions differ)


def test_a_shorter_input_drops_the_parts_it_no_longer_has(runtime, growing, counted):
    run(runtime, growing(range(1, 14)))
    outcome, _ = run(runtime, growing(range(1, 6)))
    assert len(staged(runtime)) == 2 and len(outcome.keys) == 2
    assert outcome.counts.normalized == 5 and outcome.table.num_rows == 5


@pytest.mark.parametrize(
    "change",
    ["another day", "another contract", "a moved source"],
)
def test_parts_are_kept_only_under_the_same_contract_and_day(
    runtime, growing, counted, tmp_path, change
):
    run(runtime, growing(range(1, 11)))
    counted.clear()
    if change == "another day":
        outcome, _ = run(runtime, growing(range(1, 11)), day=DAY + dt.timedelta(days=1))
        assert sorted(counted) == [2, 4, 4]  # collection_date differs
        assert set(outcome.table["collection_date"].to_pylist()) == {DAY + dt.timedelta(days=1)}
    elif change == "another contract":
        outcome, _ = run(runtime, growing(range(1, 11), unit="USD"))
        assert sorted(counted) == [2, 4, 4]
        assert set(outcome.table["unit"].to_pylist()) == {"USD"}
    else:  # where the bytes come from does not change the rows made of them
        outcome, _ = run(runtime, growing(range(1, 11), path=tmp_path / "moved.csv"))
        assert counted == []
        assert outcome.counts.normalized == 10


def test_a_batch_with_rejected_rows_is_normalized_again_and_its_rows_stay_in_quarantine(
    runtime, growing, counted
):
    run(runtime, growing(range(1, 4), extra="A,not a day,1\n"))  # one batch of 4, one rejected
    counted.clear()
    outcome, _ = run(runtime, growing(range(1, 4), extra="A,not a day,1\nA,2024-02-01,5\n"))
    assert sorted(counted) == [1, 4]  # the first batch had a rejection: not kept
    assert outcome.counts.rejected == 1 and outcome.rejected.num_rows == 1
    assert "cannot read 'not a day'" in outcome.rejected["reason"][0].as_py()


def test_a_key_repeated_across_batches_leaves_the_parts_it_touched_to_be_made_again(
    runtime, growing, counted, tmp_path
):
    repeat = "A,2024-01-02,2\n"  # an exact repeat of a row of the first batch, in the second
    outcome, _ = run(runtime, growing(range(1, 5), extra=repeat))
    assert outcome.counts.duplicates == 1 and outcome.counts.normalized == 4
    assert outcome.table.num_rows == 4
    counted.clear()  # the same rows from elsewhere: the rewritten second part is made again
    outcome, _ = run(runtime, growing(range(1, 5), extra=repeat, path=tmp_path / "copy.csv"))
    assert counted == [1]
    assert outcome.counts.duplicates == 1 and outcome.table.num_rows == 4
    counted.clear()
    outcome, published = run(runtime, growing(range(1, 5), extra=repeat + "A,2024-03-01,9\n"))
    assert counted == [2]  # the first part kept
    assert outcome.counts.duplicates == 1 and outcome.table.num_rows == 5
    assert (published.rows_added, published.rows_revised) == (1, 0)


def test_the_digest_of_a_batch_is_its_rows_not_its_metadata():
    import pyarrow as pa

    rows = pa.table({"a": [1, 2], "b": ["x", None]})
    tagged = rows.replace_schema_metadata({b"ingest.raw": b"{...}"})
    assert batch_digest(rows) == batch_digest(tagged)
    assert batch_digest(rows) != batch_digest(rows.slice(0, 1))
    assert batch_digest(rows, b"cells A") != batch_digest(rows, b"cells B")


def test_a_reader_of_one_runs_parts_never_gets_another_runs_rows(runtime, growing):
    """Parts are named after what they are made of and never rewritten in place: a publish that
    listed one run's parts reads them whole, or finds one gone (an error), never a mix."""
    first, _ = run(runtime, growing(range(1, 9)))  # two parts of 4 rows
    listed = list(first.keys)
    head = runtime.store.read_parquet(listed[0])  # a reader part-way through the first run
    top = "A,2023-12-31,0\n" + "".join(f"A,2024-01-{d:02d},{d}\n" for d in range(1, 9))
    config = growing(range(0), extra=top)  # a row at the top: every batch differs
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    second = stages.run_normalize(runtime, config, "all", today=DAY)
    assert not set(second.keys) & set(listed)  # other rows, other names
    for key in listed:
        with pytest.raises(KeyError):  # gone once the second run's list was written
            runtime.store.read_parquet(key)
    assert head.num_rows == 4
    assert staged(runtime).keys() == set(second.keys)


@pytest.fixture
def diffed(monkeypatch):
    """The batches of staged rows publish compares with the index."""
    import importlib

    # (the module: `ingest_assets.eventstore.commit` is also the name of its `commit` function)
    publish = importlib.import_module("ingest_assets.eventstore.commit")
    return batch_sizes(monkeypatch, publish, "diff", 1)


def test_publish_leaves_out_the_parts_the_current_version_was_published_from(
    runtime, growing, diffed
):
    first, published = run(runtime, growing(range(1, 11)))
    assert published.manifest.inputs["parts"] == first.keys
    diffed.clear()
    outcome, published = run(runtime, growing(range(1, 14)))
    assert outcome.keys[:2] == first.keys[:2]  # kept, and `current` came from them
    assert sum(diffed) == 5  # the two new parts only
    assert (published.rows_added, published.rows_revised, published.rows_repeated) == (3, 0, 10)
    assert published.manifest.inputs["parts"] == outcome.keys


def test_a_part_of_an_older_version_is_compared_again(runtime, growing, diffed):
    """Another version published in between may have revised its keys: only the parts the
    current version lists are left out, so the grown input revises day 2 back, as it would
    without any part kept."""
    run(runtime, growing(range(1, 11)))
    revised = "".join(f"A,2024-01-{d:02d},{d if d != 2 else 20}\n" for d in range(1, 11))
    _, between = run(runtime, growing(range(0), extra=revised))  # day 2 revised: a new first part
    assert between.rows_revised == 1
    diffed.clear()
    _, published = run(runtime, growing(range(1, 14)))
    assert (published.rows_added, published.rows_revised) == (3, 1)
    assert sum(diffed) == 4 + 5  # the first part (not in `current`) and the two new ones
    values = published_table(runtime.store, growing(range(1, 14)))["value"].to_pylist()
    assert values == [float(d) for d in range(1, 14)]
