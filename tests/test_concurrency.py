"""Two writers on one dataset: one wins, the other aborts cleanly; no row is published twice."""

import datetime as dt
import multiprocessing

import pyarrow.compute as pc
import pytest

from ingest_assets import eventstore as publish
from ingest_assets import layout, stages
from ingest_assets.contract import load_config_file
from ingest_assets.eventstore import read_current, version_chain
from ingest_assets.eventstore.events import read_event_rows
from ingest_assets.stages.export import published_table
from ingest_resources.locks import LocalLocks, LockBusy
from ingest_resources.runtime import local_runtime

CONFIG = """
dataset_id: RACE
source: {{kind: file, path: {path}, format: csv}}
normalize: {{primary_keys: [id], schema: {{value: float64}}}}
"""


@pytest.fixture
def dataset(tmp_path):
    csv = tmp_path / "race.csv"
    csv.write_text("id,value\n" + "".join(f"{i},{i * 1.5}\n" for i in range(200)))
    path = tmp_path / "race.yaml"
    path.write_text(CONFIG.format(path=csv))
    return path


def _stage(runtime, config, partition):
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    stages.run_normalize(runtime, config, partition)


def _all_event_keys(store, dataset_id):
    current, _ = read_current(store, dataset_id)
    keys = []
    for manifest in version_chain(store, dataset_id, current):
        rows = read_event_rows(store, manifest.file_keys, ["key_hash"])
        keys += rows.column("key_hash").to_pylist() if rows is not None else []
    return keys


def test_lost_cas_race_aborts_and_changes_nothing(runtime, dataset):
    """Two writers that read the same parent (e.g. a lock lease expired): the second swap fails."""
    config = load_config_file(dataset)
    _stage(runtime, config, "all")
    normalized = stages.read_normalized(runtime, config, "all")
    now = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    first = publish.prepare(runtime.store, config, "all", normalized, {}, {}, now)
    second = publish.prepare(
        runtime.store, config, "all", normalized, {}, {}, now + dt.timedelta(seconds=1)
    )
    assert first.parent_etag == second.parent_etag is None
    publish.commit(runtime.store, first)
    pointer_before = runtime.store.get(layout.current("RACE"))
    with pytest.raises(publish.PublishConflict, match="lost the race"):
        publish.commit(runtime.store, second)
    assert runtime.store.get(layout.current("RACE")) == pointer_before
    assert not runtime.store.list(layout.event("RACE", second.version))  # its event was withdrawn
    assert len(_all_event_keys(runtime.store, "RACE")) == 200
    assert published_table(runtime.store, config).num_rows == 200


def _publish_in_process(dataset_path, store_root, partition, barrier, results):
    config = load_config_file(dataset_path)
    runtime = local_runtime(store_root)
    barrier.wait()
    try:
        result = stages.run_publish(runtime, config, partition)
        results.put(("ok", result.committed, result.rows_added))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(("error", type(exc).__name__, str(exc)))


@pytest.mark.parametrize("partitions", [("all", "all"), ("2024-01-01", "2024-01-02")])
def test_two_processes_publish_at_once(runtime, dataset, partitions):
    config = load_config_file(dataset)
    for partition in set(partitions):
        _stage(runtime, config, partition)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(
            target=_publish_in_process, args=(dataset, runtime.store.root, p, barrier, results)
        )
        for p in partitions
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == [
        ("ok", False, 0),
        ("ok", True, 200),
    ]  # one wins, the other finds nothing new
    keys = _all_event_keys(runtime.store, "RACE")
    assert len(keys) == len(set(keys)) == 200
    current, _ = read_current(runtime.store, "RACE")
    assert current.parent_version is None  # one version, no fork in the chain
    assert pc.sum(published_table(runtime.store, config)["value"]).as_py() == sum(
        i * 1.5 for i in range(200)
    )


def test_local_lock_refuses_a_second_holder(tmp_path):
    locks = LocalLocks(tmp_path / "locks")
    second = LocalLocks(tmp_path / "locks")
    with (
        locks.hold("etl:RACE", ttl_s=5),
        pytest.raises(LockBusy, match="etl:RACE"),
        second.hold("etl:RACE", ttl_s=5, wait_s=0.2),
    ):
        pass
    with locks.hold("etl:RACE", ttl_s=5, wait_s=0.2):  # released: free again
        pass
