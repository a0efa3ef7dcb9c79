"""Loading dataset YAML files into contracts, with errors that name file, field and expectation.

Also where `${ENV_NAME}` placeholders are resolved (at run time, never at load time) and where
their values are masked out of anything that could be logged.
"""

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from ingest_assets.contract import DatasetConfig

ENV_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.field}: {self.message}"
            if self.field
            else f"{self.file}: {self.message}"
        )


class ConfigError(Exception):
    """One or more problems in dataset configuration files."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MissingEnvError(KeyError):
    def __init__(self, dataset_id: str, field: str, name: str):
        self.name = name
        self.message = f"dataset {dataset_id}: {field} uses ${{{name}}} but environment variable {name} is not set"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _field_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


PATTERN_HINTS = {
    "dataset_id": "a letter followed by up to 63 letters, digits or underscores",
    "schema": "one of string, int64, float64, bool, date, timestamp, decimal(p,s)",
}


def _describe(error: Mapping, loc: list) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (not part of the dataset contract; check its spelling)"
    if kind == "missing":
        return "required key is missing"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "string_pattern_mismatch":
        hint = next((h for part, h in PATTERN_HINTS.items() if part in loc), None)
        message = f"expected {hint or 'a string matching ' + error['ctx']['pattern']}"
    if (
        "input" in error
        and kind not in ("value_error", "contract")
        and not isinstance(error["input"], dict)
    ):
        message += f" (got {error['input']!r})"
    return message


_MISSING = object()


def _user_path(data: object, loc: tuple) -> list:
    """The error location as the user wrote it: pydantic adds union-member names (`str`, `date`,
    ...) after a scalar input; those are dropped, while keys of the user's mappings are kept."""
    kept, node = [], data
    for part in loc:
        if isinstance(node, dict):
            kept.append(part)
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and isinstance(part, int):
            kept.append(part)
            node = node[part] if part < len(node) else _MISSING
        elif node is _MISSING:
            kept.append(part)
        # else: the input here is a scalar and `part` names a union member: skip it
    return kept


def problems_from_validation(file: str, exc: ValidationError, data: object = None) -> list[Problem]:
    by_field: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = _user_path(data, error["loc"]) if data is not None else list(error["loc"])
        extra = (error.get("ctx") or {}).get("field")
        if extra:
            loc += extra.split(".")
        messages = by_field.setdefault(_field_path(loc), [])
        message = _describe(error, loc)
        if message not in messages:
            messages.append(message)
    # a value refused by every member of a union gives one line, its alternatives joined
    return [Problem(file, field, "; or ".join(messages)) for field, messages in by_field.items()]


def parse_config(data: object, file: str) -> DatasetConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(file, "", "expected a mapping of contract keys at the top level")]
        )
    try:
        return DatasetConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(file, exc, data)) from None


class _UniqueKeys:
    """Refuses a key written twice in one mapping (YAML itself would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _PureLoader(_UniqueKeys, yaml.SafeLoader):
    pass


# libyaml's parser when PyYAML was built with it: about 6x faster than the pure-Python one.
class _FastLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


def parse_yaml(text: str) -> object:
    try:
        return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        # libyaml words some errors differently: report the pure-Python parser's own message
        return yaml.load(text, Loader=_PureLoader)  # noqa: S506 - a safe loader


def load_config_file(path: Path | str) -> DatasetConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), "", f"cannot read file: {exc.strerror}")]) from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(str(path), "", f"invalid YAML: {where}{problem}")]) from None
    return parse_config(data, str(path))


def config_files(config_dir: Path) -> list[Path]:
    if not config_dir.is_dir():
        raise ConfigError([Problem(str(config_dir), "", "config directory does not exist")])
    return sorted(p for p in config_dir.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


def duplicate_ids(loaded: Iterable[tuple[Path, DatasetConfig]]) -> list[Problem]:
    """A dataset_id defined by more than one file: a problem for each file after the first."""
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path, config in loaded:
        if config.dataset_id in seen:
            message = f"{config.dataset_id!r} is already defined in {seen[config.dataset_id]}"
            problems.append(Problem(str(path), "dataset_id", message))
        else:
            seen[config.dataset_id] = path
    return problems


def load_each(paths: Iterable[Path]) -> tuple[list[tuple[Path, DatasetConfig]], list[Problem]]:
    """Every file parsed and validated once: the valid ones, and the problems of the others."""
    loaded: list[tuple[Path, DatasetConfig]] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            loaded.append((path, load_config_file(path)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return loaded, problems


def load_configs(paths: Iterable[Path]) -> list[DatasetConfig]:
    """Load every file, collecting all problems (and duplicate dataset ids) before failing."""
    loaded, problems = load_each(paths)
    problems += duplicate_ids(loaded)
    if problems:
        raise ConfigError(problems)
    return [config for _, config in loaded]


class Secrets:
    """Resolves `${NAME}` placeholders and remembers the values so they can be masked."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ
        self._values: set[str] = set()

    def expand(self, template: str, dataset_id: str, field: str) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name not in self._environ:
                raise MissingEnvError(dataset_id, field, name)
            value = self._environ[name]
            if value:
                self._values.add(value)
            return value

        return ENV_PLACEHOLDER.sub(replace, template)

    def expand_mapping(self, values: Mapping[str, object], dataset_id: str, field: str) -> dict:
        return {
            key: self.expand(value, dataset_id, f"{field}.{key}")
            if isinstance(value, str)
            else value
            for key, value in values.items()
        }

    def mask(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text
