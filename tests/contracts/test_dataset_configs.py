"""Every dataset YAML shipped in dataset_configs/ validates, and its sample data is there."""

from pathlib import Path

import pytest

from ingest_assets.cli import main
from ingest_assets.contract import config_files, load_config_file, load_configs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "dataset_configs"
SHIPPED = config_files(CONFIG_DIR)


def test_there_are_shipped_configs() -> None:
    assert SHIPPED, f"no YAML files in {CONFIG_DIR}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_validates(path: Path) -> None:
    config = load_config_file(path)
    if config.source.kind == "file":
        source = Path(config.source.path)
        source = source if source.is_absolute() else PROJECT_ROOT / source
        assert source.is_file(), f"{path.name}: source.path {config.source.path} not found"


def test_shipped_configs_load_together() -> None:
    configs = load_configs(SHIPPED)
    assert len(configs) == len(SHIPPED)
    assert len({c.dataset_id for c in configs}) == len(configs)


def test_validate_command_on_shipped_configs(monkeypatch, capsys) -> None:
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(CONFIG_DIR))
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.strip() == f"ok: {len(SHIPPED)} dataset(s) valid"
