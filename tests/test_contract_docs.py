"""docs/contract.md against the contract's models, and the JSON Schema against the dataset files.

The models are walked from `DatasetConfig` (fields and their annotations, through Optional,
unions, lists, dicts and Annotated) into the set of YAML key paths, written as the doc writes
them: `a.b` for a nested key, `a[].b` for a key of each list item, `a.<name>.b` for a key inside
the value of a mapping whose keys the user chooses (any `<...>` matches any other). The doc's
key tables (header `| key | type | default | meaning |`) name one path per row, in backticks.
"""

import collections.abc
import datetime as dt
import json
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

try:
    from ingest_assets.contract.models import DatasetConfig
except ImportError:  # (the layout before `contract` became a package: one module)
    from ingest_assets.contract import DatasetConfig
from ingest_assets.contract.json_schema import contract_json_schema

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_DOC = ROOT / "docs" / "contract.md"
DATASET_CONFIGS = sorted((ROOT / "dataset_configs").glob("*.y*ml"))
STORE_FIXTURE_CONFIGS = sorted(
    (ROOT / "tests" / "fixtures" / "stores" / "v1_configs").glob("*.y*ml")
)

KEY_TABLE_HEADER = ["key", "type", "default", "meaning"]
ANY_NAME = "<*>"  # a mapping's key chosen by the user, however the doc names it
PLACEHOLDER = re.compile(r"<[^<>\s`]+>")
LIST_ORIGINS = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)
DICT_ORIGINS = (dict, collections.abc.Mapping)


# --- the models ----------------------------------------------------------------------------


def yaml_name(name: str, info: FieldInfo) -> str:
    """The key as a YAML file spells it: the field's alias, if it has one."""
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return info.alias or name


def nested_models(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """Each model inside `annotation`, with how it nests: "" (the value itself), "[]" (an item
    of a list), ".<*>" (a value of a mapping), or a combination (a list of mappings...)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from nested_models(get_args(annotation)[0])
    elif origin in (Union, types.UnionType):
        for member in get_args(annotation):
            yield from nested_models(member)
    elif origin in LIST_ORIGINS:
        for item in get_args(annotation):
            if item is not Ellipsis:
                for model, nesting in nested_models(item):
                    yield model, "[]" + nesting
    elif origin in DICT_ORIGINS:
        args = get_args(annotation)
        for model, nesting in nested_models(args[1]) if len(args) == 2 else ():
            yield model, f".{ANY_NAME}" + nesting
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, ""


def model_fields(
    model: type[BaseModel] = DatasetConfig, prefix: str = "", seen: tuple[type, ...] = ()
) -> Iterator[tuple[str, FieldInfo]]:
    """(path, field) of every key of `model` and of the models it nests, depth first."""
    for name, info in model.model_fields.items():
        path = prefix + yaml_name(name, info)
        yield path, info
        for nested, nesting in nested_models(info.annotation):
            if nested not in seen:  # (a recursive model: its keys are listed once)
                yield from model_fields(nested, f"{path}{nesting}.", (*seen, model))


MODEL_FIELDS: dict[str, FieldInfo] = dict(model_fields())


# --- the doc -------------------------------------------------------------------------------


def cells(line: str) -> list[str]:
    """A Markdown table row's cells (an escaped `\\|` stays inside its cell)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def canonical(path: str) -> str:
    return PLACEHOLDER.sub(ANY_NAME, path)


def key_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every row of every key table of the doc."""
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        if lines[number].lstrip().startswith("|") and cells(lines[number]) == KEY_TABLE_HEADER:
            number += 2  # the header and its |---| line
            while number < len(lines) and lines[number].lstrip().startswith("|"):
                yield number + 1, cells(lines[number])
                number += 1
        number += 1


FIRST_CELL = re.compile(r"^`([^`]+)`$")


def documented() -> dict[str, list[tuple[int, list[str]]]]:
    """Canonical path -> the rows documenting it (line number, cells)."""
    rows: dict[str, list[tuple[int, list[str]]]] = {}
    malformed = []
    for number, row in key_rows(CONTRACT_DOC.read_text(encoding="utf-8")):
        found = FIRST_CELL.match(row[0])
        if len(row) != len(KEY_TABLE_HEADER) or found is None:
            malformed.append(f"line {number}: {' | '.join(row)}")
            continue
        rows.setdefault(canonical(found.group(1)), []).append((number, row))
    assert not malformed, (
        f"{CONTRACT_DOC.name}: key table rows need 4 cells and one backticked path first:\n"
        + "\n".join(malformed)
    )
    return rows


@pytest.fixture(scope="module")
def doc_rows() -> dict[str, list[tuple[int, list[str]]]]:
    rows = documented()
    assert rows, f"{CONTRACT_DOC} has no `| key | type | default | meaning |` table"
    return rows


def test_every_model_key_is_documented(doc_rows: dict) -> None:
    missing = [path for path in MODEL_FIELDS if path not in doc_rows]
    assert not missing, (
        f"{len(missing)} key(s) of the contract's models are not in {CONTRACT_DOC.name}; add a "
        "row for each:\n" + "\n".join(missing)
    )


def test_no_documented_key_is_stale(doc_rows: dict) -> None:
    stale = [
        f"{path} (line {rows[0][0]})" for path, rows in doc_rows.items() if path not in MODEL_FIELDS
    ]
    assert not stale, (
        f"{len(stale)} key(s) of {CONTRACT_DOC.name} are not in the contract's models (renamed or "
        "removed?):\n" + "\n".join(stale)
    )


def test_each_key_is_documented_once(doc_rows: dict) -> None:
    repeated = [
        f"{path} (lines {', '.join(str(number) for number, _ in rows)})"
        for path, rows in doc_rows.items()
        if len(rows) > 1
    ]
    assert not repeated, "keys documented more than once:\n" + "\n".join(repeated)


def _plain_default(info: FieldInfo) -> object:
    """The field's default when it is a plain scalar (else None: nothing to compare)."""
    if info.is_required() or info.default_factory is not None:
        return None
    default = info.default
    return default if isinstance(default, str | int | float | bool) else None


def test_documented_defaults_match_the_models(doc_rows: dict) -> None:
    """`required` exactly for the required keys, and a plain default (a text, number or
    boolean) written first in its cell, in backticks, as YAML."""
    wrong = []
    for path, info in MODEL_FIELDS.items():
        if path not in doc_rows:
            continue  # (reported by test_every_model_key_is_documented)
        number, row = doc_rows[path][0]
        cell = row[KEY_TABLE_HEADER.index("default")]
        if info.is_required() != (cell == "required"):
            expected = "required" if info.is_required() else "not `required`"
            wrong.append(f"line {number}: {path}: default {cell!r}, expected {expected}")
            continue
        default = _plain_default(info)
        if default is None:
            continue
        token = re.match(r"^`([^`]*)`", cell)
        written = yaml.safe_load(token.group(1)) if token else None
        if written != default or isinstance(written, bool) != isinstance(default, bool):
            wrong.append(
                f"line {number}: {path}: default {cell!r}, the model's is {json.dumps(default)}"
            )
    assert not wrong, "defaults in the doc that differ from the models:\n" + "\n".join(wrong)


def test_the_walk_sees_nested_models_and_aliases() -> None:
    """The walk itself: list items, mapping values and aliases are followed."""
    for path in (
        "source.pagination.page_param",
        "source.retry.max_attempts",
        "parse_config.series_map[].internal_series_code",
        f"checks.ranges.{ANY_NAME}.min",
        "normalize.schema",
        "publish.postgres.schema",
    ):
        assert path in MODEL_FIELDS, path
    assert "normalize.schema_" not in MODEL_FIELDS


# --- the JSON Schema -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return contract_json_schema()


def test_schema_is_draft_2020_12_json(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    assert "$id" not in schema
    assert json.loads(json.dumps(schema)) == schema  # JSON through and through


def test_schema_properties_are_the_yaml_keys(schema: dict[str, Any]) -> None:
    fields = DatasetConfig.model_fields
    assert set(schema["properties"]) == {yaml_name(n, f) for n, f in fields.items()}
    assert set(schema["required"]) == {
        yaml_name(n, f) for n, f in fields.items() if f.is_required()
    }
    assert schema["additionalProperties"] is False
    normalize = schema["$defs"]["Normalize"]["properties"]
    assert "schema" in normalize and "schema_" not in normalize


@pytest.mark.parametrize("path", DATASET_CONFIGS, ids=lambda p: p.name)
def test_dataset_config_keys_are_in_the_schema(schema: dict[str, Any], path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    unknown = sorted(set(data) - set(schema["properties"]))
    assert not unknown, f"{path.name}: top-level keys missing from the schema: {unknown}"


def _valid_configs() -> list[Any]:
    """Every config the project holds as valid: dataset_configs/, the store fixtures' configs,
    the examples and the table of valid configs of tests/contracts/."""
    from tests.contracts import examples
    from tests.contracts.test_contract_tables import VALID_CONFIGS

    found = [
        pytest.param(path.read_text(encoding="utf-8"), id=str(path.relative_to(ROOT)))
        for path in DATASET_CONFIGS + STORE_FIXTURE_CONFIGS
    ]
    found += [
        pytest.param(examples.BCRA_TC_OFICIAL, id="examples.BCRA_TC_OFICIAL"),
        pytest.param(examples.WHOLE_CONTRACT, id="examples.WHOLE_CONTRACT"),
        pytest.param(examples.minimal(), id="examples.minimal"),
    ]
    found += [pytest.param(p.values[0], id=f"VALID_CONFIGS.{p.id}") for p in VALID_CONFIGS]
    return found


def as_json(value: object) -> object:
    """A loaded YAML document as JSON holds it (what an editor checks): dates as ISO text,
    mapping keys as text."""
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: Any, data: object) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top level)'}: {error.message}"
        for error in validator.iter_errors(data)
    ]


@pytest.mark.parametrize("text", _valid_configs())
def test_valid_configs_pass_the_schema(validator: Any, text: str) -> None:
    data = yaml.safe_load(text)
    DatasetConfig.model_validate(data)  # valid for the models, as the tables say
    errors = _errors(validator, as_json(data))
    assert not errors, "refused by the JSON Schema:\n" + "\n".join(errors)


def test_schema_refuses_unknown_keys_and_wrong_types(validator: Any) -> None:
    from tests.contracts.examples import minimal

    data = as_json(yaml.safe_load(minimal()))
    data["source"]["urll"] = "https://example.org"
    data["source"]["header_row"] = 0
    data["partitions"] = {"kind": "yearly"}
    errors = _errors(validator, data)
    assert any(e.startswith("source:") and "urll" in e for e in errors), errors
    assert any(e.startswith("source.header_row:") for e in errors), errors
    assert any(e.startswith("partitions.kind:") for e in errors), errors
