"""The `IngestDatasets` component, loaded by Dagster's own component test sandbox: over a folder it
builds what `build_definitions` builds; one dataset inline in a `defs.yaml` builds and runs; a bad
inline contract fails with the contract's own messages."""

import dataclasses
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from ingest_assets.components import IngestDatasets
from ingest_assets.contract import ConfigProblems, config_files, load_configs, parse_config
from ingest_assets.definitions import build_definitions
from ingest_assets.eventstore.chain import read_current
from ingest_resources.resource import IngestResource
from ingest_resources.runtime import local_runtime
from tests.conftest import REPO

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")  # Dagster's own code refs

TYPE = "ingest_assets.components.IngestDatasets"
SAMPLES = load_configs(config_files(REPO / "dataset_configs"))
FEED = REPO / "sample_data" / "rss" / "reddit_homelab.atom.xml"
INLINE = {  # the REDDIT_HOMELAB_FEED sample, renamed, its source by absolute path
    "dataset_id": "INLINE_FEED",
    "description": "An Atom feed declared in a defs.yaml",
    "source": {"kind": "file", "path": str(FEED), "format": "rss"},
    "normalize": {"time_column": "published"},
    # (daily: each day the feed as read that day; the sample itself is unpartitioned)
    "partitions": {"kind": "daily", "start": "2025-01-01", "snapshot": True},
}


def _shape(defs: dg.Definitions) -> dict[str, object]:
    """What the code location shows: asset keys, check keys, sensors, schedules, resources."""
    repository = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "checks": sorted(
            f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys
        ),
        "sensors": sorted(s.name for s in repository.sensor_defs),
        "schedules": sorted(s.name for s in repository.schedule_defs),
        "resources": sorted(defs.resources or {}),
    }


def _load(attributes: dict | None) -> dg.Definitions:
    body: dict = {"type": TYPE} | ({"attributes": attributes} if attributes else {})
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(IngestDatasets, defs_yaml_contents=body)
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, IngestDatasets)
            defs.get_repository_def()  # resolved inside the sandbox, as a code location is
            return defs


def test_a_folder_builds_what_build_definitions_builds() -> None:
    from_component = _shape(_load({"config_dir": str(REPO / "dataset_configs")}))
    expected = _shape(build_definitions(SAMPLES))
    assert from_component == expected
    assert len(expected["assets"]) >= 4 * len(SAMPLES)
    assert {"REDDIT_HOMELAB_FEED__source_changed"} <= set(expected["sensors"])
    assert expected["schedules"] and expected["checks"] and expected["resources"] == ["ingest"]


def test_without_attributes_it_reads_ingest_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "feed.yaml").write_text(yaml.safe_dump(INLINE))
    (configs / "broken.yaml").write_text("dataset_id: BROKEN\nsource: {kind: nope}\n")
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    shape = _shape(_load(None))
    # the broken file is shown as `ingest/config_errors`, as ingest_assets.definitions does
    assert shape["assets"] == [
        "INLINE_FEED/normalized",
        "INLINE_FEED/parsed",
        "INLINE_FEED/published",
        "INLINE_FEED/raw",
        "ingest/config_errors",
    ]
    assert shape["sensors"] == ["ingest_config_errors"]


def test_one_dataset_inline_builds_and_runs(tmp_path: Path) -> None:
    defs = _load({"dataset": INLINE})
    assert _shape(defs) == _shape(build_definitions([parse_config(INLINE, "inline.yaml")]))
    resource = defs.resources["ingest"]
    assert isinstance(resource, IngestResource)
    assert resource.store_root == str(tmp_path / "store")  # bound from the environment
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(partition_key="2026-01-15", instance=instance).success
    manifest, _ = read_current(local_runtime(tmp_path / "store").store, "INLINE_FEED")
    assert manifest is not None
    assert manifest.rows_total == manifest.counts["added"] == FEED.read_text().count("<entry>")


@pytest.mark.parametrize(
    "broken",
    [
        {"partitions": {"kind": "daily", "start": "2025-01-01", "snapshot": True, "bogus": 1}},
        {"checks": {"max_rejected_ratio": 2}, "source": {"kind": "file", "format": "rss"}},
        {"dataset_id": "1bad"},
    ],
    ids=["unknown-key", "out-of-range-and-missing", "bad-id"],
)
def test_a_bad_inline_contract_fails_with_the_contracts_messages(broken: dict) -> None:
    contract = INLINE | broken
    with pytest.raises(ConfigProblems) as as_a_file:
        parse_config(contract, "dataset.yaml")
    with pytest.raises(Exception) as inline:
        _load({"dataset": contract})
    cause = inline.value
    while not isinstance(cause, ConfigProblems) and cause.__cause__ is not None:
        cause = cause.__cause__  # Dagster wraps it, naming the component
    assert isinstance(cause, ConfigProblems)
    assert str(cause.config_problems[0]).split(": ")[0].endswith("defs.yaml")
    expected = [
        dataclasses.replace(p, file="", field=f"attributes.dataset.{p.field}")
        for p in as_a_file.value.config_problems
    ]
    assert [dataclasses.replace(p, file="") for p in cause.config_problems] == expected


def test_config_dir_and_dataset_together_are_refused() -> None:
    with pytest.raises(Exception) as raised:
        _load({"config_dir": "dataset_configs", "dataset": INLINE})
    assert "give either `config_dir` (a folder of dataset YAMLs) or `dataset`, not both" in (
        _messages(raised.value)
    )


def _messages(exc: BaseException | None) -> str:
    found = []
    while exc is not None:
        found.append(str(exc))
        exc = exc.__cause__
    return "\n".join(found)


def test_two_components_in_one_defs_folder_merge(tmp_path: Path) -> None:
    """A folder of YAMLs and an inline dataset side by side: one `ingest` resource (the same
    object, as `Definitions.merge` requires), the assets of both."""
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(REPO / "dataset_configs/reddit_homelab_feed.yaml", configs)
    with create_defs_folder_sandbox() as sandbox:
        for name, attributes in (
            ("folder", {"config_dir": str(configs)}),
            ("fx", {"dataset": INLINE}),
        ):
            body = {"type": TYPE, "attributes": attributes}
            sandbox.scaffold_component(IngestDatasets, defs_path=name, defs_yaml_contents=body)
        with sandbox.build_all_defs() as defs:
            shape = _shape(defs)
    assert shape["resources"] == ["ingest"]
    assert {key.split("/")[0] for key in shape["assets"]} == {"REDDIT_HOMELAB_FEED", "INLINE_FEED"}
    assert shape["sensors"] == ["REDDIT_HOMELAB_FEED__source_changed"]


def test_dg_scaffold_writes_one_dataset_to_fill_in() -> None:
    """What `dg scaffold defs ingest_assets.components.IngestDatasets fx_daily` writes: a valid
    inline contract named after the folder (not a second reader of INGEST_CONFIG_DIR)."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(IngestDatasets, defs_path="fx_daily")
        written = yaml.safe_load((path / "defs.yaml").read_text())
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            shape = _shape(defs)
    assert written["type"] == "ingest_assets.components.datasets.IngestDatasets"
    assert written["attributes"]["dataset"]["dataset_id"] == "FX_DAILY"
    assert shape["assets"] == [
        f"FX_DAILY/{stage}" for stage in ("normalized", "parsed", "published", "raw")
    ]
