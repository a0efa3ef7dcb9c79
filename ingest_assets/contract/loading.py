"""Loading dataset YAML files into contracts, with errors that name file, field and expectation.

A config file is hostile input until it is loaded: it is refused, naming the file, when it is
over `MAX_CONFIG_BYTES` or over the YAML budget (contract.yaml_budget); every value quoted in a
message is cut short. One bad file never stops the others: `load_config_dir` returns the valid
configs beside the problems of the rest.
"""

import os
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import yaml
from pydantic import ValidationError

from ingest_assets.contract.models import DatasetConfig
from ingest_assets.contract.problems import (
    ConfigProblems,
    Problem,
    clip,
    problems_from_validation,
)
from ingest_assets.contract.yaml_budget import MAX_CONFIG_BYTES, parse_yaml

YAML_SUFFIXES = (".yaml", ".yml")


def _declared_id(data: object) -> str | None:
    """The dataset_id a file declares, even when the rest of it is invalid."""
    value = data.get("dataset_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None


def parse_config(data: object, file: str) -> DatasetConfig:
    if not isinstance(data, dict):
        raise ConfigProblems(
            [Problem(file, "", "expected a mapping of contract keys at the top level")]
        )
    try:
        return DatasetConfig.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(file, exc, data)
        dataset_id = _declared_id(data)
        raise ConfigProblems([replace(p, dataset_id=dataset_id) for p in problems]) from None


def _read_text(path: Path) -> str:
    """The file's text, refused before it is parsed when it is over `MAX_CONFIG_BYTES`."""
    limit = f"a dataset config may be at most {MAX_CONFIG_BYTES:,} bytes (1 MB)"
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_CONFIG_BYTES:
                raise ConfigProblems([Problem(str(path), "", f"file is {size:,} bytes; {limit}")])
            data = file.read(size + 1)  # (reading the limit would allocate 1 MB each time)
            if len(data) > size:  # grew since, or a file whose size the system does not know
                data += file.read(MAX_CONFIG_BYTES + 1 - len(data))
    except OSError as exc:
        raise ConfigProblems(
            [Problem(str(path), "", f"cannot read file: {exc.strerror}")]
        ) from None
    if len(data) > MAX_CONFIG_BYTES:  # grew while read, or a special file
        raise ConfigProblems([Problem(str(path), "", f"file is over 1 MB; {limit}")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start:,}"
        raise ConfigProblems([Problem(str(path), "", message)]) from None


DECLARED_ID = re.compile(r"""^dataset_id:[ \t]*["']?([A-Za-z]\w{0,63})["']?[ \t]*(?:#.*)?$""", re.M)


def _yaml_problem(path: Path, exc: yaml.YAMLError, text: str) -> Problem:
    """The parser's message, with the dataset_id the text seems to declare (a plain top-level
    `dataset_id: X` line), so `ingest run X` can name this file."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    declared = DECLARED_ID.search(text)
    message = f"invalid YAML: {where}{clip(problem)}"
    return Problem(str(path), "", message, declared.group(1) if declared else None)


def load_config_file(path: Path | str) -> DatasetConfig:
    path = Path(path)
    text = _read_text(path)
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigProblems([_yaml_problem(path, exc, text)]) from None
    return parse_config(data, str(path))


def config_files(config_dir: Path) -> list[Path]:
    if not config_dir.is_dir():
        raise ConfigProblems([Problem(str(config_dir), "", "config directory does not exist")])
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


def _load_guarded(path: Path) -> DatasetConfig:
    """`load_config_file`, with anything unexpected turned into a problem of that file: one
    file must never stop the others."""
    try:
        return load_config_file(path)
    except ConfigProblems:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as this file's problem
        message = f"cannot be loaded: {type(exc).__name__}: {clip(str(exc))}"
        raise ConfigProblems([Problem(str(path), "", message)]) from None


def load_each(paths: Iterable[Path]) -> tuple[list[tuple[Path, DatasetConfig]], list[Problem]]:
    """Every file parsed and validated once: the valid ones, and the problems of the others."""
    loaded: list[tuple[Path, DatasetConfig]] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            loaded.append((path, _load_guarded(path)))
        except ConfigProblems as exc:
            problems.extend(exc.config_problems)
    return loaded, problems


def load_configs(paths: Iterable[Path]) -> list[DatasetConfig]:
    """Load every file, collecting all problems (and duplicate dataset ids) before failing."""
    loaded, problems = load_each(paths)
    problems += duplicate_ids(loaded)
    if problems:
        raise ConfigProblems(problems)
    return [config for _, config in loaded]


class ConfigSet(NamedTuple):
    """What a config folder holds: the valid configs, and the problems of the files left out."""

    configs: list[DatasetConfig]
    problems: list[Problem]

    def get(self, dataset_id: str) -> DatasetConfig:
        """The dataset's config; a `ConfigError` naming its file(s) when the dataset is declared
        only by files with problems, a `LookupError` when no file declares it."""
        for config in self.configs:
            if config.dataset_id == dataset_id:
                return config
        own = [p for p in self.problems if p.dataset_id == dataset_id]
        if own:
            raise ConfigProblems(own)
        raise LookupError(dataset_id)

    @property
    def broken_files(self) -> list[str]:
        return list(dict.fromkeys(p.file for p in self.problems))


def _without_duplicates(
    loaded: list[tuple[Path, DatasetConfig]],
) -> tuple[list[DatasetConfig], list[Problem]]:
    """A dataset_id declared by several files is loaded from none of them (which one is meant
    is the user's call); each of those files gets a problem naming the others."""
    files: dict[str, list[Path]] = {}
    for path, config in loaded:
        files.setdefault(config.dataset_id, []).append(path)
    configs, problems = [], []
    for path, config in loaded:
        paths = files[config.dataset_id]
        if len(paths) == 1:
            configs.append(config)
            continue
        others = ", ".join(str(p) for p in paths if p != path)
        message = (
            f"{config.dataset_id!r} is also defined in {others}; no file declaring it is loaded"
        )
        problems.append(Problem(str(path), "dataset_id", message, config.dataset_id))
    return configs, problems


def load_config_dir(config_dir: Path) -> ConfigSet:
    """Every valid dataset of `config_dir`, and the problems of the files that are not: the code
    location and `ingest run` load what is valid, and report the rest."""
    try:
        paths = config_files(config_dir)
    except ConfigProblems as exc:
        return ConfigSet([], exc.config_problems)
    loaded, problems = load_each(paths)
    configs, duplicated = _without_duplicates(loaded)
    return ConfigSet(configs, problems + duplicated)
