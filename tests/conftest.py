"""Shared fixtures: an isolated store and Dagster home per test, and small dataset builders."""

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from ingest_assets.configs import load_config_file
from ingest_assets.stages import Runtime, local_runtime

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store and Dagster home; the sample configs stay the default."""
    monkeypatch.setenv("INGEST_STORE_ROOT", str(tmp_path / "store"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(REPO / "dataset_configs"))
    monkeypatch.delenv("INGEST_PROJECT_ROOT", raising=False)
    (tmp_path / "dagster_home").mkdir()
    return tmp_path


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return local_runtime(tmp_path / "store")


@pytest.fixture
def write_dataset(tmp_path: Path):
    """Write a dataset YAML (and optionally its CSV) under tmp_path; returns the loaded config."""

    def write(yaml_text: str, name: str = "dataset.yaml"):
        config_dir = tmp_path / "configs"
        config_dir.mkdir(exist_ok=True)
        path = config_dir / name
        path.write_text(textwrap.dedent(yaml_text))
        return load_config_file(path)

    return write


TODAY = dt.date(2026, 11, 22)
