"""The state the stages hand each other, typed (stages/state.py), is the JSON the stages wrote
before it was: a partition staged by commit d38538e (tests/fixtures/stores/staged) reads back
and writes again byte for byte, publishes, and normalizes again to the same rows and
quarantine; a meta.json from before parts had a list still publishes. And a stage reads
`current/manifest.json` at most once."""

import datetime as dt
import json
import shutil

import pyarrow as pa
import pytest

from ingest_assets import layout, stages
from ingest_assets.stages.state import (
    Counts,
    RawInfo,
    StagedPart,
    read_latest,
    read_meta,
    write_latest,
    write_meta,
)
from ingest_resources import object_store
from ingest_resources.local_store import LocalObjectStore
from ingest_resources.runtime import local_runtime
from tests.conftest import FIXTURES
from tests.fixtures.stores.make_staged_store import CONFIG, ROWS

STAGED = FIXTURES / "stores" / "staged"
FOLDER = layout.staging("STAGED", "normalized", "all")
PARSED = f"{layout.staging('STAGED', 'parsed', 'all')}/part-00000.parquet"
DAY = dt.date(2026, 11, 22)  # the day it was normalized


@pytest.fixture
def staged(tmp_path, write_dataset, monkeypatch):
    """A copy of the staged store, and its dataset (the source file as it was fetched)."""
    monkeypatch.setattr(object_store, "BATCH_ROWS", (4, 4))  # as it was staged: two batches
    shutil.copytree(STAGED, tmp_path / "store")
    source = tmp_path / "rates.csv"
    source.write_text(ROWS)
    return local_runtime(tmp_path / "store"), write_dataset(CONFIG.format(path=source))


def test_the_files_staged_before_read_typed_and_write_back_byte_for_byte(tmp_path):
    old = LocalObjectStore(STAGED)
    info = read_latest(old, "STAGED", "all")
    assert info is not None and info.bytes == len(ROWS) and info.fingerprint is None
    meta = read_meta(old, FOLDER)
    assert meta is not None and meta.day == DAY
    assert meta.counts == Counts(parsed=7, rejected=3, duplicates=1, normalized=3)
    assert [(p.rows, p.parsed, p.clean) for p in meta.parts] == [(1, 4, False), (2, 3, False)]
    assert meta.checks["rejected_ratio"].passed and not meta.checks["rejected_ratio"].blocking
    assert meta.raw.sha256 == info.sha256 and meta.raw.fingerprint
    footer = old.parquet_schema(PARSED).metadata[b"ingest.raw"]
    assert RawInfo.of_parsed(old.parquet_schema(PARSED)).footer() == footer

    new = LocalObjectStore(tmp_path / "new")
    write_latest(new, "STAGED", "all", info)
    write_meta(new, FOLDER, meta)
    for key in (layout.raw_latest("STAGED", "all"), f"{FOLDER}/meta.json"):
        assert new.get(key) == old.get(key), key


def test_a_partition_staged_before_publishes_and_is_made_again_alike(staged):
    runtime, config = staged
    before = read_meta(runtime.store, FOLDER)
    old_rows = stages.read_normalized(runtime, config, "all")
    old_quarantine = runtime.store.read_parquet(
        f"{layout.quarantine('STAGED', 'all')}/part-00000.parquet"
    )
    assert old_rows.column("series").to_pylist() == ["A", "C", "E"]

    published = stages.run_publish(runtime, config, "all")
    assert (published.rows_added, published.committed) == (3, True)
    inputs = published.manifest.inputs
    assert inputs == before.raw.manifest_inputs(before.part_keys)
    assert list(inputs) == [  # as the untyped stage wrote them
        *("sha256", "bytes", "etag", "last_modified", "source", "fetched_at", "fingerprint"),
        "parts",
    ]

    reused = stages.run_normalize(runtime, config, "all", today=DAY)  # same fingerprint, day
    assert reused.keys == before.part_keys and reused.counts == before.counts

    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")  # other code, another fingerprint: made again
    again = stages.run_normalize(runtime, config, "all", today=DAY)
    assert set(again.keys).isdisjoint(before.part_keys)
    assert again.counts == before.counts
    assert again.table.equals(old_rows)
    assert again.rejected.equals(old_quarantine)
    assert [(r["_row"], r["reason"]) for r in again.rejected.to_pylist()] == [
        (4, "primary key repeated with different values (rows 4, 5)"),
        (5, "primary key repeated with different values (rows 4, 5)"),
        (7, "column 'value': cannot read 'x' as float64"),
    ]
    republished = stages.run_publish(runtime, config, "all")
    assert (republished.committed, republished.rows_repeated) == (False, 3)


def test_a_meta_json_from_before_parts_had_a_list_still_publishes(staged):
    """Before parts had a list (and a day), meta.json stood beside one part-00000.parquet."""
    runtime, config = staged
    store = runtime.store
    keys = read_meta(store, FOLDER).part_keys
    single = f"{FOLDER}/part-00000.parquet"
    store.write_parquet(single, pa.concat_tables([store.read_parquet(k) for k in keys]))
    for key in keys:
        store.delete_prefix(key)
    old = json.loads(store.get(f"{FOLDER}/meta.json"))
    store.put(
        f"{FOLDER}/meta.json",
        json.dumps({k: v for k, v in old.items() if k not in ("day", "parts")}).encode(),
    )
    meta = read_meta(store, FOLDER)
    assert meta.day is None and meta.parts == [StagedPart(single, None, None, None, False)]
    assert meta.to_dict()["parts"] == [{"key": single, "digest": None, "clean": False}]

    result = stages.run_publish(runtime, config, "all")
    assert (result.rows_added, result.manifest.inputs["parts"]) == (3, [single])
    assert stages.read_normalized(runtime, config, "all").num_rows == 3
    outcome = stages.run_normalize(runtime, config, "all", today=DAY)  # no day: made again
    assert not store.exists(single) and outcome.counts == meta.counts


def test_a_stage_reads_the_current_manifest_at_most_once(staged, monkeypatch):
    runtime, config = staged
    current = layout.current("STAGED")
    reads, swapping = [0], [False]
    get_with_etag, put_if_match = LocalObjectStore.get_with_etag, LocalObjectStore.put_if_match

    def counted(self, key):
        reads[0] += key == current and not swapping[0]
        return get_with_etag(self, key)

    def swap(self, key, data, etag):  # (the store's own compare-and-swap is not a read)
        swapping[0] = True
        try:
            return put_if_match(self, key, data, etag)
        finally:
            swapping[0] = False

    monkeypatch.setattr(LocalObjectStore, "get_with_etag", counted)
    monkeypatch.setattr(LocalObjectStore, "put_if_match", swap)

    def reading(call, *args):
        reads[0] = 0
        return call(*args), reads[0]

    # published: the stage's own read (was this input published?), then the event store's
    # under the dataset lock (what its compare-and-swap is made against)
    expected = {"raw": 1, "parsed": 0, "drift": 1, "normalized": 1, "published": 2, "read": 0}
    for _ in ("a new version", "the same input again: nothing new"):
        found = {}
        _, found["raw"] = reading(stages.run_raw, runtime, config, "all")
        (parsed, _), found["parsed"] = reading(stages.run_parse, runtime, config, "all")
        _, found["drift"] = reading(stages.source_drift, runtime, config, parsed)
        _, found["normalized"] = reading(stages.run_normalize, runtime, config, "all")
        _, found["published"] = reading(stages.run_publish, runtime, config, "all")
        _, found["read"] = reading(stages.read_normalized, runtime, config, "all")
        assert found == expected
    assert runtime.store.exists(current)
