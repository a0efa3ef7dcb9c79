"""Shared helpers for the parser tests: where the real data files are, and how to run a parser.

The real files live in `tests/fixtures/` (byte-for-byte copies of the team's shared fixtures,
with provenance). Where the project ships a copy in `sample_data/`, that copy is used.
"""

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from ingest_assets.contract import DatasetConfig, parse_config
from ingest_assets.parsers import ParseContext, parse_raw

HERE = Path(__file__).resolve()
REPO_ROOT = HERE.parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SAMPLE_DATA = REPO_ROOT / "sample_data"

# fixture (relative to tests/fixtures) -> its copy in sample_data/
SAMPLE_COPIES = {
    "csv/indec_serie_ipc_divisiones_latin1_decimal_comma.csv": "indec/serie_ipc_divisiones.csv",
    "xlsx/bcra_infomondia.xlsx": "bcra/infomondia.xlsx",
    "json/bcra_v4_monetarias_utf16le.json": "json/bcra_monetarias.json",
    "rss/reddit_atom_mediarss_25_entries.xml": "rss/reddit_homelab.atom.xml",
}

DATASET_ID = "PARSER_TEST_DS"


def data_path(relative: str) -> Path:
    """A real data file: the sample_data copy when the project has one, else tests/fixtures."""
    copy = SAMPLE_COPIES.get(relative)
    path = SAMPLE_DATA / copy if copy else FIXTURES / relative
    assert path.is_file(), f"real data file missing: {path}"
    return path


def make_config(
    source: dict, *, keys: list[str] | None = None, dataset_id: str = DATASET_ID, **extra
) -> DatasetConfig:
    """A validated dataset contract around `source` (kind/path filled in)."""
    data: dict = {
        "dataset_id": dataset_id,
        "source": {"kind": "file", "path": "unused/by/the/parser", **source},
    }
    if keys is not None:
        data["normalize"] = {"primary_keys": keys}
    data.update(extra)
    return parse_config(data, "test.yaml")


def run_parse(data: bytes, config: DatasetConfig, source_name: str = "test-source") -> pa.Table:
    return parse_raw(data, ParseContext(config, source_name))


@pytest.fixture(scope="session")
def fixture_file() -> Callable[[str], Path]:
    """`fixture_file("csv/x.csv")`: the path of a real data file (see `data_path`)."""
    return data_path


@pytest.fixture(scope="session")
def config() -> Callable[..., DatasetConfig]:
    """`config(source, keys=[...], dataset_id=..., **contract)`: a validated contract."""
    return make_config


@pytest.fixture(scope="session")
def run() -> Callable[..., pa.Table]:
    """`run(data, config, source_name)`: parse_raw with a ParseContext."""
    return run_parse


@pytest.fixture(scope="session")
def parse() -> Callable[..., pa.Table]:
    """`parse(path, source={...}, keys=[...], **contract)`: run parse_raw on a real file."""

    def _parse(path: Path, source: dict, *, keys: list[str] | None = None, **extra) -> pa.Table:
        cfg = make_config(source, keys=keys, **extra)
        return run_parse(path.read_bytes(), cfg, str(path))

    return _parse


@pytest.fixture(scope="session")
def infomondia_bytes() -> bytes:
    return data_path("xlsx/bcra_infomondia.xlsx").read_bytes()
