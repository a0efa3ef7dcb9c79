"""Every sample dataset through Dagster, twice: the second run publishes nothing new."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from ingest_assets.contract import config_files, load_configs
from ingest_assets.orchestration.factory import dataset_assets
from ingest_assets.orchestration.partitions import partitions_definition
from ingest_resources.resource import IngestResource
from tests.conftest import REPO

SAMPLES = load_configs(config_files(REPO / "dataset_configs"))


def _materialize(config, instance):
    partitions = partitions_definition(config.partitions)
    result = dg.materialize(
        dataset_assets(config),
        instance=instance,
        partition_key=partitions.get_last_partition_key() if partitions else None,
        resources={"ingest": IngestResource.from_env()},
    )
    assert result.success
    materializations = [
        e.event_specific_data.materialization for e in result.get_asset_materialization_events()
    ]
    return {
        m.asset_key.path[-1]: {k: v.value for k, v in m.metadata.items()} for m in materializations
    }


@pytest.mark.parametrize("config", SAMPLES, ids=lambda c: c.dataset_id)
def test_sample_dataset_runs_twice_exactly_once(config):
    with dg.DagsterInstance.ephemeral() as instance:
        first = _materialize(config, instance)
        second = _materialize(config, instance)
    # without INGEST_POSTGRES_URL the warehouse materializes nothing (and says why)
    assert set(first) == set(config.stages) - {"warehouse"}
    assert config.stages[:4] == ["raw", "parsed", "normalized", "published"]
    normalized = first["normalized"]["dagster/row_count"]
    assert normalized > 0 and first["normalized"]["rows_rejected"] == 0
    assert first["published"]["rows_added"] == normalized
    assert first["published"]["new_version"] is True
    assert second["published"]["rows_added"] == second["published"]["rows_revised"] == 0
    assert second["published"]["new_version"] is False
    assert second["published"]["version"] == first["published"]["version"]
    assert second["raw"]["sha256"] == first["raw"]["sha256"]
    assert first["published"]["notification"].startswith("not configured")
    if config.is_series:  # a chart per series on every published materialization
        chart = first["published"]["series"]  # markdown text
        codes = [e.internal_series_code for e in config.parse_config.series_map]
        assert all(f"| {code} |" in chart for code in codes)
        assert second["published"]["series"] == chart  # a re-run that found nothing new too


def test_sample_row_counts_match_the_source_files():
    """Known sizes of the shipped files: a parser regression shows up here."""
    expected = {
        "BCRA_INFOMONDIA": 13423,  # 5 series, 2017-01-01 .. 2025-08-12, empty cells skipped
        "INDEC_IPC_DIVISIONES": 13482,
        "BCRA_MONETARIAS_CATALOG": 1000,
        "REDDIT_HOMELAB_FEED": 25,
    }
    with dg.DagsterInstance.ephemeral() as instance:
        counts = {
            c.dataset_id: _materialize(c, instance)["published"]["rows_added"]
            for c in SAMPLES
            if c.dataset_id in expected
        }
    assert counts == expected


def test_dagster_cli_materializes_a_dataset(isolated_env):
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    command = [
        os.path.join(bin_dir, "dagster"),
        "asset",
        "materialize",
        "-m",
        "ingest_assets.definitions",
        "--select",
        "key:BCRA_MONETARIAS_CATALOG/*",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr
    manifest = (
        isolated_env
        / "store"
        / "datasets"
        / "BCRA_MONETARIAS_CATALOG"
        / "current"
        / "manifest.json"
    )
    assert manifest.exists()


def test_rejected_rows_fail_the_run_and_leave_current_untouched(tmp_path, isolated_env):
    from ingest_assets.contract import parse_config
    from ingest_assets.eventstore import read_current
    from ingest_resources.runtime import local_runtime

    csv = tmp_path / "rates.csv"
    csv.write_text("id,value\n1,10\n2,11\n")
    config = parse_config(
        {
            "dataset_id": "GUARDED",
            "source": {"kind": "file", "path": str(csv), "format": "csv"},
            "normalize": {"primary_keys": ["id"], "schema": {"value": "float64"}},
            "checks": {"ranges": {"value": {"max": 100}}},
        },
        "guarded.yaml",
    )
    with dg.DagsterInstance.ephemeral() as instance:
        first = _materialize(config, instance)
        assert first["published"]["rows_added"] == 2
        store = local_runtime(isolated_env / "store").store
        before = read_current(store, "GUARDED")

        def failing_run(rows: str) -> str:
            csv.write_text("id,value\n" + rows)
            failed = dg.materialize(
                dataset_assets(config),
                instance=instance,
                resources={"ingest": IngestResource.from_env()},
                raise_on_error=False,
            )
            assert not failed.success
            failure = next(e for e in failed.all_events if e.is_step_failure)
            assert failure.step_key == "GUARDED__normalized"
            materialized = {e.asset_key.path[-1] for e in failed.get_asset_materialization_events()}
            assert "published" not in materialized
            assert "blocking asset check failed" in failure.step_failure_data.error.message
            evaluations = failed.get_asset_check_evaluations()
            return "; ".join(
                f"{e.check_name}: {e.description}" for e in evaluations if not e.passed
            )

        assert "1 of 3 rows rejected" in failing_run("1,10\n2,oops\n3,12\n")
        message = failing_run("1,10\n2,11\n3,500\n")
        assert "range__value: 1 of 3 rows outside [None, 100.0]" in message
    assert read_current(store, "GUARDED") == before
