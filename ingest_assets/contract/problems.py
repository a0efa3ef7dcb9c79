"""Problems of a dataset config, each naming its file and field, in messages of bounded size.

A value quoted in a message is cut short (`short_repr`, `clip`): a config is hostile input, and a
value in it may be huge, or shared a hundred million times by YAML aliases. pydantic's errors
become one problem per field (`problems_from_validation`), as the user wrote the field's path.
"""

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ingest_resources.errors import ConfigError

QUOTED_CHARS = 80  # a value quoted in a message
MESSAGE_CHARS = 400  # one problem's message
MAX_PROBLEMS = 20  # listed for one file


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


def _describe(error: ErrorDetails, loc: list[int | str]) -> str:
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


def _user_path(data: object, loc: tuple[int | str, ...]) -> list[int | str]:
    """The error location as the user wrote it: pydantic adds union-member names (`str`, `date`,
    ...) after a scalar input; those are dropped, while keys of the user's mappings are kept."""
    kept: list[int | str] = []
    node = data
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


class ConfigProblems(ConfigError):
    """A `ConfigError` whose lines are `Problem`s, each naming its file and field: its
    `problems`, typed as such in `config_problems`."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.config_problems = list(problems)
        super().__init__(self.config_problems)
