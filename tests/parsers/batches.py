"""Reading a file as the parsed stage does (`parse_batches`: inflating, the magic-byte check,
streaming), with the notes the parser made."""

from pathlib import Path

import pyarrow as pa
import yaml

from ingest_assets.contract import DatasetConfig, load_configs
from ingest_assets.parsers import ParseContext
from ingest_assets.parsers.base import parse_batches
from tests.parsers.conftest import make_config


def read_file(
    path: Path, source: dict, *, content_type: str | None = None, **contract
) -> tuple[pa.Table, list[str]]:
    """The parsed rows of `path` (all batches) and the parser's notes."""
    ctx = ParseContext(make_config(source, **contract), str(path), content_type=content_type)
    return pa.concat_tables(parse_batches(path, ctx)), ctx.notes


def dataset_file(folder: Path, dataset_id: str, source: dict, keys: list[str]) -> Path:
    """A dataset YAML for a file source (`source` holds path, format, ...), written in `folder`."""
    path = folder / f"{dataset_id.lower()}.yaml"
    contract = {
        "dataset_id": dataset_id,
        "source": {
            "kind": "file",
            **{k: str(v) if isinstance(v, Path) else v for k, v in source.items()},
        },
        "normalize": {"primary_keys": keys},
    }
    path.write_text(yaml.safe_dump(contract, allow_unicode=True))
    return path


def file_dataset(folder: Path, dataset_id: str, source: dict, keys: list[str]) -> DatasetConfig:
    """The same, loaded as `ingest` loads it."""
    return load_configs([dataset_file(folder, dataset_id, source, keys)])[0]
