"""Concurrency pools (orchestration/pools.py, dagster.sqlite.yaml): two runs of one dataset started
together, on a PostgreSQL instance configured by dagster.postgres.yaml, publish one after the
other; the pool is held by the test until both runs wait for it, so they do contend."""

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ingest_assets.contract import load_config_file
from ingest_assets.orchestration.pools import asset_pool
from ingest_assets.stages.export import published_table
from ingest_resources.local_store import LocalObjectStore

REPO = Path(__file__).resolve().parents[1]
POOL = "ingest/dataset/POOLED"
CONFIG = """\
dataset_id: POOLED
source: {{kind: file, path: {path}, format: csv}}
normalize:
  primary_keys: [series, obs_time]
  schema: {{value: float64, obs_time: date}}
"""
ROWS = 2000


def test_both_instance_configs_limit_pools_and_dataset_runs_alike() -> None:
    sqlite, postgres = (
        yaml.safe_load((REPO / n).read_text())
        for n in ("dagster.sqlite.yaml", "dagster.postgres.yaml")
    )
    assert sqlite["concurrency"] == postgres["concurrency"]
    assert sqlite["concurrency"]["pools"]["default_limit"] == 1
    (limit,) = sqlite["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limit == {
        "key": "ingest/dataset",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    }


def test_pools_of_each_stage(write_dataset) -> None:
    config = write_dataset(
        """
        dataset_id: FX
        source: {kind: http, url: "https://Data.Example.org:8443/fx.csv?x=1", format: csv}
        normalize: {primary_keys: [k]}
        publish: {postgres: {table: fx}}
        """
    )
    pools = {stage: asset_pool(stage, config) for stage in config.stages}
    assert pools == {
        "raw": "ingest/fetch/data.example.org",
        "parsed": None,
        "normalized": None,
        "published": "ingest/dataset/FX",
        "warehouse": "ingest/dataset/FX",
    }


def _events(instance, run_id: str, step: str) -> dict[str, float]:
    """The first time of each event type of one step of a run (plus blocked-by-pool messages)."""
    times: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        if record.step_key != step or record.dagster_event is None:
            continue
        name = record.dagster_event.event_type_value
        if name == "ENGINE_EVENT" and f"blocked by limit for pool {POOL}" in record.message:
            name = "BLOCKED"
        times.setdefault(name, record.timestamp)
    return times


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


@pytest.mark.timeout(150)
def test_two_runs_of_a_dataset_publish_one_at_a_time(
    tmp_path: Path, pg_database, monkeypatch
) -> None:
    from ingest_assets.cli.instance import open_instance

    source = tmp_path / "pooled.csv"
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(ROWS)]
    rows = [(f"S{i % 7}", days[i].isoformat(), float(i)) for i in range(ROWS)]
    source.write_text("series,obs_time,value\n" + "".join(f"{s},{d},{v}\n" for s, d, v in rows))
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "pooled.yaml").write_text(CONFIG.format(path=source))
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.setenv("INGEST_DAGSTER_PG_URL", pg_database)
    monkeypatch.setenv("INGEST_PROJECT_ROOT", str(REPO))  # dagster.postgres.yaml of this checkout
    with open_instance() as instance:
        storage = instance.event_log_storage
        # the test holds the pool (as a third writer would) until both runs wait for it
        storage.initialize_concurrency_limit_to_default(POOL)
        assert storage.claim_concurrency_slot(POOL, "holder", "holder").is_claimed
        command = [sys.executable, "-m", "ingest_assets.cli", "run", "POOLED"]
        runs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:

            def both_blocked() -> bool:
                ids = [r.run_id for r in instance.get_runs()]
                return len(ids) == 2 and all(
                    "BLOCKED" in _events(instance, i, "POOLED__published") for i in ids
                )

            _wait(both_blocked, 90, "both runs should wait for the dataset's pool")
            storage.free_concurrency_slot_for_step("holder", "holder")
            outputs = [run.communicate(timeout=90) for run in runs]
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
        assert [run.returncode for run in runs] == [0, 0], outputs
        steps = sorted(
            (_events(instance, r.run_id, "POOLED__published") for r in instance.get_runs()),
            key=lambda times: times["STEP_START"],
        )
        first, second = steps
        assert first["STEP_SUCCESS"] <= second["STEP_START"]  # one publish after the other
        assert storage.get_concurrency_info(POOL).claimed_slots == []
    config = load_config_file(tmp_path / "configs" / "pooled.yaml")
    table = published_table(LocalObjectStore(tmp_path / "store"), config)
    columns = [table[name].to_pylist() for name in ("series", "obs_time", "value")]
    published = sorted((s, d.isoformat(), v) for s, d, v in zip(*columns, strict=True))
    assert published == sorted(rows)  # every source row, once
