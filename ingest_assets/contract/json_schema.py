"""The JSON Schema of a dataset YAML file, for editors that complete and check its keys.

Built from the contract's pydantic models (`DatasetConfig`), as the YAML spells its keys (the
models' aliases: `normalize.schema`, `publish.postgres.schema`). Pure: no Dagster, no I/O.

The schema checks the shape of a file (keys, types, enums, patterns, ranges); the rules that
span keys (a `kind: http` source needs `url`, a series parser needs `parse_config.series_map`,
...) are the models' validators, run by `ingest validate`. docs/contract.md has both.
"""

from typing import Any

from ingest_assets.contract.models import DatasetConfig

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "Ingest dataset config"
DESCRIPTION = (
    "One dataset of Ingest: a YAML file in dataset_configs/ (INGEST_CONFIG_DIR). "
    "`ingest validate` checks what the schema cannot: the rules that span keys."
)


def contract_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of one dataset YAML file, without `$id`: the keys as the
    YAML spells them, every model closed (`additionalProperties: false`), nested models under
    `$defs`. `ingest schema > ingest.schema.json` writes it."""
    generated = DatasetConfig.model_json_schema(by_alias=True, mode="validation")
    generated.pop("title", None)
    generated.pop("description", None)
    generated.pop("$id", None)
    return {"$schema": DIALECT, "title": TITLE, "description": DESCRIPTION, **generated}
