"""Runs of one partition that overlap (a sensor tick, a schedule and a user at once) all end
cleanly, on a fresh Dagster home and on one in use; the staged data stays whole while two runs
write it; a full disk is reported with the dataset, the stage, the key and what was published."""

import errno
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ingest_assets import eventstore, layout, stages
from ingest_assets.contract import load_config_file
from ingest_assets.stages import normalized as normalized_stage
from ingest_assets.stages.export import published_table
from ingest_assets.stages.parts import part_keys
from ingest_assets.stages.staged import PART, DiskFullError
from ingest_resources import object_store
from ingest_resources.local_store import LocalObjectStore
from ingest_resources.runtime import local_runtime
from tests.bounded import Outcome, python_bounded, run_bounded

CONFIG = """\
dataset_id: RATES
source: {{kind: file, path: {path}, format: csv}}
normalize:
  primary_keys: [series, obs_time]
  schema: {{value: float64, obs_time: date}}
checks:
  max_rejected_ratio: 0.5
"""
RUNS = 4  # at once, on one partition
ROUNDS = 2  # more rounds on the instance the first attack set up


def csv_rows(days: range, series: str = "A") -> list[tuple[str, str, float]]:
    return [(series, f"2024-01-{day:02d}", float(day)) for day in days]


def write_csv(path: Path, rows: list[tuple[str, str, float]], extra: str = "") -> None:
    text = "".join(f"{series},{day},{value}\n" for series, day, value in rows)
    path.write_text("series,obs_time,value\n" + text + extra)


class Site:
    """A dataset's config, source, store and Dagster home under one folder."""

    def __init__(self, root: Path):
        self.root = root
        self.csv = root / "rates.csv"
        (root / "configs").mkdir(parents=True, exist_ok=True)
        (root / "configs" / "rates.yaml").write_text(CONFIG.format(path=self.csv))
        self.config = load_config_file(root / "configs" / "rates.yaml")
        self.env = {
            "INGEST_CONFIG_DIR": str(root / "configs"),
            "INGEST_STORE_ROOT": str(root / "store"),
            "DAGSTER_HOME": str(root / "home"),  # not made here: `ingest` makes it
        }

    def runs_at_once(self) -> list[Outcome]:
        """RUNS `ingest run RATES` started together, each bounded in memory and time."""
        with ThreadPoolExecutor(max_workers=RUNS) as pool:
            return list(pool.map(lambda _: self.run(), range(RUNS)))

    def run(self) -> Outcome:
        """`ingest run RATES` (this checkout's, whatever the venv's `ingest` script imports)."""
        command = [sys.executable, "-m", "ingest_assets.cli", "run", "RATES"]
        return run_bounded(command, memory_mb=4096, timeout_s=120, env=self.env)

    def versions(self) -> list[str]:
        store = LocalObjectStore(self.root / "store")
        current, _ = eventstore.read_current(store, "RATES")
        return [m.version for m in eventstore.version_chain(store, "RATES", current)]

    def exported(self) -> list[tuple[str, str, float]]:
        table = published_table(LocalObjectStore(self.root / "store"), self.config)
        columns = [table[name].to_pylist() for name in ("series", "obs_time", "value")]
        return sorted((s, d.isoformat(), v) for s, d, v in zip(*columns, strict=True))


def assert_all_clean(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.output[-3000:]
        assert "Traceback" not in outcome.output, outcome.output[-3000:]


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """RUNS runs at once on a fresh Dagster home and an empty store (the home is created by
    whichever starts first, the others wait for it)."""
    site = Site(tmp_path_factory.mktemp("fresh"))
    rows = csv_rows(range(1, 29))
    write_csv(site.csv, rows)
    started = time.monotonic()
    outcomes = site.runs_at_once()
    return site, rows, outcomes, time.monotonic() - started


def test_runs_at_once_on_a_fresh_dagster_home_all_succeed(attacked):
    site, rows, outcomes, seconds = attacked
    assert_all_clean(outcomes)
    assert len(site.versions()) == 1  # published exactly once
    assert site.exported() == sorted(rows)
    said = [o.stdout for o in outcomes]
    assert sum('rows_added": 28' in out for out in said) == 1
    assert sum("RATES: nothing new to publish; the published version is" in s for s in said) == 3
    assert (site.root / "home" / ".instance.ready").read_text().startswith("dagster ")
    assert max(o.peak_rss_mb for o in outcomes) < 1024 and seconds < 100


def test_runs_at_once_on_a_home_in_use_all_succeed_round_after_round(attacked):
    """The home and store the first attack left, then a new row each round: every run of a
    round succeeds, exactly one of them publishes it, the others say there is nothing new."""
    site, rows, _, _ = attacked
    for round_ in range(ROUNDS):
        rows = rows + csv_rows(range(round_ + 1, round_ + 2), series="B")
        write_csv(site.csv, rows)
        before = site.versions()
        outcomes = site.runs_at_once()
        assert_all_clean(outcomes)
        after = site.versions()
        assert after[:-1] == before and len(after) == len(before) + 1, (round_, after)
        assert site.exported() == sorted(rows)
        added = [o.stdout.count('"rows_added": 1,') for o in outcomes]
        assert sorted(added) == [0] * (RUNS - 1) + [1], [o.stdout for o in outcomes]


# --- two writers of one partition's staged data, in-process --------------------------------------


def test_two_writers_of_one_partitions_staged_data_never_fail_and_leave_it_whole(
    tmp_path, monkeypatch
):
    """Two threads parse and normalize one partition again and again (nothing reused: each
    writes every part), a third reads the staged rows meanwhile: no run fails, the reader
    always gets every row, and what is left is one run's output, whole."""
    monkeypatch.setattr(object_store, "BATCH_ROWS", (8, 8))  # several parts per partition
    site = Site(tmp_path / "site")
    repeat = "A,2024-01-03,3.0\n"  # an exact repeat, in another batch: a part is rewritten
    write_csv(site.csv, csv_rows(range(1, 30)), extra=repeat + "A,not a day,1\n")
    runtime = local_runtime(tmp_path / "site" / "store")
    config = site.config
    stages.run_raw(runtime, config, "all")
    monkeypatch.setattr(stages.parsed, "_reuse", lambda *args: None)
    monkeypatch.setattr(normalized_stage, "_reuse_normalized", lambda *args: None)
    stages.run_parse(runtime, config, "all")
    expected = stages.run_normalize(runtime, config, "all")
    assert expected.counts.to_dict() == {
        "parsed": 31,
        "rejected": 1,
        "duplicates": 1,
        "normalized": 29,
    }
    wanted = expected.table.sort_by("obs_time")
    done, failures, reads = threading.Event(), [], [0]

    def writer() -> None:
        try:
            for _ in range(12):
                stages.run_parse(runtime, config, "all")
                outcome = stages.run_normalize(runtime, config, "all")
                assert outcome.counts == expected.counts
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    def reader() -> None:
        while not done.is_set():
            try:
                table = stages.read_normalized(runtime, config, "all").sort_by("obs_time")
                assert table.equals(wanted)
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)
                return

    threads = [threading.Thread(target=writer) for _ in range(2)]
    watcher = threading.Thread(target=reader)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done.set()
    watcher.join(timeout=10)
    assert not failures, failures
    assert reads[0] > 0
    staged = set(part_keys(runtime.store, layout.staging("RATES", "normalized", "all")))
    meta = stages.normalized_meta(runtime.store, config, "all")
    listed = {part.key for part in meta.parts}
    # every listed part, and the part the repeat was taken out of (removed after the lock TTL)
    assert listed <= staged and len(staged) == len(listed) + 1
    assert stages.read_normalized(runtime, config, "all").sort_by("obs_time").equals(wanted)
    parsed = f"{layout.staging('RATES', 'parsed', 'all')}/{PART}"
    assert runtime.store.parquet_rows(parsed) == 31
    assert not [p for p in (tmp_path / "site" / "store").rglob(".write-*")]  # none left behind
    published = stages.run_publish(runtime, config, "all")
    assert published.committed and published.rows_added == 29


def test_a_part_no_list_names_goes_once_older_than_the_lock_ttl(tmp_path, monkeypatch):
    """What a crashed run (or an overlapping run whose list lost) left is removed by a later
    run once untouched for the lock TTL; a part that young may be another run's: it stays."""
    site = Site(tmp_path / "site")
    write_csv(site.csv, csv_rows(range(1, 5)))
    runtime = local_runtime(tmp_path / "site" / "store")
    for stage in (stages.run_raw, stages.run_parse, stages.run_normalize):
        stage(runtime, site.config, "all")
    folder = layout.staging("RATES", "normalized", "all")
    (listed,) = part_keys(runtime.store, folder)
    old, young = (
        f"{folder}/part-00000-{'a' * 16}.parquet",
        f"{folder}/part-00001-{'b' * 16}.parquet",
    )
    for key in (old, young):
        runtime.store.copy(listed, key)
    aged = time.time() - site.config.lock.ttl_s - 60
    os.utime(runtime.store.root / old, (aged, aged))
    monkeypatch.setattr(normalized_stage, "_reuse_normalized", lambda *args: None)
    stages.run_normalize(runtime, site.config, "all")  # (the same rows: the listed part is kept)
    assert part_keys(runtime.store, folder) == [listed, young]


# --- a full disk ---------------------------------------------------------------------------------


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path / "site")
    write_csv(site.csv, csv_rows(range(1, 5)))
    return site, local_runtime(tmp_path / "site" / "store")


def test_a_full_disk_while_parsing_names_the_dataset_stage_and_key(site, monkeypatch):
    site, runtime = site
    stages.run_raw(runtime, site.config, "all")
    monkeypatch.setattr(LocalObjectStore, "write_parquet_batches", disk_full)
    with pytest.raises(DiskFullError) as caught:
        stages.run_parse(runtime, site.config, "all")
    message = str(caught.value)
    assert message.startswith("dataset RATES: stage parsed, partition 'all': the disk is full ")
    assert "writing datasets/RATES/staging/parsed/all/part-00000.parquet in local store " in message
    assert "No space left on device" in message
    assert "nothing was published (nothing is published yet)" in message


def test_a_full_disk_while_normalizing_names_the_part_and_the_version_still_published(
    site, monkeypatch
):
    site, runtime = site
    for stage in (stages.run_raw, stages.run_parse, stages.run_normalize):
        stage(runtime, site.config, "all")
    version = stages.run_publish(runtime, site.config, "all").version
    write_csv(site.csv, csv_rows(range(1, 6)))
    stages.run_raw(runtime, site.config, "all")
    stages.run_parse(runtime, site.config, "all")
    original = LocalObjectStore.write_parquet

    def full_for_parts(store, key, *args, **kwargs):
        if "/staging/normalized/" in key:
            disk_full()
        return original(store, key, *args, **kwargs)

    monkeypatch.setattr(LocalObjectStore, "write_parquet", full_for_parts)
    with pytest.raises(DiskFullError) as caught:  # (the part is written on a thread)
        stages.run_normalize(runtime, site.config, "all")
    message = str(caught.value)
    assert message.startswith("dataset RATES: stage normalized, partition 'all': the disk is full")
    assert "writing datasets/RATES/staging/normalized/all/part-00000-" in message
    assert f"nothing was published (the published version is still {version})" in message
    assert site.versions() == [version]


def test_a_full_disk_while_publishing_says_whether_the_version_was_swapped_in(site, monkeypatch):
    site, runtime = site
    for stage in (stages.run_raw, stages.run_parse, stages.run_normalize):
        stage(runtime, site.config, "all")
    from ingest_assets.eventstore import follow_ups

    monkeypatch.setattr(follow_ups, "plan", disk_full)  # written before the swap
    with pytest.raises(DiskFullError) as caught:
        stages.run_publish(runtime, site.config, "all")
    message = str(caught.value)
    assert message.startswith("dataset RATES: stage published, partition 'all': the disk is full")
    assert "nothing was published (nothing is published yet)" in message
    assert site.versions() == []
    monkeypatch.undo()
    monkeypatch.setattr(follow_ups, "settled", disk_full)  # after the swap
    with pytest.raises(DiskFullError) as caught:
        stages.run_publish(runtime, site.config, "all")
    (version,) = site.versions()
    assert f"version {version} is published all the same" in str(caught.value)


FULL_DISK_RUN = """
import errno, sys
from ingest_resources.local_store import LocalObjectStore


def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


LocalObjectStore.write_parquet_batches = full
from ingest_assets.cli import main  # noqa: E402

sys.exit(main(["run", "RATES"]))
"""


def test_ingest_run_prints_the_full_disk_and_exits_1(site):
    site, _ = site
    outcome = python_bounded(FULL_DISK_RUN, memory_mb=4096, timeout_s=120, env=site.env)
    assert outcome.returncode == 1, outcome.output[-3000:]
    assert "Traceback" not in outcome.output
    failure = next(line for line in outcome.stderr.splitlines() if "RATES__parsed" in line)
    assert failure.startswith(
        "RATES__parsed: dataset RATES: stage parsed, partition 'all': the disk is full writing "
        "datasets/RATES/staging/parsed/all/part-00000.parquet in local store "
    )
    assert failure.endswith(
        ": No space left on device; nothing was published (nothing is published yet). Free some "
        "space (`ingest gc RATES` removes old scratch files) and run the partition again"
    )
