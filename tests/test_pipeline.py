"""The stages end to end on the local store: revisions, quarantine, exactly-once, healing."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from ingest_assets import eventstore as publish
from ingest_assets import layout, stages
from ingest_assets.eventstore import events, read_current, version_chain
from ingest_assets.rows.hashing import DIGEST_TYPE, hex_columns
from ingest_assets.stages.export import published_table
from ingest_resources import object_store

CSV_CONFIG = """
dataset_id: RATES
frequency: D
source:
  kind: file
  path: {path}
  format: csv
normalize:
  primary_keys: [series, obs_time]
  timezone: America/Argentina/Cordoba
  schema: {{value: float64}}
transform:
  metadata: {{unit: ARS/USD}}
checks:
  max_rejected_ratio: {ratio}
"""


@pytest.fixture
def rates(tmp_path, write_dataset):
    csv = tmp_path / "rates.csv"

    def make(rows: str, ratio: float = 0.0):
        csv.write_text("series,obs_time,value\n" + rows)
        return write_dataset(CSV_CONFIG.format(path=csv, ratio=ratio))

    return make


def normalized(runtime, config, partition="all"):
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    return stages.run_normalize(runtime, config, partition)


def run_all(runtime, config, partition="all"):
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    stages.run_normalize(runtime, config, partition)
    return stages.run_publish(runtime, config, partition)


def test_first_publish_writes_the_layout(runtime, rates):
    config = rates("A,2024-01-02,10.5\nA,2024-02-01,11\nB,2024-01-02,3\n")
    result = run_all(runtime, config)
    assert (result.rows_added, result.rows_revised, result.committed) == (3, 0, True)
    store, v = runtime.store, result.version
    keys = store.list(layout.dataset("RATES"))
    assert f"datasets/RATES/events/{v}/data/year=2024/month=01/part-00000.parquet" in keys
    assert f"datasets/RATES/events/{v}/data/year=2024/month=02/part-00000.parquet" in keys
    assert any(k.startswith("datasets/RATES/raw/all/") and k.endswith(".csv") for k in keys)
    assert "datasets/RATES/index/keys.parquet" in keys
    assert "datasets/RATES/projections/windows/RATES/year=2024/month=01/data.parquet" in keys
    manifest = json.loads(store.get(layout.current("RATES")))
    assert manifest == json.loads(store.get(layout.manifest("RATES", v)))
    assert manifest["parent_version"] is None
    assert manifest["counts"]["parsed"] == 3 and manifest["counts"]["added"] == 3
    assert manifest["inputs"]["sha256"] and manifest["schema_hash"]
    # naive local midnight in Cordoba (UTC-3) is 03:00 UTC
    assert manifest["high_water_marks"] == {"RATES": "2024-02-01T03:00:00+00:00"}
    table = published_table(store, config)
    assert table.num_rows == 3
    row = table.to_pylist()[0]
    assert row["series"] == "A" and row["value"] == 10.5 and row["unit"] == "ARS/USD"
    assert row["frequency"] == "D" and row["obs_time"].isoformat() == "2024-01-02T03:00:00+00:00"


def test_rerun_is_a_no_op_and_leaves_bytes_identical(runtime, rates):
    config = rates("A,2024-01-02,10.5\nB,2024-01-02,3\n")
    first = run_all(runtime, config)
    before = {
        k: runtime.store.get(k)
        for k in runtime.store.list("datasets/RATES")
        if "/staging/" not in k and "/raw/" not in k
    }
    second = run_all(runtime, config)
    third = run_all(runtime, config, partition="2024-01-03")  # another partition, same data
    assert (second.rows_added, second.rows_revised, second.rows_repeated, second.committed) == (
        0,
        0,
        2,
        False,
    )
    assert third.committed is False and second.version == third.version == first.version
    after = {k: runtime.store.get(k) for k in before}
    assert after == before


def test_revision_publishes_one_update_and_projection_shows_it(runtime, rates):
    run_all(runtime, rates("A,2024-01-02,10.5\nA,2024-01-03,10.7\n"))
    config = rates("A,2024-01-02,10.5\nA,2024-01-03,10.9\nA,2024-01-04,11.0\n")
    result = run_all(runtime, config)
    assert (result.rows_added, result.rows_revised, result.rows_repeated) == (1, 1, 1)
    events = pq.read_table(runtime.store.root / result.manifest.file_keys[0]).to_pylist()
    assert sorted((e["op"], e["value"]) for e in events) == [("insert", 11.0), ("update", 10.9)]
    projection = runtime.store.read_parquet(
        layout.projection("RATES", "RATES", 2024, 1)
    ).to_pylist()
    assert [r["value"] for r in projection] == [10.5, 10.9, 11.0]
    assert published_table(runtime.store, config).column("value").to_pylist() == [10.5, 10.9, 11.0]
    chain = version_chain(runtime.store, "RATES", read_current(runtime.store, "RATES")[0])
    assert [m.counts["revised"] for m in chain] == [0, 1]
    # the old value is still readable as of the first version
    old = published_table(runtime.store, config, chain[0].version)
    assert old.column("value").to_pylist() == [10.5, 10.7]


def test_revisions_ignore_keeps_the_first_value(runtime, rates, tmp_path, write_dataset):
    run_all(runtime, rates("A,2024-01-02,10.5\n"))
    text = (
        CSV_CONFIG.format(path=tmp_path / "rates.csv", ratio=0)
        + "incremental: {revisions: ignore}\n"
    )
    (tmp_path / "rates.csv").write_text("series,obs_time,value\nA,2024-01-02,99\n")
    result = run_all(runtime, write_dataset(text))
    assert (result.rows_added, result.rows_revised, result.committed) == (0, 0, False)


def test_rejected_rows_go_to_quarantine_and_block_publish(runtime, rates):
    config = rates("A,2024-01-02,10.5\nA,not a date,1\nA,2024-01-04,abc\n,2024-01-05,1\n")
    outcome = normalized(runtime, config)
    ratio = next(r for r in outcome.checks if r.name == "rejected_ratio")
    assert not ratio.passed and ratio.check.blocking
    assert ratio.detail.startswith("3 of 4 rows rejected (75.00%); max_rejected_ratio 0.0")
    quarantine = runtime.store.read_parquet(outcome.quarantine_key).to_pylist()
    assert [(r["_row"], r["source_ref"], r["reason_code"], r["reason"]) for r in quarantine] == [
        (
            3,
            "row 3",
            "type_error",
            "column 'obs_time': cannot read 'not a date' as timestamp (set normalize.formats.obs_time)",
        ),
        (4, "row 4", "type_error", "column 'value': cannot read 'abc' as float64"),
        (5, "row 5", "missing_key", "primary key 'series' is empty"),
    ]
    assert quarantine[0]["obs_time"] == "not a date"  # the source text is kept
    with pytest.raises(stages.ChecksFailedError) as caught:
        stages.run_publish(runtime, config, "all")
    message = str(caught.value)
    assert "RATES" in message and "rejected_ratio: 3 of 4 rows rejected" in message
    assert "quarantine/all/" in message
    assert read_current(runtime.store, "RATES") == (None, None)


def test_rejects_within_the_ratio_publish_the_good_rows(runtime, rates):
    config = rates("A,2024-01-02,10.5\nA,2024-01-03,11\nA,2024-01-04,x\n", ratio=0.5)
    result = run_all(runtime, config)
    assert result.rows_added == 2
    assert result.manifest.counts["rejected"] == 1
    assert result.manifest.checks["rejected_ratio"]["passed"] is True


def test_conflicting_duplicate_keys_are_quarantined_exact_repeats_counted(runtime, rates):
    config = rates(
        "A,2024-01-02,1\nA,2024-01-02,1\nB,2024-01-02,1\nB,2024-01-02,2\nC,2024-01-02,5\n",
        ratio=0.5,
    )
    outcome = normalized(runtime, config)
    table, rejected, counts = outcome.table, outcome.rejected, outcome.counts
    assert table.column("series").to_pylist() == ["A", "C"]
    assert counts.duplicates == 1
    assert (
        rejected.column("reason").to_pylist()
        == ["primary key repeated with different values (rows 4, 5)"] * 2
    )


def test_keys_repeated_across_batches_are_judged_like_within_one(runtime, rates, monkeypatch):
    """Batches of 2 rows: a repeat and a conflict that span batches are still found."""
    monkeypatch.setattr(object_store, "BATCH_ROWS", (2, 2))
    config = rates(
        "A,2024-01-02,1\nB,2024-01-02,1\nC,2024-01-02,5\nA,2024-01-02,1\nB,2024-01-02,2\n",
        ratio=0.5,
    )
    outcome = normalized(runtime, config)
    assert outcome.table.column("series").to_pylist() == ["A", "C"]
    assert outcome.counts.to_dict() == {
        "parsed": 5,
        "rejected": 2,
        "duplicates": 1,
        "normalized": 2,
    }
    rejected = outcome.rejected.to_pylist()
    assert [(r["_row"], r["reason_code"]) for r in rejected] == [
        (3, "conflicting_duplicate"),
        (6, "conflicting_duplicate"),
    ]
    assert rejected[0]["reason"] == "primary key repeated with different values (rows 3, 6)"
    assert rejected[0]["series"] == "B" and rejected[1]["value"] == "2"
    result = stages.run_publish(runtime, config, "all")
    assert (result.rows_added, result.committed) == (2, True)


def test_a_key_conflicting_within_a_batch_is_rejected_in_the_others(runtime, rates, monkeypatch):
    """Rows 2-3 conflict inside the first batch; row 4 (same key, next batch) goes with them."""
    monkeypatch.setattr(object_store, "BATCH_ROWS", (2, 2))
    config = rates("A,2024-01-02,1\nA,2024-01-02,2\nA,2024-01-02,3\nB,2024-01-02,4\n", ratio=1)
    outcome = normalized(runtime, config)
    assert outcome.table.column("series").to_pylist() == ["B"]
    assert sorted(r["_row"] for r in outcome.rejected.to_pylist()) == [2, 3, 4]
    assert {r["reason_code"] for r in outcome.rejected.to_pylist()} == {"conflicting_duplicate"}


def test_the_same_input_is_not_parsed_or_normalized_again(runtime, rates, tmp_path):
    config = rates("A,2024-01-02,1\nB,2024-01-02,2\n")
    first = run_all(runtime, config)
    meta = stages.normalized_meta(runtime.store, config, "all")
    keys = [f"{layout.staging('RATES', 'parsed', 'all')}/part-00000.parquet"]
    staged = [runtime.store.root / key for key in keys + [p.key for p in meta.parts]]
    written = [path.stat().st_mtime_ns for path in staged]
    again = run_all(runtime, config)
    assert [path.stat().st_mtime_ns for path in staged] == written  # reused, not rewritten
    assert (again.committed, again.version, again.rows_repeated) == (False, first.version, 2)
    # another contract (here a description) is another input: parsed and normalized again
    changed = rates("A,2024-01-02,1\nB,2024-01-02,2\n")
    changed = changed.model_copy(update={"description": "rates, described"})
    stages.run_raw(runtime, changed, "all")
    stages.run_parse(runtime, changed, "all")
    assert staged[0].stat().st_mtime_ns != written[0]
    stages.run_normalize(runtime, changed, "all")
    third = stages.run_publish(runtime, changed, "all")
    assert (third.committed, third.rows_added, third.rows_repeated) == (False, 0, 2)


def test_index_heals_after_a_crash_between_swap_and_index_write(runtime, rates):
    run_all(runtime, rates("A,2024-01-02,1\n"))
    stale_index = runtime.store.get(layout.index("RATES"))
    stale_projections = runtime.store.get(layout.projections_state("RATES"))
    second = run_all(runtime, rates("A,2024-01-02,1\nA,2024-01-03,2\n"))
    # simulate a writer that died right after moving `current`: derived state is one version behind
    runtime.store.put(layout.index("RATES"), stale_index)
    runtime.store.put(layout.projections_state("RATES"), stale_projections)
    config = rates("A,2024-01-02,1\nA,2024-01-03,2\nA,2024-01-04,3\n")
    third = run_all(runtime, config)
    assert (third.rows_added, third.rows_revised, third.parent) == (1, 0, second.version)
    assert published_table(runtime.store, config).column("value").to_pylist() == [1.0, 2.0, 3.0]
    index = runtime.store.read_parquet(layout.index("RATES"))
    assert (
        index.num_rows == 3 and index.schema.metadata[b"ingest.version"] == third.version.encode()
    )


def test_a_local_midnight_skipped_by_dst_moves_forward(runtime, tmp_path, write_dataset):
    """Buenos Aires started DST at midnight on 2007-12-30: that wall time never existed."""
    csv = tmp_path / "dst.csv"
    csv.write_text("day,value\n29/12/2007,1\n30/12/2007,2\n31/12/2007,3\n")
    config = write_dataset(
        f"""
        dataset_id: DST
        source: {{kind: file, path: {csv}, format: csv}}
        normalize:
          primary_keys: [day]
          time_column: day
          timezone: America/Argentina/Buenos_Aires
          formats: {{day: "%d/%m/%Y"}}
        """
    )
    result = run_all(runtime, config)
    assert result.rows_added == 3 and result.manifest.counts["rejected"] == 0
    days = [d.isoformat() for d in published_table(runtime.store, config).column("day").to_pylist()]
    # UTC-3 before, UTC-2 from the first real instant (01:00 local) of 2007-12-30
    assert days == [
        "2007-12-29T03:00:00+00:00",
        "2007-12-30T03:00:00+00:00",
        "2007-12-31T02:00:00+00:00",
    ]


def _window_rows(store, month: int) -> list[tuple]:
    window = store.read_parquet(layout.projection("RATES", "RATES", 2024, month))
    columns = ["series", "obs_time", "value", "op", "key_hash"]
    return list(zip(*(window[c].to_pylist() for c in columns), strict=True))


def test_a_new_window_is_its_event_file_and_a_later_version_merges_into_it(runtime, rates):
    """A month's event file is sorted as its projection window is (time, then key_hash; the
    footer says so): a new window is that file, as it is. A later version's rows merge into
    the window (latest row per key, with its op) and a month it opens is its file again."""
    first = run_all(
        runtime, rates("B,2024-01-03,2\nA,2024-01-03,1\nA,2024-01-02,0\nA,2024-02-01,5\n")
    )
    store = runtime.store
    for file in first.manifest.file_keys:
        window = layout.projection("RATES", "RATES", *layout.event_month(file))
        assert store.get(window) == store.get(file)
        footer = store.parquet_metadata(file)
        names = footer.schema.to_arrow_schema().names
        sorted_by = [names[c.column_index] for c in footer.row_group(0).sorting_columns]
        assert sorted_by == ["obs_time", "key_hash"]
    january = _window_rows(store, 1)
    assert [(s, v, op) for s, _, v, op, _ in january][0] == ("A", 0.0, "insert")  # Jan 2nd
    assert {(s, v, op) for s, _, v, op, _ in january[1:]} == {
        ("A", 1.0, "insert"),
        ("B", 2.0, "insert"),
    }
    assert [(r[1], r[4]) for r in january] == sorted((r[1], r[4]) for r in january)

    second = run_all(
        runtime,
        rates("B,2024-01-03,2\nA,2024-01-03,1.5\nA,2024-01-02,0\nA,2024-02-01,5\nA,2024-03-01,7\n"),
    )
    assert (second.rows_added, second.rows_revised) == (1, 1)
    january = _window_rows(store, 1)
    assert {(s, v, op) for s, _, v, op, _ in january} == {
        ("A", 0.0, "insert"),
        ("A", 1.5, "update"),
        ("B", 2.0, "insert"),
    }
    assert [(r[1], r[4]) for r in january] == sorted((r[1], r[4]) for r in january)
    (march_file,) = [f for f in second.manifest.file_keys if "month=03" in f]
    assert store.get(layout.projection("RATES", "RATES", 2024, 3)) == store.get(march_file)


def test_months_too_large_to_sort_take_the_general_projection_path(tmp_path, rates, monkeypatch):
    """An event month past one row group is written as its rows came (not sorted, no sorting
    columns): its window is then read, sorted and written, and holds the same rows."""
    from ingest_resources.runtime import local_runtime

    config = rates("".join(f"{s},2024-01-{d:02d},{d}\n" for d in range(28, 0, -1) for s in "BA"))
    windows = []
    for group_bytes in (events.EventWriter.GROUP_BYTES, 1):
        monkeypatch.setattr(events.EventWriter, "GROUP_BYTES", group_bytes)
        runtime = local_runtime(tmp_path / f"store-{group_bytes}")
        (file,) = run_all(runtime, config).manifest.file_keys
        sorted_file = group_bytes > 1
        assert (
            bool(runtime.store.parquet_metadata(file).row_group(0).sorting_columns) is sorted_file
        )
        window = layout.projection("RATES", "RATES", 2024, 1)
        assert (runtime.store.get(window) == runtime.store.get(file)) is sorted_file
        windows.append(runtime.store.read_parquet(window).drop_columns(["version"]))
    assert windows[0].equals(windows[1])
    assert windows[0]["obs_time"].to_pylist() == sorted(windows[0]["obs_time"].to_pylist())


@pytest.mark.parametrize("held", ["each batch", "some", "all"])
def test_one_event_file_a_month_from_rows_spilled_in_any_order(runtime, rates, monkeypatch, held):
    """Batches of 4 rows (2 months each, months coming back after others), one row group per
    record batch: each month is one event file with its rows in the order they came, whether
    every batch was spilled as it came (a spill file each, more than a thread keeps open),
    some were spilled and the last ones still held, or all were held (encoded from memory);
    every row is published once, in its file and projection."""
    monkeypatch.setattr(object_store, "BATCH_ROWS", (4, 4))
    monkeypatch.setattr(events.EventWriter, "GROUP_BYTES", 1)
    spills, held_at_close = [], []
    spill, close = events.EventWriter._spill_held, events.EventWriter.close
    monkeypatch.setattr(
        events.EventWriter, "_spill_held", lambda self: spills.append(1) or spill(self)
    )
    monkeypatch.setattr(
        events.EventWriter,
        "close",
        lambda self: held_at_close.append(self.held_bytes) or close(self),
    )
    if held == "each batch":  # 9 spills, read by threads that keep 2 of them open at most
        monkeypatch.setattr(events.EventWriter, "HOLD_BYTES", 1)
        monkeypatch.setattr(events.EventWriter, "READERS", 2)
    if held == "some":  # a spill every few batches; the last batches are held at the end
        monkeypatch.setattr(events.EventWriter, "HOLD_BYTES", 600)
    pairs = [(1, 2), (3, 4), (1, 5), (6, 2), (7, 1), (8, 3), (9, 10), (11, 12), (12, 1)]
    days = [f"2024-{m:02d}-{n + 1:02d}" for n, pair in enumerate(pairs) for m in pair]
    config = rates("".join(f"{s},{d},{i}\n" for i, d in enumerate(days) for s in "AB"))
    result = run_all(runtime, config)
    assert (result.rows_added, result.committed) == (36, True)
    files = result.manifest.file_keys
    assert [int(f.split("month=")[1][:2]) for f in files] == list(range(1, 13))
    assert all(f.endswith("part-00000.parquet") for f in files)
    for month, file in enumerate(files, start=1):
        event = runtime.store.read_parquet(file)
        assert {t.month for t in event.column("obs_time").to_pylist()} == {month}
        expected = [(s, float(i)) for i, d in enumerate(days) if int(d[5:7]) == month for s in "AB"]
        pairs_seen = zip(event["series"].to_pylist(), event["value"].to_pylist(), strict=True)
        assert list(pairs_seen) == expected
    january = pq.ParquetFile(runtime.store.root / files[0]).metadata
    assert january.num_row_groups == 4  # the 4 batches that had January rows
    published = published_table(runtime.store, config)
    assert sorted((r["series"], r["value"]) for r in published.to_pylist()) == sorted(
        (s, float(i)) for i in range(len(days)) for s in "AB"
    )
    for month in range(1, 13):
        window = runtime.store.read_parquet(layout.projection("RATES", "RATES", 2024, month))
        assert window.num_rows == 2 * sum(pair.count(month) for pair in pairs)
    scratch = [p.name for p in runtime.store.root.rglob(".event*")]
    assert scratch == []  # spills and unstored event files are gone
    expected = {"each batch": (9, False), "some": (len(spills), True), "all": (0, True)}[held]
    assert (len(spills), held_at_close[0] > 0) == expected
    assert held != "some" or 0 < len(spills) < 9


def test_a_failed_event_write_leaves_no_version_and_no_scratch(runtime, rates, monkeypatch):
    config = rates("A,2024-01-02,1\nA,2024-02-02,2\nA,2024-03-02,3\n")
    stored = []

    def store_then_fail(self, item):
        if stored:
            raise OSError("disk full")
        stored.append(item)
        original(self, item)

    original = events.EventWriter._store_file
    monkeypatch.setattr(events.EventWriter, "_store_file", store_then_fail)
    with pytest.raises(OSError, match="disk full"):
        run_all(runtime, config)
    assert read_current(runtime.store, "RATES")[0] is None
    assert not [k for k in runtime.store.list("datasets/RATES") if "/events/" in k]
    assert [p.name for p in runtime.store.root.rglob(".event*")] == []


def _as_written_before(store, prefix: str) -> None:
    """Rewrite every Parquet file under `prefix` with its hashes as hex text, as event files and
    projection windows were written before hashes were stored as bytes."""
    for key in store.list(prefix):
        if key.endswith(".parquet"):
            store.write_parquet(key, hex_columns(store.read_parquet(key)))


def _manifests_as_written_before(store, dataset_id: str) -> None:
    """Rewrite the manifests as stores of hex hashes have them: format 1 (no `format_version`,
    `files` a list of keys, no sizes or checksums recorded; no `commits/` folder). A format 2
    manifest records its event files' sizes and sha256, which the hex files above no longer
    have: such a store never existed, and a chain like it is refused as broken."""
    keys = [k for k in store.list(layout.events(dataset_id)) if k.endswith("/manifest.json")]
    for key in [*keys, layout.current(dataset_id)]:
        data = json.loads(store.get(key))
        data["files"] = [file["key"] for file in data["files"]]
        for name in ("format_version", "latest_partition"):
            data.pop(name)
        store.put(key, json.dumps(data, indent=2, sort_keys=True).encode())
    store.delete_prefix(layout.commits(dataset_id))


def test_a_store_published_with_hex_hashes_is_continued(runtime, rates):
    """Event files and windows written before hashes were stored as bytes hold them as hex
    text: the next run compares against them exactly, adds no type change, stores its own
    events as bytes, merges the old windows into bytes, and exports hex as always."""
    config = rates("A,2024-01-02,10.5\nA,2024-01-03,11\nB,2024-01-02,3\n")
    first = run_all(runtime, config)
    assert first.manifest.schema["key_hash"] == "string"  # (as people see it)
    dataset = layout.dataset("RATES")
    _as_written_before(runtime.store, f"{dataset}/events")
    _as_written_before(runtime.store, f"{dataset}/projections")
    _manifests_as_written_before(runtime.store, "RATES")
    runtime.store.delete_prefix(layout.index("RATES"))  # rebuilt from the hex events
    window_key = layout.projection("RATES", "RATES", 2024, 1)
    assert runtime.store.read_parquet(window_key).schema.field("key_hash").type == pa.string()

    config = rates("A,2024-01-02,10.5\nA,2024-01-03,12\nB,2024-01-02,3\nB,2024-01-03,4\n")
    second = run_all(runtime, config)
    assert (second.rows_added, second.rows_revised, second.rows_repeated) == (1, 1, 2)
    assert second.manifest.schema == first.manifest.schema
    for file in second.manifest.file_keys:
        event = runtime.store.read_parquet(file)
        assert event.schema.field("key_hash").type == DIGEST_TYPE == event["row_hash"].type
    window = runtime.store.read_parquet(window_key)
    assert window.schema.field("key_hash").type == DIGEST_TYPE
    assert sorted(zip(window["series"].to_pylist(), window["value"].to_pylist(), strict=True)) == [
        ("A", 10.5),
        ("A", 12.0),
        ("B", 3.0),
        ("B", 4.0),
    ]
    assert len(set(window["key_hash"].to_pylist())) == 4
    exported = published_table(runtime.store, config)
    assert exported["key_hash"].type == pa.string()
    assert all(len(k) == 40 for k in exported["key_hash"].to_pylist())
    assert sorted(exported["value"].to_pylist()) == [3.0, 4.0, 10.5, 12.0]
    assert run_all(runtime, config).committed is False  # nothing new: exactly once


def test_event_files_and_parts_are_made_durable_before_anything_points_to_them(
    runtime, rates, monkeypatch
):
    """Month files and normalized parts are stored without an fsync each, then fsynced
    together (`sync`): the event's before its manifest exists, the parts before meta.json."""
    config = rates("A,2024-01-02,1\nA,2024-02-02,2\nB,2024-03-02,3\n")
    synced: list[tuple[list[str], list[str]]] = []  # (keys, what existed under the dataset)
    original = type(runtime.store).sync

    def recording(store, keys):
        keys = list(keys)
        synced.append((keys, store.list(layout.dataset("RATES"))))
        original(store, keys)

    monkeypatch.setattr(type(runtime.store), "sync", recording)
    result = run_all(runtime, config)
    parts, existing = next((k, e) for k, e in synced if k and "/staging/normalized/" in k[0])
    assert not [key for key in existing if key.endswith("meta.json") and "normalized" in key]
    assert all(key in existing for key in parts)
    files, existing = next((k, e) for k, e in synced if k and "/events/" in k[0])
    assert files == result.manifest.file_keys and len(files) == 3
    assert layout.manifest("RATES", result.version) not in existing


def test_raw_hashes_a_file_first_only_when_it_has_the_size_fetched_last(
    runtime, rates, monkeypatch
):
    """A file of another size is new bytes: copied and hashed in one pass. One of the size
    fetched last is hashed first, and copied only if its bytes are not stored yet."""
    from ingest_assets.sources.fetch import Fetched

    hashed = []
    original = Fetched.sha256_and_size
    monkeypatch.setattr(Fetched, "sha256_and_size", lambda f: hashed.append(1) or original(f))
    config = rates("A,2024-01-02,1\n")
    first = stages.run_raw(runtime, config, "all")
    assert hashed == []  # nothing fetched before
    again = stages.run_raw(runtime, config, "all")
    assert hashed == [1] and again.key == first.key
    config = rates("A,2024-01-02,2\n")  # the same size, other bytes
    changed = stages.run_raw(runtime, config, "all")
    assert hashed == [1, 1] and changed.key != first.key
    assert runtime.store.get(changed.key).endswith(b"A,2024-01-02,2\n")
    config = rates("A,2024-01-02,2\nA,2024-01-03,3\n")  # grown
    grown = stages.run_raw(runtime, config, "all")
    assert hashed == [1, 1] and grown.bytes == len(runtime.store.get(grown.key))


def test_a_changed_primary_key_is_refused_before_anything_is_published(
    runtime, write_dataset, tmp_path
):
    """New keys would give every row a new key_hash: published again beside its old self. The
    run is refused by name, and the published versions stay as they were."""
    csv = tmp_path / "catalog.csv"
    csv.write_text("code,name,rate\n1,peso,10\n2,dollar,1\n")
    yaml = "dataset_id: CATALOG\nsource: {{kind: file, path: {path}, format: csv}}\nnormalize: {{primary_keys: [{keys}]}}\n"
    first = run_all(runtime, write_dataset(yaml.format(path=csv, keys="code")))
    assert first.rows_added == 2
    with pytest.raises(
        publish.IncompatibleSchema, match=r"primary key is now \['name'\].*keyed by \['code'\]"
    ):
        run_all(runtime, write_dataset(yaml.format(path=csv, keys="name")))
    current, _ = read_current(runtime.store, "CATALOG")
    assert current.version == first.version and current.rows_total == 2
    assert run_all(runtime, write_dataset(yaml.format(path=csv, keys="code"))).committed is False


def test_without_the_object_store_no_projections_are_written(runtime, rates, write_dataset):
    """publish.object_store: false (the warehouse is where the data is read): the events and
    the index are still written (the ledger exactly-once publishing and the warehouse load
    from), the projections are not."""
    config = rates("A,2024-01-02,1\nA,2024-02-02,2\n")
    text = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    text["publish"] = {"object_store": False, "postgres": {"table": "rates"}}
    config = write_dataset(yaml.safe_dump(text))
    first = run_all(runtime, config)
    assert first.rows_added == 2 and len(first.manifest.file_keys) == 2
    assert runtime.store.list(layout.projections("RATES")) == []
    assert runtime.store.exists(layout.index("RATES"))
    assert sorted(published_table(runtime.store, config)["value"].to_pylist()) == [1.0, 2.0]
    assert run_all(runtime, config).committed is False


def test_a_failed_spill_fails_the_publish_cleanly(runtime, rates, monkeypatch):
    """A spill that fails (a full disk) fails the publish, which leaves no version and no
    scratch file."""
    monkeypatch.setattr(events.EventWriter, "HOLD_BYTES", 1)

    def full_disk(self):
        raise OSError("no space left on device")

    monkeypatch.setattr(events.EventWriter, "_spill_held", full_disk)
    config = rates("A,2024-01-02,1\nA,2024-02-02,2\n")
    with pytest.raises(OSError, match="no space left"):
        run_all(runtime, config)
    assert read_current(runtime.store, "RATES")[0] is None
    assert not [k for k in runtime.store.list("datasets/RATES") if "/events/" in k]
    assert [p.name for p in runtime.store.root.rglob(".event*")] == []
