"""Loading dataset YAML files into contracts, with errors that name file, field and expectation.

A config file is hostile input until it is loaded: it is refused, naming the file, when it is
over `MAX_CONFIG_BYTES`, nests deeper than `MAX_NESTING` or repeats, through YAML aliases, more
than `MAX_ALIASED_VALUES` values (a "billion laughs" of 600 bytes expands to hundreds of millions
of values); every value quoted in a message is cut short. One bad file never stops the others:
`load_config_dir` returns the valid configs beside the problems of the rest.

Also where `${ENV_NAME}` placeholders are resolved (at run time, never at load time) and where
their values are masked out of anything that could be logged.
"""

import base64
import json
import os
import re
import reprlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, quote_plus

import yaml
from pydantic import ValidationError

from ingest_assets.contract.models import DatasetConfig
from ingest_resources.errors import ConfigError

ENV_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
YAML_SUFFIXES = (".yaml", ".yml")

MAX_CONFIG_BYTES = 1 << 20  # 1 MB: a large contract is a few kB
MAX_NESTING = 64  # mappings and lists inside one another (a contract needs about 6)
MAX_ALIASED_VALUES = 100_000  # values that aliases (*name) repeat, counted as written out
MAX_ALIASED_CHARS = MAX_CONFIG_BYTES  # text that aliases repeat
QUOTED_CHARS = 80  # a value quoted in a message
MESSAGE_CHARS = 400  # one problem's message
MAX_PROBLEMS = 20  # listed for one file
URL_SAFE = "!$&'()*+,;=:@/~"  # what a URL may hold unencoded (RFC 3986), as httpx leaves it


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str
    # the file's dataset_id when it could be read, so `ingest run ID` can name the broken file
    dataset_id: str | None = None

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.field}: {self.message}"
            if self.field
            else f"{self.file}: {self.message}"
        )


class MissingEnvError(ConfigError, KeyError):
    def __init__(self, dataset_id: str, field: str, name: str):
        self.name = name
        self.message = f"dataset {dataset_id}: {field} uses ${{{name}}} but environment variable {name} is not set"
        super().__init__([self.message])

    def __str__(self) -> str:
        return self.message


def clip(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` cut to about `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 3, 4, 4
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = QUOTED_CHARS


def short_repr(value: object) -> str:
    """A repr that looks at a few items of a few levels only: a value from a config may be huge
    (or shared a hundred million times by aliases), and repr() would walk all of it."""
    try:
        text = _SHORT.repr(value)
    except ValueError:  # an int over Python's 4,300-digit limit for str()
        return f"<an integer of {value.bit_length():,} bits>" if isinstance(value, int) else "<?>"
    return clip(text, QUOTED_CHARS)


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
        message += f" (got {short_repr(error['input'])})"
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
    """One problem per field, at most `MAX_PROBLEMS` of them: a list of 100,000 wrong items is
    100,000 errors to pydantic, and one line saying how many more to the user."""
    by_field: dict[str, list[str]] = {}
    fields_left_out: set[str] = set()
    for error in exc.errors(include_url=False):
        loc = _user_path(data, error["loc"]) if data is not None else list(error["loc"])
        extra = (error.get("ctx") or {}).get("field")
        if extra:
            loc += extra.split(".")
        field = _field_path(loc)
        if field not in by_field and len(by_field) >= MAX_PROBLEMS:
            fields_left_out.add(field)
            continue
        messages = by_field.setdefault(field, [])
        message = clip(_describe(error, loc))
        if message not in messages:
            messages.append(message)
    # a value refused by every member of a union gives one line, its alternatives joined
    problems = [
        Problem(file, field, clip("; or ".join(messages))) for field, messages in by_field.items()
    ]
    if fields_left_out:
        more = f"and {len(fields_left_out):,} more field(s) with problems, not listed"
        problems.append(Problem(file, "", more))
    return problems


def _declared_id(data: object) -> str | None:
    """The dataset_id a file declares, even when the rest of it is invalid."""
    value = data.get("dataset_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None


def parse_config(data: object, file: str) -> DatasetConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(file, "", "expected a mapping of contract keys at the top level")]
        )
    try:
        return DatasetConfig.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(file, exc, data)
        dataset_id = _declared_id(data)
        raise ConfigError([replace(p, dataset_id=dataset_id) for p in problems]) from None


class YamlBudgetError(yaml.MarkedYAMLError):
    """A YAML document over a budget: refused before it is built, and never re-parsed."""

    def __init__(self, problem: str, mark: yaml.Mark | None):
        super().__init__(problem=problem, problem_mark=mark)


INT_DIGITS = sys.get_int_max_str_digits() or 4300  # (0: no limit set; quadratic still)
INT_TAG = "tag:yaml.org,2002:int"
_COLLECTION_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _number_too_long(event: yaml.ScalarEvent) -> bool:
    """An integer Python refuses to read (over 4,300 digits) or reads in quadratic time (a
    base-60 `1:11:11:...`)."""
    tag = event.tag
    if tag is None or tag == "!":
        tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, event.value, event.implicit)
    return tag == INT_TAG


def check_budget(events: Iterable[yaml.Event]) -> None:
    """Refuses a YAML event stream whose aliases repeat more than `MAX_ALIASED_VALUES` values (or
    `MAX_ALIASED_CHARS` of text), that nests deeper than `MAX_NESTING`, or that holds an integer
    too long to read. It runs on the parser's events, before any node or object is built:
    libyaml's parser keeps its own stack, while its composer recurses in C (a few hundred
    thousand `[` crash the process) and PyYAML's constructor shares an aliased object, which
    pydantic, repr() or a JSON dump would then walk once for each time it is repeated.

    Sizes are counted as the document would be written out without aliases: `values` and
    `chars` run over the whole stream; an anchored node's size is what they grew by between
    its start and its end."""
    values = chars = aliased_values = aliased_chars = 0
    open_starts: list[tuple[str | None, int, int]] = []  # (anchor, values, chars) at its start
    sizes: dict[str, tuple[int, int] | None] = {}  # anchor -> its size; None while still open
    for event in events:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            length = len(event.value)
            if length > INT_DIGITS and _number_too_long(event):
                raise YamlBudgetError(f"an integer of {length:,} characters", event.start_mark)
            values += 1
            chars += length
            if event.anchor:
                sizes[event.anchor] = (1, length)
        elif kind in _COLLECTION_START:
            if len(open_starts) >= MAX_NESTING:
                raise YamlBudgetError(
                    f"nested deeper than {MAX_NESTING} mappings and lists", event.start_mark
                )
            open_starts.append((event.anchor, values, chars))
            values += 1
            if event.anchor:
                sizes[event.anchor] = None
        elif kind in _COLLECTION_END:
            anchor, values_before, chars_before = open_starts.pop()
            if anchor:
                sizes[anchor] = (values - values_before, chars - chars_before)
        elif kind is yaml.AliasEvent and event.anchor in sizes:
            size = sizes[event.anchor]
            name = clip(event.anchor, QUOTED_CHARS)
            if size is None:
                raise YamlBudgetError(
                    f"alias *{name} is inside the node it names (a recursive structure)",
                    event.start_mark,
                )
            aliased_values += size[0]
            aliased_chars += size[1]
            if aliased_values > MAX_ALIASED_VALUES or aliased_chars > MAX_ALIASED_CHARS:
                raise YamlBudgetError(
                    f"aliases repeat more than {MAX_ALIASED_VALUES:,} values or "
                    f"{MAX_ALIASED_CHARS:,} characters (here *{name} repeats {size[0]:,} "
                    "values); write the values out, or repeat less",
                    event.start_mark,
                )
            values += size[0]
            chars += size[1]
        # an alias to an unknown anchor: the composer reports it, with its line


MERGE_TAG = "tag:yaml.org,2002:merge"


class _Guarded:
    """Refuses a key written twice in one mapping (YAML itself would keep the last; a key that a
    merge `<<` brings may be overridden, as YAML means)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *defaults`: SafeConstructor merges it below
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {short_repr(key)} appears twice in one mapping",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _PureLoader(_Guarded, yaml.SafeLoader):
    pass


# libyaml's parser when PyYAML was built with it: about 6x faster than the pure-Python one.
class _FastLoader(_Guarded, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


def _naming_the_line(construct: Callable) -> Callable:
    """A scalar constructor whose ValueError (a date such as 2026-02-30, `!!float abc`) becomes
    a YAML error at the value's line, as the parser's own errors are."""

    def construct_or_refuse(loader: yaml.BaseLoader, node: yaml.ScalarNode) -> object:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read {short_repr(node.value)}: {clip(str(exc))}",
                node.start_mark,
            ) from None

    return construct_or_refuse


def _name_the_line_of_unreadable_values() -> None:
    for loader in (_PureLoader, _FastLoader):
        for kind in ("int", "float", "timestamp"):
            tag = f"tag:yaml.org,2002:{kind}"
            loader.add_constructor(tag, _naming_the_line(loader.yaml_constructors[tag]))


_name_the_line_of_unreadable_values()


def _events(text: str, loader: type) -> Iterator[yaml.Event]:
    """The parser's events (`yaml.parse`, with one call an event instead of two)."""
    parser = loader(text)
    try:
        while (event := parser.get_event()) is not None:
            yield event
            if type(event) is yaml.StreamEndEvent:
                return
    finally:
        parser.dispose()


def _load_within_budget(text: str, loader: type) -> object:
    """The document, once its events passed `check_budget` (a second, cheap pass of the parser:
    about a third of the time of building the document)."""
    check_budget(_events(text, loader))
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader


def parse_yaml(text: str) -> object:
    try:
        return _load_within_budget(text, _FastLoader)
    except YamlBudgetError:
        raise
    except yaml.YAMLError:
        # libyaml words some errors differently: report the pure-Python parser's own message
        return _load_within_budget(text, _PureLoader)


def _read_text(path: Path) -> str:
    """The file's text, refused before it is parsed when it is over `MAX_CONFIG_BYTES`."""
    limit = f"a dataset config may be at most {MAX_CONFIG_BYTES:,} bytes (1 MB)"
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_CONFIG_BYTES:
                raise ConfigError([Problem(str(path), "", f"file is {size:,} bytes; {limit}")])
            data = file.read(size + 1)  # (reading the limit would allocate 1 MB each time)
            if len(data) > size:  # grew since, or a file whose size the system does not know
                data += file.read(MAX_CONFIG_BYTES + 1 - len(data))
    except OSError as exc:
        raise ConfigError([Problem(str(path), "", f"cannot read file: {exc.strerror}")]) from None
    if len(data) > MAX_CONFIG_BYTES:  # grew while read, or a special file
        raise ConfigError([Problem(str(path), "", f"file is over 1 MB; {limit}")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start:,}"
        raise ConfigError([Problem(str(path), "", message)]) from None


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
        raise ConfigError([_yaml_problem(path, exc, text)]) from None
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


def _load_guarded(path: Path) -> DatasetConfig:
    """`load_config_file`, with anything unexpected turned into a problem of that file: one
    file must never stop the others."""
    try:
        return load_config_file(path)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as this file's problem
        message = f"cannot be loaded: {type(exc).__name__}: {clip(str(exc))}"
        raise ConfigError([Problem(str(path), "", message)]) from None


def load_each(paths: Iterable[Path]) -> tuple[list[tuple[Path, DatasetConfig]], list[Problem]]:
    """Every file parsed and validated once: the valid ones, and the problems of the others."""
    loaded: list[tuple[Path, DatasetConfig]] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            loaded.append((path, _load_guarded(path)))
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
            raise ConfigError(own)
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
    except ConfigError as exc:
        return ConfigSet([], exc.problems)
    loaded, problems = load_each(paths)
    configs, duplicated = _without_duplicates(loaded)
    return ConfigSet(configs, problems + duplicated)


def _base64_cores(value: str) -> Iterator[str]:
    """The base64 characters that spell `value` wherever it sits in an encoded text (as the
    password of `user:password` in a Basic auth header): for each of the three byte alignments,
    the characters made of the value's bytes alone."""
    data = value.encode()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode()
        first = -(-8 * offset // 6)  # the first character with no byte of the padding in it
        last = 8 * (offset + len(data)) // 6  # past the last one with no byte after the value
        yield encoded[first:last]


def secret_forms(value: str) -> set[str]:
    """Every way `value` shows in a message: as is, percent-encoded (`quote`, `quote_plus`, and
    with the characters a URL keeps as they are), as Python and JSON quote it (a bytes repr spells
    a newline `\\n`, and escapes a quote when the text holds both kinds), and in base64."""
    both_quotes = "'\""  # a repr of a text with both escapes its own quote: `\'`
    forms = {
        value,
        quote(value),
        quote(value, safe=""),
        quote(value, safe=URL_SAFE),
        quote_plus(value),
        repr(value)[1:-1],
        repr(value + both_quotes)[1:-4],
        repr(value.encode())[2:-1],
        repr((value + both_quotes).encode())[2:-4],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    if len(value) >= 6:  # a shorter core (4 to 6 characters) would mask unrelated text
        forms.add(base64.b64encode(value.encode()).decode())
        forms.update(core for core in _base64_cores(value) if len(core) >= 6)
    return {form for form in forms if form}


class Secrets:
    """Resolves `${NAME}` placeholders and remembers the values so they can be masked.

    A value read from the environment loses its trailing whitespace: a secret mounted from a
    file ends with a newline, which makes an invalid HTTP header that the HTTP library then
    quotes, newline and all, in its error."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ
        self._forms: set[str] = set()

    def _remember(self, *values: str) -> None:
        for value in values:
            if value:
                self._forms.update(secret_forms(value))

    def expand(self, template: str, dataset_id: str, field: str) -> str:
        def replace_one(match: re.Match) -> str:
            name = match.group(1)
            if name not in self._environ:
                raise MissingEnvError(dataset_id, field, name)
            raw = self._environ[name]
            value = raw.rstrip()
            self._remember(raw, value)
            return value

        return ENV_PLACEHOLDER.sub(replace_one, template)

    def expand_mapping(self, values: Mapping[str, object], dataset_id: str, field: str) -> dict:
        return {
            key: self.expand(value, dataset_id, f"{field}.{key}")
            if isinstance(value, str)
            else value
            for key, value in values.items()
        }

    def mask(self, text: str) -> str:
        """`text` with every form of every expanded secret replaced by `***`, longest first (a
        form may contain another)."""
        for form in sorted(self._forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text
