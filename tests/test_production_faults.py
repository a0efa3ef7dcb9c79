"""Faults on the production backends (S3 + DynamoDB on moto): concurrent publishers, publishers
killed at each step of a publish, and a writer whose lease expired."""

import datetime as dt
import multiprocessing
import os
import time

import pytest

from ingest_assets import eventstore as publish
from ingest_assets import layout, stages
from ingest_assets.contract import parse_config
from ingest_assets.eventstore import StaleWriter, read_current, version_chain
from ingest_assets.eventstore.events import read_event_rows
from ingest_assets.eventstore.parallel import FAULT_ENV
from ingest_assets.stages.export import published_table
from ingest_resources.locks import DynamoLocks, LockBusy
from ingest_resources.runtime import aws_client, build_runtime

FORK = multiprocessing.get_context("fork")


def make_config(csv, ttl_s: int = 30):
    return parse_config(
        {
            "dataset_id": "FAULTS",
            "source": {"kind": "file", "path": str(csv), "format": "csv"},
            "normalize": {"primary_keys": ["id"], "schema": {"id": "int64", "value": "float64"}},
            "lock": {"ttl_s": ttl_s},
        },
        "faults.yaml",
    )


def runtime_at(aws, prefix: str):
    return build_runtime(
        "/nonexistent-local-root", f"s3://{aws['bucket']}/{prefix}", aws["table"], aws["endpoint"]
    )


def stage(runtime, config, csv, rows: dict[int, float], partition: str) -> None:
    csv.write_text("id,value\n" + "".join(f"{k},{v}\n" for k, v in rows.items()))
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    stages.run_normalize(runtime, config, partition)


def staged_rows(runtime, config, csv, rows: dict[int, float]):
    """Stage `rows` for partition `all` and return the normalized table publish would read."""
    stage(runtime, config, csv, rows, "all")
    return stages.read_normalized(runtime, config, "all")


def values(runtime, config) -> dict[int, float]:
    table = published_table(runtime.store, config)
    return dict(zip(table.column("id").to_pylist(), table.column("value").to_pylist(), strict=True))


def event_keys(store) -> list[str]:
    current, _ = read_current(store, "FAULTS")
    keys = []
    for manifest in version_chain(store, "FAULTS", current):
        rows = read_event_rows(store, manifest.file_keys, ["key_hash"])
        keys += rows.column("key_hash").to_pylist() if rows is not None else []
    return keys


def _child(target, *args):
    """Run in a forked process with its own AWS clients (boto3 clients do not survive a fork)."""
    aws_client.cache_clear()
    target(*args)


# --- concurrent publishers -------------------------------------------------------------------------


def _publisher(aws, config, partition, barrier, results):
    runtime = runtime_at(aws, "race")
    barrier.wait()
    try:
        result = stages.run_publish(runtime, config, partition)
        results.put((partition, "ok", result.rows_added, result.committed))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put((partition, "error", type(exc).__name__, str(exc)))


def test_several_processes_publish_one_dataset_at_once(aws, tmp_path):
    csv = tmp_path / "data.csv"
    config = make_config(csv)
    runtime = runtime_at(aws, "race")
    stage(runtime, config, csv, {i: i * 1.0 for i in range(0, 100)}, "p1")
    stage(runtime, config, csv, {i: i * 1.0 for i in range(50, 150)}, "p2")
    stage(runtime, config, csv, {i: i * 1.0 for i in range(100, 200)}, "p3")
    partitions = ["p1", "p1", "p2", "p3"]  # the same partition twice, and different ones
    barrier, results = FORK.Barrier(len(partitions)), FORK.Queue()
    workers = [
        FORK.Process(target=_child, args=(_publisher, aws, config, p, barrier, results))
        for p in partitions
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    outcomes = [results.get(timeout=5) for _ in workers]
    assert all(outcome[1] == "ok" for outcome in outcomes), outcomes
    assert sum(outcome[2] for outcome in outcomes) == 200
    keys = event_keys(runtime.store)
    assert len(keys) == len(set(keys)) == 200  # every row published exactly once
    chain = version_chain(runtime.store, "FAULTS", read_current(runtime.store, "FAULTS")[0])
    committed = sum(1 for outcome in outcomes if outcome[3])
    assert len(chain) == committed
    assert [m.parent_version for m in chain] == [None] + [m.version for m in chain[:-1]]  # no fork
    fences = [m.fence for m in chain]
    assert fences == sorted(fences) and len(set(fences)) == len(fences)
    manifests = [
        k for k in runtime.store.list(layout.events("FAULTS")) if k.endswith("manifest.json")
    ]
    assert len(manifests) == len(chain)  # no orphan version left behind
    assert values(runtime, config) == {i: i * 1.0 for i in range(200)}


def test_lost_compare_and_swap_on_s3_withdraws_the_event(aws, tmp_path):
    csv = tmp_path / "data.csv"
    config = make_config(csv)
    runtime = runtime_at(aws, "cas")
    normalized = staged_rows(runtime, config, csv, {1: 1.0, 2: 2.0})
    now = dt.datetime.now(dt.UTC)
    first = publish.prepare(runtime.store, config, "all", normalized, {}, {}, now)
    second = publish.prepare(
        runtime.store, config, "all", normalized, {}, {}, now + dt.timedelta(seconds=1)
    )
    publish.commit(runtime.store, first)
    with pytest.raises(publish.PublishConflict, match="lost the race"):
        publish.commit(runtime.store, second)
    assert read_current(runtime.store, "FAULTS")[0].version == first.version
    assert runtime.store.list(layout.event("FAULTS", second.version)) == []
    assert len(event_keys(runtime.store)) == 2


# --- publishers killed mid-way ---------------------------------------------------------------------

V1 = {1: 10.0, 2: 20.0, 3: 30.0}
V2 = {1: 10.0, 2: 21.0, 3: 30.0, 4: 40.0}  # one revision, one new row


def _publish_with_fault(aws, prefix, config, fault):
    os.environ[FAULT_ENV] = fault
    stages.run_publish(runtime_at(aws, prefix), config, "v2")


@pytest.mark.parametrize("fault", ["after_data", "after_manifest", "before_swap", "after_swap"])
def test_killed_publisher_leaves_current_readable_and_the_rerun_converges(aws, tmp_path, fault):
    csv = tmp_path / "data.csv"
    config = make_config(csv, ttl_s=2)  # the dead writer's lease expires quickly
    reference = runtime_at(aws, "reference")
    for partition, rows in (("v1", V1), ("v2", V2)):
        stage(reference, config, csv, rows, partition)
        stages.run_publish(reference, config, partition)

    runtime = runtime_at(aws, fault)
    stage(runtime, config, csv, V1, "v1")
    v1 = stages.run_publish(runtime, config, "v1").version
    stage(runtime, config, csv, V2, "v2")
    victim = FORK.Process(target=_child, args=(_publish_with_fault, aws, fault, config, fault))
    victim.start()
    victim.join(60)
    assert victim.exitcode == 137  # killed at the fault point

    current = read_current(runtime.store, "FAULTS")[0]
    if fault == "after_swap":  # the swap happened; only the derived index/projections lag
        assert current.parent_version == v1
    else:
        assert current.version == v1
        assert values(runtime, config) == V1  # still readable, still the old data
    started = time.monotonic()
    rerun = stages.run_publish(runtime, config, "v2")  # waits out the dead writer's lease
    assert time.monotonic() - started < 15
    assert rerun.committed is (fault != "after_swap")
    assert values(runtime, config) == values(reference, config) == V2
    keys = event_keys(runtime.store)
    assert len(keys) == 5  # 3 inserts, then 1 update + 1 insert: nothing twice
    index = runtime.store.read_parquet(layout.index("FAULTS"))
    assert index.num_rows == 4


# --- an expired lease ------------------------------------------------------------------------------


def test_a_writer_whose_lease_expired_is_refused(aws, tmp_path):
    csv = tmp_path / "data.csv"
    config = make_config(csv)
    runtime = runtime_at(aws, "lease")
    normalized = staged_rows(runtime, config, csv, {1: 1.0})
    locks = DynamoLocks(aws_client("dynamodb", aws["endpoint"]), aws["table"], poll_s=0.1)
    now = dt.datetime.now(dt.UTC)
    with locks.hold(config.lock_key, ttl_s=1, renew=False) as stale:  # a writer that stalls
        prepared = publish.prepare(
            runtime.store, config, "all", normalized, {}, {}, now, fence=stale.fence
        )
        time.sleep(1.3)
        with locks.hold(config.lock_key, ttl_s=30, wait_s=5) as fresh:
            assert fresh.fence > stale.fence
            # (refused before any round trip: its TTL has passed, as the lease itself knows)
            with pytest.raises(
                StaleWriter, match=rf"lease \(fence {stale.fence}\) was lost or expired"
            ):
                publish.commit(runtime.store, prepared, stale)
            assert read_current(runtime.store, "FAULTS") == (None, None)
            assert runtime.store.list(layout.event("FAULTS", prepared.version)) == []
            newer = publish.prepare(
                runtime.store, config, "all", normalized, {}, {}, now, fence=fresh.fence
            )
            publish.commit(runtime.store, newer, fresh)
    assert read_current(runtime.store, "FAULTS")[0].fence == fresh.fence


def test_a_writer_with_an_older_fence_cannot_publish_over_a_newer_one(aws, tmp_path):
    csv = tmp_path / "data.csv"
    config = make_config(csv)
    runtime = runtime_at(aws, "fence")
    normalized = staged_rows(runtime, config, csv, {1: 1.0})
    now = dt.datetime.now(dt.UTC)
    newer = publish.prepare(runtime.store, config, "all", normalized, {}, {}, now, fence=7)
    publish.commit(runtime.store, newer)
    normalized = staged_rows(runtime, config, csv, {1: 1.0, 2: 2.0})
    older = publish.prepare(runtime.store, config, "all", normalized, {}, {}, now, fence=6)
    with pytest.raises(StaleWriter, match="published under fence 7, newer than this writer's 6"):
        publish.commit(runtime.store, older)
    assert read_current(runtime.store, "FAULTS")[0].version == newer.version


# --- the DynamoDB lock itself ----------------------------------------------------------------------


def test_dynamodb_lock_excludes_renews_and_releases(aws):
    locks = DynamoLocks(aws_client("dynamodb", aws["endpoint"]), aws["table"], poll_s=0.1)
    with locks.hold("etl:X", ttl_s=1) as first:
        with pytest.raises(LockBusy, match="etl:X"), locks.hold("etl:X", ttl_s=1, wait_s=0.3):
            pass
        time.sleep(1.6)  # past the TTL: the background renewal keeps the lease
        first.check()
        with pytest.raises(LockBusy), locks.hold("etl:X", ttl_s=1, wait_s=0.3):
            pass
    with pytest.raises(RuntimeError), locks.hold("etl:X", ttl_s=5, wait_s=0.3) as second:
        assert second.fence > first.fence
        raise RuntimeError("publish failed")
    with locks.hold("etl:X", ttl_s=5, wait_s=0.3) as third:  # released on failure too
        assert third.fence > second.fence
