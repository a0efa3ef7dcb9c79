"""`ingest run` and `ingest backfill` as a Dagster user sees them: bad input leaves no run, log
levels do what they say, runs are named for their dataset, a backfill is Dagster's."""

import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import RunsFilter

from ingest_assets.cli import main
from tests.conftest import REPO

DATASET = "REDDIT_HOMELAB_FEED"
CONSOLE = (
    "import sys; from ingest_assets.cli import console; sys.argv = ['ingest', *sys.argv[1:]]; "
    "console()"
)


@pytest.fixture(autouse=True)
def daily_feed(isolated_env, monkeypatch):
    """The samples, the feed declared daily (`snapshot: true`: each day is the feed as read that
    day): these tests run partitions and backfills, and the samples are unpartitioned."""
    configs = isolated_env / "samples"
    configs.mkdir()
    for sample in (REPO / "dataset_configs").glob("*.yaml"):
        (configs / sample.name).write_text(sample.read_text())
    feed = configs / "reddit_homelab_feed.yaml"
    feed.write_text(
        feed.read_text() + "partitions: {kind: daily, start: 2026-11-01, snapshot: true}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    monkeypatch.setenv("INGEST_PROJECT_ROOT", str(REPO))


def _runs() -> list[dg.DagsterRun]:
    with dg.DagsterInstance.get() as instance:
        return list(instance.get_runs())


def test_a_bad_log_level_is_one_line_and_leaves_no_run(isolated_env):
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE, "run", DATASET, "--log-level", "LOUD"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "ingest: --log-level 'LOUD' is not a log level; expected one of "
        "CRITICAL, ERROR, WARNING, INFO, DEBUG"
    ]
    assert not (isolated_env / "dagster_home" / "history").exists()  # no run storage at all
    with pytest.raises(SystemExit, match="is not a log level"):
        main(
            [
                "backfill",
                DATASET,
                "--start",
                "2026-11-18",
                "--end",
                "2026-11-19",
                "--log-level",
                "x",
            ]
        )
    assert _runs() == []


def test_a_run_that_cannot_start_is_marked_failed():
    """The path of the old crash (a log level Dagster refuses once the run exists), past the
    CLI's own checks: the run is failed, not left NOT_STARTED (the UI would show its assets
    "Materializing" until another run of the partition)."""
    from ingest_assets.cli.datasets import dataset_config
    from ingest_assets.cli.launch import dataset_job, execute

    job, _ = dataset_job(dataset_config(DATASET))
    with dg.DagsterInstance.get() as instance, pytest.raises(Exception, match="LOUD"):
        execute(job, instance, "2026-11-20", "LOUD")
    (run,) = _runs()
    assert run.status == dg.DagsterRunStatus.FAILURE and run.job_name == f"{DATASET}__ingest"


def test_log_levels_do_what_they_say(capsys):
    assert main(["run", DATASET, "--partition", "2026-11-20"]) == 0
    quiet = capsys.readouterr()
    assert " - dagster - " not in quiet.err  # the default: ingest's summary only
    assert main(["run", DATASET, "--partition", "2026-11-20", "--log-level", "info"]) == 0
    info = capsys.readouterr().err
    assert f"dagster - INFO - {DATASET}__ingest" in info
    assert f"{DATASET}/parsed [2026-11-20]: 25 rows parsed" in info
    assert " - DEBUG - " not in info
    assert main(["run", DATASET, "--partition", "2026-11-20", "--log-level", "DEBUG"]) == 0
    debug = capsys.readouterr().err
    assert " - DEBUG - " in debug and "STEP_SUCCESS" in debug


def test_backfill_is_a_dagster_backfill(capsys):
    assert main(["backfill", DATASET, "--start", "2026-11-18", "--end", "2026-11-20"]) == 0
    with dg.DagsterInstance.get() as instance:
        (backfill,) = instance.get_backfills()
        runs = instance.get_runs(
            filters=RunsFilter(tags={"dagster/backfill": backfill.backfill_id})
        )
        assert backfill.status.value == "COMPLETED_SUCCESS"
        assert backfill.title == f"ingest backfill {DATASET}"
        data = backfill.asset_backfill_data
        assert data is not None
        wanted = {
            (key.to_user_string(), partition)
            for key in data.target_subset.asset_keys
            for partition in ("2026-11-18", "2026-11-19", "2026-11-20")
        }
        done = {
            (p.asset_key.to_user_string(), p.partition_key)
            for p in data.materialized_subset.iterate_asset_partitions()
        }
        assert done == wanted and len(wanted) == 4 * 3
        assert sorted(run.tags["dagster/partition"] for run in runs) == [
            "2026-11-18",
            "2026-11-19",
            "2026-11-20",
        ]
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        assert {run.tags["ingest/dataset"] for run in runs} == {DATASET}
    assert (
        f"backfill {backfill.backfill_id}: 3 of 3 partitions succeeded" in capsys.readouterr().err
    )


def test_what_a_demo_run_says_without_a_database_a_topic_or_fresh_data(capsys, monkeypatch):
    """The monthly CPI sample, as `make demo` runs it: the warehouse is not materialized (an
    observation says why), the notification is not configured (never "sent"), and the freshness
    check on old sample data reads as a warning."""
    monkeypatch.delenv("INGEST_POSTGRES_URL", raising=False)
    dataset = "INDEC_IPC_DIVISIONES"
    assert main(["run", dataset]) == 0
    captured = capsys.readouterr()
    reason = "no database to load public.cpi_divisions into (INGEST_POSTGRES_URL is not set)"
    assert f"{dataset}/warehouse: not materialized: {reason}" in captured.out
    assert f"{dataset}/warehouse: {{" not in captured.out  # no materialization line
    assert f"warning: check {dataset}/normalized:freshness: newest obs_time" in captured.err
    assert "failed" not in captured.err
    key = dg.AssetKey([dataset, "warehouse"])
    published = dg.AssetKey([dataset, "published"])
    with dg.DagsterInstance.get() as instance:
        assert instance.get_latest_materialization_event(key) is None
        observation = instance.fetch_observations(key, limit=1).records[0].asset_observation
        assert observation is not None
        assert observation.metadata["not_materialized"].value == reason
        latest = instance.get_latest_materialization_event(published)
        assert latest is not None and latest.asset_materialization is not None
        notification = latest.asset_materialization.metadata["notification"].value
        assert (
            notification == "not configured (no notify.sns_topic_arn; the summary went to the log)"
        )


def test_history_of_every_dataset_names_each(capsys):
    """The last lines of `make demo`: each dataset's current version, after its id."""
    assert main(["run", DATASET, "--partition", "2026-11-20"]) == 0
    capsys.readouterr()
    assert main(["history", "--all"]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert lines["INDEC_IPC_DIVISIONES"] == " nothing published yet"
    assert lines[DATASET].startswith(" 20") and "partition=2026-11-20  added=25" in lines[DATASET]
    assert set(lines) == {
        "BCRA_INFOMONDIA",
        "BCRA_MONETARIAS_CATALOG",
        "INDEC_IPC_DIVISIONES",
        DATASET,
    }


def test_run_all_goes_on_past_a_failed_dataset(tmp_path, monkeypatch, capsys):
    """`make demo`'s `ingest run --all`: every dataset in one process, the failed ones named."""
    import shutil

    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(REPO / "dataset_configs" / "reddit_homelab_feed.yaml", configs)
    (configs / "bad.yaml").write_text(
        "dataset_id: A_BAD\nsource: {kind: file, path: /nonexistent/x.csv, format: csv}\n"
        "normalize: {primary_keys: [id]}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    monkeypatch.setenv("INGEST_PROJECT_ROOT", str(REPO))
    with pytest.raises(SystemExit, match="drop --partition"):
        main(["run", "--all", "--partition", "2026-11-20"])
    assert main(["run", "--all"]) == 1
    captured = capsys.readouterr()
    assert captured.out.index("== A_BAD") < captured.out.index(f"== {DATASET}")
    assert f'{DATASET}/published: {{"rows_added": 25' in captured.out
    assert captured.err.strip().endswith("ingest: failed: A_BAD")
    assert sorted(run.job_name for run in _runs()) == ["A_BAD__ingest", f"{DATASET}__ingest"]


def test_run_all_if_changed_skips_what_a_run_would_not_change(tmp_path, monkeypatch, capsys):
    """`make demo` again: a dataset whose source file and contract made its current version is
    said to be unchanged and not run (no Dagster run); a changed contract runs again."""
    configs = tmp_path / "configs"
    configs.mkdir()
    contract = (REPO / "dataset_configs" / "reddit_homelab_feed.yaml").read_text()
    (configs / "feed.yaml").write_text(contract)
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    monkeypatch.setenv("INGEST_PROJECT_ROOT", str(REPO))
    assert main(["run", "--all", "--if-changed"]) == 0
    assert f"== {DATASET}\n" in capsys.readouterr().out
    assert main(["run", "--all", "--if-changed"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"== {DATASET}: source and contract unchanged since version 20")
    assert out.strip().endswith("; not run") and len(_runs()) == 1
    (configs / "feed.yaml").write_text(contract.replace("description: ", "description: (v2) "))
    assert main(["run", "--all", "--if-changed"]) == 0
    assert f"== {DATASET}\n" in capsys.readouterr().out and len(_runs()) == 2


def test_a_bad_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", DATASET, "--partiton", "2026-11-20"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "ingest: unrecognized arguments: --partiton 2026-11-20 (see `ingest --help`)"
    ]
    with pytest.raises(SystemExit, match="name a DATASET"):
        main(["run"])
    assert _runs() == []


def test_run_all_if_changed_always_runs_landing_zones(tmp_path, monkeypatch, capsys):
    """A landing zone's run lists its files (new ones may have landed): `--if-changed` never
    skips it, and a run that finds no new file says so (not "nothing is published yet")."""
    landing, configs = tmp_path / "landing", tmp_path / "zone_configs"
    landing.mkdir()
    configs.mkdir()
    (landing / "2026-12-01.csv").write_text("id,value\n1,2\n")
    (configs / "zone.yaml").write_text(
        "dataset_id: ZONE\n"
        f"source: {{kind: file, glob: '{landing}/*.csv', format: csv}}\n"
        "normalize: {primary_keys: [id]}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    assert main(["run", "--all", "--if-changed"]) == 0
    assert 'ZONE/published: {"rows_added": 1' in capsys.readouterr().out
    assert main(["run", "--all", "--if-changed"]) == 0
    out = capsys.readouterr().out
    assert "== ZONE\n" in out
    assert f"ZONE: nothing to publish: no new file in {landing}/*.csv" in out
    (landing / "2026-12-02.csv").write_text("id,value\n2,3\n")
    assert main(["run", "--all", "--if-changed"]) == 0
    assert 'ZONE/published: {"rows_added": 1' in capsys.readouterr().out


def test_a_dataset_and_all_together_are_refused():
    with pytest.raises(SystemExit, match="name a DATASET or give --all, not both"):
        main(["run", DATASET, "--all"])
    assert _runs() == []


def test_a_backfill_interrupted_before_any_partition_ran_records_none(monkeypatch):
    """Ctrl-C during the first partition: the interrupt goes on (not Dagster's complaint about
    an empty backfill), and no backfill is recorded."""
    from ingest_assets.cli import materialize

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(materialize, "_materialize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["backfill", DATASET, "--start", "2026-11-18", "--end", "2026-11-19"])
    with dg.DagsterInstance.get() as instance:
        assert instance.get_backfills() == []


def test_run_all_goes_on_past_a_dataset_that_cannot_start(tmp_path, monkeypatch, capsys):
    """A dataset with no partition yet (its start is ahead) is named and left out; the others
    run, and the run says which failed."""
    configs = tmp_path / "later_configs"
    configs.mkdir()
    (configs / "feed.yaml").write_text(
        (REPO / "dataset_configs" / "reddit_homelab_feed.yaml").read_text()
    )
    (configs / "later.yaml").write_text(
        "dataset_id: A_LATER\n"
        "source: {kind: file, path: 'd/{partition_start}.csv', format: csv}\n"
        "normalize: {primary_keys: [id]}\npartitions: {kind: daily, start: 2099-01-01}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    assert main(["run", "--all"]) == 1
    captured = capsys.readouterr()
    assert "ingest: dataset A_LATER has no partition yet (partitions.start 2099-01-01" in (
        captured.err
    )
    assert f'{DATASET}/published: {{"rows_added": 25' in captured.out
    assert captured.err.strip().endswith("ingest: failed: A_LATER")
    with pytest.raises(SystemExit, match="A_LATER has no partition yet"):
        main(["run", "A_LATER"])
