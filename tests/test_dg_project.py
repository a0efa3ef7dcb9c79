"""The project as a `dg` project, through the real `dg` commands in a copy of it: `dg check defs`,
`dg list defs --json`, `dg launch --assets ... --partition ...` into the instance that the
project's `.env` names (as `make install` writes it), and a bad inline dataset refused by
`dg check defs` with the contract's message."""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import dagster as dg
import pytest

from ingest_assets.contract import load_config_file
from ingest_assets.stages.export import published_table
from ingest_resources.runtime import local_runtime
from tests.conftest import REPO

DG = str(Path(sys.executable).parent / "dg")
FEED = "sample_data/rss/reddit_homelab.atom.xml"
ATOM_ID = "{http://www.w3.org/2005/Atom}id"
PARTITION = "2026-01-15"
DEPRECATED = ("superseded", "deprecat", "will not be used to configure", "Warning", "suppress this")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files that `dg` reads, with one sample dataset: a temp copy."""
    root = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("ingest_assets", "ingest_resources"):
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    for name in ("pyproject.toml", "dagster.sqlite.yaml"):
        shutil.copy(REPO / name, root / name)
    (root / "dataset_configs").mkdir()
    sample = (REPO / "dataset_configs/reddit_homelab_feed.yaml").read_text()
    # declared daily (each day the feed as read that day): `dg launch --partition` is tested
    daily = "partitions: {kind: daily, start: 2025-01-01, snapshot: true}\n"
    (root / "dataset_configs/reddit_homelab_feed.yaml").write_text(sample + daily)
    (root / FEED).parent.mkdir(parents=True)
    shutil.copy(REPO / FEED, root / FEED)
    (root / ".venv").symlink_to(sys.prefix)  # the project's venv, run without activating it
    # what `make install` writes: the instance of `make dev` and `ingest run`, unless exported
    (root / ".env").write_text(f"DAGSTER_HOME=${{DAGSTER_HOME:-{root / '.dagster_home'}}}\n")
    prepared = subprocess.run(  # and `ingest instance`, as `make install` runs it
        [sys.executable, "-m", "ingest_assets.cli", "instance"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "DAGSTER_HOME": str(root / ".dagster_home")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert prepared.returncode == 0, prepared.stderr
    return root


def _dg(project: Path, *args: str, timeout: int = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "DAGSTER_"))}
    env["PYTHONPATH"] = str(project)  # (and Python's default warning filters, as a user has)
    return subprocess.run(
        [DG, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_dg_check_list_and_launch(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = _dg(project, "check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully." in checked.stdout + checked.stderr
    assert not [word for word in DEPRECATED if word in checked.stdout + checked.stderr]

    listed = _dg(project, "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert not [word for word in DEPRECATED if word in listed.stderr], listed.stderr
    found = json.loads(listed.stdout)
    config = load_config_file(project / "dataset_configs/reddit_homelab_feed.yaml")
    assert sorted(a["asset_key"] for a in found["assets"]) == sorted(
        f"REDDIT_HOMELAB_FEED/{stage}" for stage in config.stages
    )
    assert {c["key"] for c in found["asset_checks"]} >= {
        "REDDIT_HOMELAB_FEED/normalized:unique_primary_key"
    }
    assert [s["name"] for s in found["sensors"]] == ["REDDIT_HOMELAB_FEED__source_changed"]
    assert [r["name"] for r in found["resources"]] == ["ingest"]
    assert all(a["source"].endswith("defs/datasets/defs.yaml:4") for a in found["assets"])

    launched = _dg(
        project, "launch", "--assets", "key:REDDIT_HOMELAB_FEED/*", "--partition", PARTITION
    )
    output = launched.stdout + launched.stderr
    assert launched.returncode == 0, output[-3000:]
    assert "RUN_SUCCESS" in output
    assert not [word for word in DEPRECATED if word in output], output[-3000:]

    # the run is in the instance the .env names (the UI's), not a throwaway one
    monkeypatch.setenv("DAGSTER_HOME", str(project / ".dagster_home"))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
        assert runs[0].tags["dagster/partition"] == PARTITION
    # and its rows are published: every entry of the feed, once
    table = published_table(local_runtime(project / ".ingest_store").store, config, None)
    entries = ET.parse(project / FEED).getroot().iter("{http://www.w3.org/2005/Atom}entry")
    assert sorted(table.column("id").to_pylist()) == sorted(e.findtext(ATOM_ID) for e in entries)


def test_dg_check_refuses_a_bad_inline_dataset(project: Path) -> None:
    folder = project / "ingest_assets/defs/fx"
    folder.mkdir()
    (folder / "defs.yaml").write_text(
        "type: ingest_assets.components.IngestDatasets\n"
        "attributes:\n"
        "  dataset:\n"
        "    dataset_id: FX_DAILY\n"
        "    source: {kind: file, path: x.csv, format: csv}\n"
        "    checks: {max_rejected_ratio: 2}\n"
    )
    try:
        checked = _dg(project, "check", "defs")
    finally:
        shutil.rmtree(folder)
    output = checked.stdout + checked.stderr
    assert checked.returncode == 1
    assert (
        f"{folder / 'defs.yaml'}: attributes.dataset.checks.max_rejected_ratio: "
        "Input should be less than or equal to 1 (got 2)"
    ) in output


def test_the_code_location_loads_installed_without_the_checkout(tmp_path: Path) -> None:
    """An image installs the packages alone (no pyproject.toml above them) and serves
    `ingest_assets.definitions` from its working directory: the defs folder loads there too."""
    site, app = tmp_path / "site-packages", tmp_path / "app"
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("ingest_assets", "ingest_resources"):
        shutil.copytree(REPO / package, site / package, ignore=ignore)
    shutil.copytree(REPO / "dataset_configs", app / "dataset_configs")
    code = (
        "import json\n"
        "from ingest_assets.definitions import defs, project_root\n"
        "keys = defs.resolve_asset_graph().get_all_asset_keys()\n"
        "print(json.dumps([str(project_root()), sorted(k.to_user_string() for k in keys)]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "INGEST_CONFIG_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=app,
        env={**env, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    root, keys = json.loads(done.stdout.splitlines()[-1])
    assert root == str(app)
    assert "REDDIT_HOMELAB_FEED/published" in keys and "BCRA_INFOMONDIA/raw" in keys
    assert "ingest/config_errors" not in keys
