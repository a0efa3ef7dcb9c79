"""A snapshot of the generated asset graph: a change to keys, deps, groups or partitions shows up
in review. Regenerate with UPDATE_SNAPSHOTS=1 after an intended change."""

import json
import os

import dagster as dg
import pytest

from ingest_assets.definitions import build_definitions
from tests.conftest import REPO

SNAPSHOT = REPO / "tests" / "snapshots" / "asset_graph.json"


def _graph() -> dict:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for check_key in graph.asset_check_keys:
        checks.setdefault(check_key.asset_key.to_user_string(), []).append(check_key.name)
    nodes = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        nodes[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": type(partitions).__name__ if partitions else None,
            "partitions_start": str(partitions.start.date()) if partitions is not None else None,
            "tags": dict(sorted(node.tags.items())),
            "checks": sorted(checks.get(key.to_user_string(), [])),
        }
    return nodes


def test_asset_graph_matches_snapshot():
    graph = _graph()
    if os.environ.get("UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(graph, indent=2, sort_keys=True) + "\n")
    assert graph == json.loads(SNAPSHOT.read_text())


def test_every_dataset_is_a_four_stage_chain_in_its_own_group():
    graph = _graph()
    datasets = {key.split("/")[0] for key in graph}
    for dataset_id in datasets:
        assert graph[f"{dataset_id}/parsed"]["deps"] == [f"{dataset_id}/raw"]
        assert graph[f"{dataset_id}/normalized"]["deps"] == [f"{dataset_id}/parsed"]
        assert graph[f"{dataset_id}/published"]["deps"] == [f"{dataset_id}/normalized"]
        assert {
            graph[f"{dataset_id}/{s}"]["group"]
            for s in ("raw", "parsed", "normalized", "published")
        } == {dataset_id}


def test_definitions_use_the_in_process_executor():
    defs = build_definitions()
    assert defs.executor is dg.in_process_executor or defs.executor.name == "in_process"


def test_two_hundred_datasets_build_quickly(tmp_path, monkeypatch):
    """Load cost is paid by every run process; 200 configs must stay far under a generous bound.
    About 0.8 s on a 2-core machine (bench/definitions_bench.py measures 10 to 1,000 datasets
    against bare assets); the bound leaves room for a slow CI machine."""
    import time

    source = (REPO / "dataset_configs" / "reddit_homelab_feed.yaml").read_text()
    sample = str(REPO / "sample_data")
    for number in range(200):
        text = source.replace("REDDIT_HOMELAB_FEED", f"FEED_{number}").replace(
            "sample_data", sample
        )
        (tmp_path / f"feed_{number}.yaml").write_text(text)
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(tmp_path))
    started = time.perf_counter()
    defs = build_definitions()
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    elapsed = time.perf_counter() - started
    assert len(keys) == 800
    assert elapsed < 10, f"building 200 datasets took {elapsed:.1f}s"


@pytest.mark.parametrize(
    ("kind", "start", "first", "second"),
    [
        ("daily", "2024-01-03", "2024-01-03", "2024-01-04"),
        ("weekly", "2024-01-01", "2024-01-01", "2024-01-08"),  # a Monday: weeks from Mondays
        ("weekly", "2024-01-07", "2024-01-07", "2024-01-14"),  # a Sunday
        ("monthly", "2024-01-15", "2024-01-01", "2024-02-01"),  # the month start falls in
        ("hourly", "2024-01-01T05:00:00", "2024-01-01-05:00", "2024-01-01-06:00"),
    ],
)
def test_the_first_partition_is_the_one_start_falls_in(kind, start, first, second):
    from ingest_assets.contract import Partitions
    from ingest_assets.orchestration.partitions import partitions_definition

    keys = partitions_definition(Partitions(kind=kind, start=start)).get_partition_keys()
    assert keys[:2] == [first, second]
