"""The event store under faults: lost and corrupt files of each kind, lost fences, a writer
frozen past its lease, failures after the swap, garbage beside a publisher, partitions that
disagree. Each fault is checked against what must hold: nothing published is lost or
published twice, nothing is built on a broken chain, and derived files heal from the events."""

import datetime as dt
import errno
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pytest

from ingest_assets import eventstore, layout
from ingest_assets.cli import main
from ingest_assets.contract import parse_config
from ingest_assets.eventstore import follow_ups, projections
from ingest_assets.eventstore import index as key_index
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, key_hashes, row_hashes
from ingest_resources.local_store import LocalObjectStore
from ingest_resources.locks import DynamoLocks, LeaseLost, LocalLocks

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def make_config(dataset_id: str = "F", ttl_s: int = 30, series: bool = False, **extra):
    keys = ["code", "obs_time"] if series else ["id"]
    schema = {"value": "float64"} | ({} if series else {"id": "int64"})
    return parse_config(
        {
            "dataset_id": dataset_id,
            "source": {"kind": "file", "path": "unused.csv", "format": "csv"},
            "normalize": {"primary_keys": keys, "schema": schema},
            "lock": {"ttl_s": ttl_s},
            **extra,
        },
        f"{dataset_id}.yaml",
    )


def rows_table(config, rows: dict[int, float], months: int = 3) -> pa.Table:
    """Rows keyed by id, spread over `months` months."""
    ids = sorted(rows)
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "obs_time": pa.array(
                [dt.datetime(2024, 1 + i % months, 1 + i % 28, tzinfo=dt.UTC) for i in ids],
                pa.timestamp("us", tz="UTC"),
            ),
            "value": pa.array([rows[i] for i in ids], pa.float64()),
        }
    )
    return table.append_column(KEY_HASH, key_hashes(table, ["id"])).append_column(
        ROW_HASH, row_hashes(table, ["obs_time", "value"])
    )


class Store:
    """A dataset on a local store, published version by version."""

    def __init__(self, root: Path, config=None, store=None, locks=None):
        self.root = root
        self.store = store or LocalObjectStore(root / "store")
        self.locks = locks or LocalLocks(root / "locks")
        self.config = config or make_config()
        self.clock = NOW
        self.sent: list[str] = []

    def notify(self, manifest) -> str | None:
        self.sent.append(manifest.version)
        return None

    def publish(self, rows: dict[int, float], partition: str = "all", **kwargs):
        self.clock += dt.timedelta(minutes=1)
        return eventstore.publish(
            self.store,
            self.locks,
            self.config,
            partition,
            rows_table(self.config, rows),
            {},
            {},
            now=self.clock,
            notify=kwargs.pop("notify", self.notify),
            **kwargs,
        )

    def current(self):
        return eventstore.read_current(self.store, self.config.dataset_id)[0]

    def exported(self) -> dict[int, float]:
        table = eventstore.published_table(self.store, self.config)
        return dict(zip(table["id"].to_pylist(), table["value"].to_pylist(), strict=True))

    def path(self, key: str) -> Path:
        return self.root / "store" / key

    def verify(self):
        return eventstore.verify(self.store, self.config)

    def for_the_cli(self, monkeypatch) -> None:
        """The dataset as `ingest` commands see it: its YAML, this store and its locks."""
        config_dir = self.root / "configs"
        config_dir.mkdir()
        (config_dir / "f.yaml").write_text(
            "dataset_id: F\nsource: {kind: file, path: unused.csv, format: csv}\n"
            "normalize: {primary_keys: [id], schema: {id: int64, value: float64}}\n"
        )
        monkeypatch.setenv("INGEST_CONFIG_DIR", str(config_dir))
        monkeypatch.setenv("INGEST_STORE_ROOT", str(self.root / "store"))
        self.locks = LocalLocks(self.root / "store" / ".locks")  # (where the CLI keeps them)


@pytest.fixture
def ds(tmp_path):
    return Store(tmp_path)


def first_event_file(ds) -> str:
    return ds.current().file_keys[0]


# --- a lost or unreadable current pointer ----------------------------------------------------------


@pytest.mark.parametrize("damage", ["deleted", "garbage", "truncated"])
def test_a_lost_current_is_never_a_first_publish_and_repair_restores_it(ds, damage):
    ds.publish({i: 1.0 for i in range(300)})
    second = ds.publish({i: 2.0 for i in range(300, 600)})
    pointer = ds.path(layout.current("F"))
    if damage == "deleted":
        pointer.unlink()
    else:
        pointer.write_bytes(b"\x00garbage" if damage == "garbage" else pointer.read_bytes()[:40])
    with pytest.raises(eventstore.CurrentLost, match=r"current/manifest.json.*ingest repair F"):
        ds.publish({i: 3.0 for i in range(600, 700)})
    assert [p.name for p in ds.path(layout.events("F")).iterdir()].__len__() == 2  # nothing new
    report = eventstore.repair(ds.store, ds.locks, ds.config)
    assert report.version == second.version
    assert ds.current().version == second.version
    third = ds.publish({i: 3.0 for i in range(600, 700)})
    assert third.parent == second.version and third.rows_added == 100
    assert len(ds.exported()) == 700
    assert ds.verify().ok


def test_repair_skips_a_newest_version_whose_events_are_not_whole(ds):
    first = ds.publish({i: 1.0 for i in range(50)})
    second = ds.publish({i: 2.0 for i in range(50, 100)})
    ds.path(layout.current("F")).unlink()
    ds.path(second.manifest.file_keys[0]).write_bytes(b"PAR1")  # truncated
    report = eventstore.repair(ds.store, ds.locks, ds.config)
    assert report.version == first.version
    assert ds.exported() == {i: 1.0 for i in range(50)}


def test_an_orphan_first_version_of_a_killed_writer_is_not_a_lost_pointer(ds):
    """A writer that died before its first swap leaves an event without a commit record: the
    dataset was never published, so the next run is a first publish (gc removes the orphan)."""
    prepared = eventstore.prepare(
        ds.store, ds.config, "all", rows_table(ds.config, {1: 1.0}), {}, {}, NOW
    )
    assert prepared.manifest is not None  # (never committed)
    result = ds.publish({1: 1.0, 2: 2.0})
    assert result.committed and result.parent is None


# --- a broken chain -------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["event deleted", "event truncated", "parent manifest gone"])
def test_publish_refuses_a_broken_chain_naming_the_file(ds, damage, capsys, monkeypatch):
    first = ds.publish({i: 1.0 for i in range(100)})
    ds.publish({i: 2.0 for i in range(100, 200)})
    if damage == "parent manifest gone":
        broken = layout.manifest("F", first.version)
        ds.path(broken).unlink()
    else:
        broken = first.manifest.file_keys[0]
        if damage == "event deleted":
            ds.path(broken).unlink()
        else:
            with open(ds.path(broken), "r+b") as handle:
                handle.truncate(64)
    before = sorted(p.name for p in ds.path(layout.events("F")).iterdir())
    with pytest.raises(eventstore.BrokenChain, match=broken.replace("=", ".")):
        ds.publish({i: 3.0 for i in range(200, 300)})
    assert sorted(p.name for p in ds.path(layout.events("F")).iterdir()) == before
    report = ds.verify()
    assert not report.ok and any(broken in problem for problem in report.problems)
    # the CLI names it too, and exits 1 (history says what is wrong, no traceback)
    ds.for_the_cli(monkeypatch)
    assert main(["verify", "F"]) == 1
    assert broken in capsys.readouterr().out
    if damage == "parent manifest gone":
        with pytest.raises(SystemExit, match="is missing"):
            main(["history", "F"])


def test_a_bit_flip_in_an_event_file_is_found_by_verify(ds):
    ds.publish({i: float(i) for i in range(200)})
    path = ds.path(first_event_file(ds))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    path.write_bytes(bytes(data))
    report = ds.verify()
    assert any("sha256" in problem for problem in report.problems), report.problems


# --- derived files -------------------------------------------------------------------------------


def test_truncating_a_window_never_touches_the_event_file(ds):
    """Windows are copies, never hard links of the immutable events."""
    ds.publish({i: float(i) for i in range(100)})
    event = ds.path(first_event_file(ds))
    size = event.stat().st_size
    windows = sorted(ds.path(layout.projections("F")).rglob("data.parquet"))
    assert windows
    for window in windows:
        assert window.stat().st_ino != event.stat().st_ino
        with open(window, "r+b") as handle:
            handle.truncate(64)
    assert event.stat().st_size == size
    assert len(ds.exported()) == 100


@pytest.mark.parametrize(
    "damage", ["window truncated", "window deleted", "index truncated", "state garbage"]
)
def test_a_corrupt_derived_file_heals_on_the_next_publish(ds, damage):
    ds.publish({i: float(i) for i in range(100)})
    window = sorted(ds.path(layout.projections("F")).rglob("data.parquet"))[0]
    target = {
        "window truncated": window,
        "window deleted": window,
        "index truncated": ds.path(layout.index("F")),
        "state garbage": ds.path(layout.projections_state("F")),
    }[damage]
    if damage == "window deleted":
        target.unlink()
    elif damage == "state garbage":
        target.write_text("{not json")
    else:
        with open(target, "r+b") as handle:
            handle.truncate(10)
    assert not ds.verify().ok
    result = ds.publish({i: float(i) for i in range(90, 120)})  # 20 new, 10 repeats
    assert result.committed and result.rows_added == 20 and not result.follow_up_errors
    report = ds.verify()
    assert report.ok, report.problems
    assert ds.exported() == {i: float(i) for i in range(120)}


def test_repair_rebuilds_derived_files_that_say_they_are_current(ds):
    """A window wrong in content, with a state that says it is up to date: only verify sees
    it, and repair rebuilds it from the events."""
    ds.publish({i: float(i) for i in range(100)})
    window = sorted(ds.path(layout.projections("F")).rglob("data.parquet"))[0]
    key = str(window.relative_to(ds.root / "store"))
    table = ds.store.read_parquet(key)
    ds.store.write_parquet(key, table.slice(1))  # a row lost
    report = ds.verify()
    assert any(key in problem for problem in report.problems)
    eventstore.repair(ds.store, ds.locks, ds.config)
    assert ds.verify().ok


# --- fences --------------------------------------------------------------------------------------


@pytest.mark.parametrize("counter", ["deleted", "reset to 0", "garbage"])
def test_a_lost_fence_counter_starts_above_the_chain(ds, counter):
    for n in range(4):
        ds.publish({n: float(n)})
    fence_file = ds.root / "locks" / "etl_F.fence"
    assert fence_file.exists()
    if counter == "deleted":
        fence_file.unlink()
    else:
        fence_file.write_text("0" if counter == "reset to 0" else "x\x00")
    result = ds.publish({10: 1.0})
    assert result.committed
    assert result.manifest.fence == 5  # above the chain's 4
    assert ds.publish({11: 1.0}).manifest.fence == 6


def test_a_lost_dynamodb_fence_item_starts_above_the_chain(aws, tmp_path):
    from ingest_resources.runtime import aws_client

    client = aws_client("dynamodb", aws["endpoint"])
    ds = Store(tmp_path, locks=DynamoLocks(client, aws["table"]))
    for n in range(3):
        ds.publish({n: float(n)})
    client.delete_item(TableName=aws["table"], Key={"lock_key": {"S": "etl:F#fence"}})
    result = ds.publish({10: 1.0})
    assert result.committed and result.manifest.fence == 4
    assert ds.publish({11: 1.0}).manifest.fence == 5


def test_a_writer_whose_lease_expired_writes_no_derived_file(ds):
    """A writer frozen past its TTL (its lease's deadline passed) refuses to write the index,
    the projections or their state: it cannot roll them back over a newer writer's."""
    ds.publish({i: 1.0 for i in range(20)})
    ds.publish({i: 2.0 for i in range(20)})
    chain = eventstore.version_chain(ds.store, "F", ds.current())
    stale = chain[:1]  # what a frozen writer had read
    snapshot = {
        p: p.read_bytes() for p in (ds.root / "store" / "datasets/F").rglob("*") if p.is_file()
    }

    with ds.locks.hold("etl:F", 30) as lease:
        lease.valid_until = time.monotonic() - 1  # frozen past its TTL
        with pytest.raises(LeaseLost):
            projections.rebuild(ds.store, ds.config, stale, lease.still_held)
        with pytest.raises(LeaseLost):
            key_index.write(
                ds.store,
                "F",
                key_index.load(ds.store, "F", stale)[0],
                stale[-1].version,
                lease.still_held,
            )
    after = {
        p: p.read_bytes() for p in (ds.root / "store" / "datasets/F").rglob("*") if p.is_file()
    }
    assert after == snapshot
    assert ds.verify().ok


def test_replaying_an_old_version_never_rolls_a_window_back(ds):
    """Windows keep the newest version of a key, whatever order versions are folded in."""
    first = ds.publish({i: 1.0 for i in range(30)})
    ds.publish({i: 2.0 for i in range(30)})
    projections.apply(ds.store, ds.config, first.manifest.file_keys)  # a stale replay
    assert ds.verify().ok
    table = pa.concat_tables(
        [
            ds.store.read_parquet(k)
            for k in ds.store.list(layout.projections("F"))
            if k.endswith(".parquet")
        ]
    )
    assert set(table["value"].to_pylist()) == {2.0}


# --- follow-ups after the swap -------------------------------------------------------------------


def test_a_failure_after_the_swap_keeps_the_publish_and_the_next_run_finishes(ds, monkeypatch):
    ds.publish({i: 1.0 for i in range(50)})
    write = key_index.write

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(key_index, "write", full_disk)
    result = ds.publish({i: 1.0 for i in range(50, 80)})
    assert result.committed and ds.current().version == result.version
    assert any(
        f"published version {result.version}; follow-up index failed" in error
        and "No space left" in error
        for error in result.follow_up_errors
    )
    assert ds.sent[-1] == result.version  # the notification still went
    monkeypatch.setattr(key_index, "write", write)
    again = ds.publish({i: 1.0 for i in range(80)})  # nothing new: it heals all the same
    assert not again.committed and not again.follow_up_errors
    assert ds.verify().ok
    assert ds.sent.count(result.version) == 1


def test_a_failed_notification_is_sent_by_the_next_run_once(ds):
    failing = []

    def down(manifest):
        failing.append(manifest.version)
        return "SNS: connection refused"

    result = ds.publish({1: 1.0}, notify=down)
    assert result.committed
    assert result.follow_up_errors == (
        f"dataset F: published version {result.version}; follow-up notify failed: "
        "RuntimeError: SNS: connection refused",
    )
    assert ds.store.list(layout.follow_ups("F"))  # planned, not done
    ds.publish({1: 1.0})  # nothing new to publish: the pending notification goes
    ds.publish({1: 1.0})
    assert ds.sent == [result.version]
    assert not ds.store.list(layout.follow_ups("F"))


def _crash_after_swap(root: str) -> None:
    os.environ["INGEST_FAULT_INJECT"] = "after_swap"
    Store(Path(root)).publish({i: 2.0 for i in range(40)})


def test_a_crash_right_after_the_swap_is_finished_by_the_next_run(ds):
    import multiprocessing

    ds.publish({i: 1.0 for i in range(20)})
    child = multiprocessing.get_context("fork").Process(
        target=_crash_after_swap, args=(str(ds.root),)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 137
    crashed = ds.current()
    assert crashed.counts["added"] == 20 and crashed.counts["revised"] == 20
    assert not ds.verify().ok  # index and projections are behind
    assert follow_ups.pending(ds.store, "F") == {
        crashed.version: ["record", "index", "projections", "notify"]
    }
    ds.publish({i: 2.0 for i in range(40)})  # nothing new: settles
    assert ds.sent.count(crashed.version) == 1
    assert ds.verify().ok
    assert ds.store.exists(layout.commit("F", crashed.version))


# --- garbage -------------------------------------------------------------------------------------


def test_gc_removes_orphans_and_old_scratch_never_the_chain(ds):
    ds.publish({i: 1.0 for i in range(100)})
    orphan = eventstore.prepare(
        ds.store,
        ds.config,
        "all",
        rows_table(ds.config, {500: 1.0}),
        {},
        {},
        ds.clock + dt.timedelta(hours=1),
    )
    orphan_folder = ds.path(layout.event("F", orphan.version))
    scratch = ds.path("datasets/F/staging/normalized/all/.write-abc.parquet")
    scratch.parent.mkdir(parents=True)
    scratch.write_bytes(b"x" * 1000)
    young = ds.path("datasets/F/events/.events-young/.0.arrow")
    young.parent.mkdir(parents=True)
    young.write_bytes(b"y" * 10)
    old = time.time() - 3600
    for path in [scratch, *orphan_folder.rglob("*")]:
        os.utime(path, (old, old))
    dry = eventstore.collect(ds.store, ds.locks, ds.config, dry_run=True)
    assert sorted(dry.removed) == sorted(
        [layout.event("F", orphan.version), "datasets/F/staging/normalized/all/.write-abc.parquet"]
    )
    assert orphan_folder.exists() and scratch.exists()
    report = eventstore.collect(ds.store, ds.locks, ds.config)
    assert report.files == dry.files >= 3 and report.bytes == dry.bytes > 1000
    assert not orphan_folder.exists() and not scratch.exists()
    assert young.exists()  # younger than the lock TTL: maybe a running writer's
    assert ds.verify().ok
    assert len(ds.exported()) == 100


def test_gc_refuses_a_broken_chain(ds):
    first = ds.publish({1: 1.0})
    ds.path(first.manifest.file_keys[0]).unlink()
    with pytest.raises(eventstore.BrokenChain):
        eventstore.collect(ds.store, ds.locks, ds.config)


def test_gc_waits_for_a_publisher_holding_the_lock(ds):
    import threading

    ds.publish({1: 1.0})
    order = []
    with ds.locks.hold("etl:F", 30):
        worker = threading.Thread(
            target=lambda: order.append(eventstore.collect(ds.store, ds.locks, ds.config))
        )
        worker.start()
        time.sleep(0.5)
        assert not order  # still waiting
        order.append("publisher done")
    worker.join(30)
    assert order[0] == "publisher done" and isinstance(order[1], eventstore.GcReport)


# --- overlapping partitions ----------------------------------------------------------------------


@pytest.mark.parametrize("order", [("2024-01-01", "2024-01-02"), ("2024-01-02", "2024-01-01")])
def test_the_later_partition_wins_whatever_order_they_run_in(ds, order):
    data = {"2024-01-01": {1: 1.0, 2: 1.0, 3: 1.0}, "2024-01-02": {2: 2.0, 3: 2.0, 4: 2.0}}
    for partition in order:
        ds.publish(data[partition], partition)
    assert ds.exported() == {1: 1.0, 2: 2.0, 3: 2.0, 4: 2.0}
    versions = len(eventstore.version_chain(ds.store, "F", ds.current()))
    for _ in range(3):  # alternating re-runs converge: no new version, no flip
        for partition in ("2024-01-01", "2024-01-02"):
            result = ds.publish(data[partition], partition)
            assert not result.committed
    assert len(eventstore.version_chain(ds.store, "F", ds.current())) == versions
    assert ds.exported() == {1: 1.0, 2: 2.0, 3: 2.0, 4: 2.0}
    early = ds.publish(data["2024-01-01"], "2024-01-01")
    assert early.rows_superseded == (2 if order[0] == "2024-01-02" else 2)


def test_a_revision_within_one_partition_still_wins(ds):
    ds.publish({1: 1.0}, "2024-01-02")
    ds.publish({1: 5.0}, "2024-01-02")
    assert ds.exported() == {1: 5.0}


# --- S3: immutable objects are never replaced ----------------------------------------------------


@pytest.mark.parametrize("multipart", [False, True])
def test_immutable_uploads_to_s3_carry_if_none_match(aws, tmp_path, monkeypatch, multipart):
    from ingest_resources import s3_store
    from ingest_resources.runtime import aws_client

    if multipart:
        monkeypatch.setattr(s3_store, "PART_BYTES", 5 << 20)  # S3's smallest part
    store = s3_store.S3ObjectStore(aws_client("s3", aws["endpoint"]), aws["bucket"], "imm")
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"a" * (11 << 20 if multipart else 100))
    second.write_bytes(b"b" * (11 << 20 if multipart else 100))
    assert store.put_file("events/x.parquet", first, immutable=True)
    assert not store.put_file("events/x.parquet", second, immutable=True)
    assert store.get("events/x.parquet")[:1] == b"a"
    assert (
        store.sha256("events/x.parquet")
        == __import__("hashlib").sha256(first.read_bytes()).hexdigest()
    )


def test_a_store_on_s3_heals_and_verifies(aws, tmp_path):
    from ingest_resources.runtime import aws_client
    from ingest_resources.s3_store import S3ObjectStore

    store = S3ObjectStore(aws_client("s3", aws["endpoint"]), aws["bucket"], "heal")
    ds = Store(tmp_path, store=store)
    ds.publish({i: 1.0 for i in range(100)})
    ds.publish({i: 2.0 for i in range(50, 150)})
    assert ds.verify().ok
    store.put(layout.index("F"), b"PAR1 not parquet")
    window = [k for k in store.list(layout.projections("F")) if k.endswith(".parquet")][0]
    store.put(window, b"PAR1 truncated")
    assert not ds.verify().ok
    assert ds.publish({i: 3.0 for i in range(150, 160)}).rows_added == 10
    assert ds.verify().ok
    store.client.delete_object(Bucket=aws["bucket"], Key=f"heal/{layout.current('F')}")
    with pytest.raises(eventstore.CurrentLost):
        ds.publish({200: 1.0})
    eventstore.repair(store, ds.locks, ds.config)
    assert len(ds.exported()) == 160


# --- old stores ----------------------------------------------------------------------------------

FIXTURE = Path(__file__).parent / "fixtures" / "stores"


@pytest.mark.parametrize("dataset_id", ["legacy_series", "legacy_plain"])
def test_a_format_1_store_stays_readable_and_is_published_on(tmp_path, dataset_id):
    import json

    import pandas as pd

    from ingest_assets.contract import load_config_file
    from ingest_assets.stages.export import export_dataset

    shutil.copytree(FIXTURE / "v1", tmp_path / "store")
    store = LocalObjectStore(tmp_path / "store")
    config = load_config_file(FIXTURE / "v1_configs" / f"{dataset_id}.yaml")
    chain = eventstore.version_chain(
        store, dataset_id, eventstore.read_current(store, dataset_id)[0]
    )
    expected_versions = json.loads((FIXTURE / "v1_expected" / "versions.json").read_text())[
        dataset_id
    ]
    assert [m.version for m in chain] == [v["version"] for v in expected_versions]
    assert {m.format_version for m in chain} == {1}
    out = tmp_path / "export.csv"
    export_dataset(store, config, None, "csv", str(out))
    expected = pd.read_csv(FIXTURE / "v1_expected" / f"{dataset_id}.csv")
    assert pd.read_csv(out)[list(expected.columns)].equals(expected)
    report = eventstore.verify(store, config)
    assert not [p for p in report.problems if "events" in p and "projections" not in p]
    # a new version on top: format 2, its parent the old head; old projections rebuilt once
    table = eventstore.published_table(store, config)
    assert table is not None
    locks = LocalLocks(tmp_path / "locks")
    result = eventstore.publish(
        store, locks, config, "2099-01-01", table.drop_columns(["version"]), {}, {}
    )
    assert not result.committed  # every row is there already
    assert eventstore.verify(store, config).ok
    lost = store.get(layout.current(dataset_id))
    (tmp_path / "store" / layout.current(dataset_id)).unlink()
    with pytest.raises(eventstore.CurrentLost):
        eventstore.read_current(store, dataset_id)
    eventstore.repair(store, locks, config)
    assert store.get(layout.current(dataset_id)) == lost


def _frozen_writer(endpoint: str, bucket: str, table: str, root: str) -> None:
    from ingest_resources.runtime import aws_client
    from ingest_resources.s3_store import S3ObjectStore

    aws_client.cache_clear()
    os.environ["INGEST_FAULT_INJECT"] = "after_reading_current:pause"
    store = S3ObjectStore(aws_client("s3", endpoint), bucket, "frozen")
    locks = DynamoLocks(aws_client("dynamodb", endpoint), table)
    writer = Store(Path(root), config=make_config(ttl_s=2), store=store, locks=locks)
    writer.clock += dt.timedelta(hours=1)
    try:
        writer.publish({i: 9.0 for i in range(40)})
    except eventstore.StaleWriter:
        os._exit(3)  # refused, as it must be
    except LeaseLost:
        os._exit(4)  # refused while settling derived files
    os._exit(0)


def test_a_writer_frozen_past_its_lease_writes_nothing_when_it_wakes(aws, tmp_path):
    """SIGSTOP a writer holding a DynamoDB lease right after it read `current`; another writer
    publishes once the lease expired; the frozen one, woken, must neither publish nor roll the
    derived files back to what it had read."""
    import multiprocessing
    import signal

    from ingest_resources.runtime import aws_client
    from ingest_resources.s3_store import S3ObjectStore

    store = S3ObjectStore(aws_client("s3", aws["endpoint"]), aws["bucket"], "frozen")
    locks = DynamoLocks(aws_client("dynamodb", aws["endpoint"]), aws["table"])
    ds = Store(tmp_path, config=make_config(ttl_s=2), store=store, locks=locks)
    ds.publish({i: 1.0 for i in range(40)})
    child = multiprocessing.get_context("fork").Process(
        target=_frozen_writer, args=(aws["endpoint"], aws["bucket"], aws["table"], str(tmp_path))
    )
    child.start()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "T":
        assert time.monotonic() < deadline, "the writer never froze"
        time.sleep(0.05)
    newer = ds.publish({i: 2.0 for i in range(40)})  # waits out the frozen lease (2 s)
    assert newer.committed
    snapshot = {key: store.get(key) for key in store.list("datasets/F")}
    os.kill(child.pid, signal.SIGCONT)
    child.join(60)
    assert child.exitcode in (3, 4), child.exitcode
    assert {key: store.get(key) for key in store.list("datasets/F")} == snapshot
    assert ds.current().version == newer.version
    assert ds.exported() == {i: 2.0 for i in range(40)}
    assert ds.verify().ok


def test_the_commands_verify_repair_and_gc(ds, monkeypatch, capsys):
    ds.for_the_cli(monkeypatch)
    ds.publish({i: 1.0 for i in range(10)})
    head = ds.publish({i: 2.0 for i in range(10, 20)})
    assert main(["verify", "--all"]) == 0
    ds.path(layout.current("F")).unlink()
    assert main(["verify", "F"]) == 1
    assert "ingest repair F" in capsys.readouterr().out
    assert main(["repair", "F"]) == 0
    out = capsys.readouterr().out
    assert f"restored to version {head.version}" in out and f"current is {head.version}" in out
    assert main(["verify", "F"]) == 0
    scratch = ds.path("datasets/F/events/.events-old/.0.arrow")
    scratch.parent.mkdir(parents=True)
    scratch.write_bytes(b"z" * 100)
    os.utime(scratch, (time.time() - 3600, time.time() - 3600))
    assert main(["gc", "F", "--dry-run"]) == 0
    assert "would remove datasets/F/events/.events-old" in capsys.readouterr().out
    assert scratch.exists()
    assert main(["gc", "F"]) == 0
    assert "freed 1 file(s), 100 bytes" in capsys.readouterr().out
    assert not scratch.exists() and main(["verify", "F"]) == 0


def test_verify_finds_an_index_that_differs_from_the_events(ds):
    """An index that says it is current but holds another row hash or version for a key."""
    ds.publish({i: 1.0 for i in range(50)})
    head = ds.publish({i: 2.0 for i in range(25, 75)})
    chain = eventstore.version_chain(ds.store, "F", ds.current())
    for change in ("row", "version"):
        index, _ = key_index.load(ds.store, "F", chain)
        if change == "row":
            index.rows[0][7] ^= 1
        else:
            index.version_codes[:] = index.versions.index(head.version)  # all at the newest
        key_index.write(ds.store, "F", index, head.version)
        report = ds.verify()
        assert any("key(s) differ from the events" in p for p in report.problems), change
        eventstore.repair(ds.store, ds.locks, ds.config)
        assert ds.verify().ok
