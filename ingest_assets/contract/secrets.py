"""`${ENV_NAME}` placeholders, resolved at run time (never at load time), and their values
masked, in every form they take, out of anything that could be logged."""

import base64
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import TypeVar
from urllib.parse import quote, quote_plus

from ingest_resources.errors import ConfigError

ENV_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
URL_SAFE = "!$&'()*+,;=:@/~"  # what a URL may hold unencoded (RFC 3986), as httpx leaves it
V = TypeVar("V")


class MissingEnvError(ConfigError, KeyError):
    def __init__(self, dataset_id: str, field: str, name: str):
        self.name = name
        self.message = f"dataset {dataset_id}: {field} uses ${{{name}}} but environment variable {name} is not set"
        super().__init__([self.message])

    def __str__(self) -> str:
        return self.message


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
        def replace_one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._environ:
                raise MissingEnvError(dataset_id, field, name)
            raw = self._environ[name]
            value = raw.rstrip()
            self._remember(raw, value)
            return value

        return ENV_PLACEHOLDER.sub(replace_one, template)

    def expand_mapping(
        self, values: Mapping[str, V], dataset_id: str, field: str
    ) -> dict[str, V | str]:
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
