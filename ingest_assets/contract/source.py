"""`source:` of the contract: where the bytes come from, and how hard to try (retries, breaker,
deadline, size limits)."""

import codecs
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ingest_assets.contract.base import Strict, field_error

# `{name}` or `{name:strftime spec}` in source.url, params, path, key and glob (`${ENV}` is a
# secret, not a placeholder)
PLACEHOLDER = re.compile(r"(?<!\$)\{([^{}:]*)(?::([^{}]*))?\}")
PARTITION_NAMES = ("partition_start", "partition_end")
WINDOW_NAMES = (*PARTITION_NAMES, "since")  # `since`: the published state, for HTTP requests
# strftime directives a spec may use (each gives the same text on every platform)
STRFTIME = frozenset("aAbBdHIjmMpSUWyYGuVwfzZ%")
DIRECTIVE = re.compile(r"%(.)")
WEEKS = re.compile(r"\{partition_(?:start|end):[^{}]*%[UWVG]")  # not read back to a date


def placeholder_problem(template: str, names: tuple[str, ...]) -> str | None:
    """What is wrong with the placeholders of `template` (None: nothing)."""
    for match in PLACEHOLDER.finditer(template):
        name, spec = match.group(1), match.group(2)
        if name not in names:
            return (
                f"unknown placeholder {match.group(0)!r}: expected "
                f"{' or '.join('{' + n + '}' for n in names)}, optionally with a strftime "
                "spec, e.g. {partition_start:%Y/%m/%d}"
            )
        if spec is None:
            continue
        directives = DIRECTIVE.findall(spec)
        unknown = [d for d in directives if d not in STRFTIME]
        if not directives or unknown or spec.endswith("%") and not spec.endswith("%%"):
            shown = f"%{unknown[0]}" if unknown else spec
            return (
                f"placeholder {match.group(0)!r}: {shown!r} is not a strftime spec this takes "
                f"(directives %{' %'.join(sorted(STRFTIME - {'%'}))}, e.g. %Y-%m-%d)"
            )
    return None


def has_partition_placeholder(template: str | None) -> bool:
    return bool(template) and any(
        m.group(1) in PARTITION_NAMES for m in PLACEHOLDER.finditer(template or "")
    )


class Pagination(Strict):
    kind: Literal["next_link", "page", "offset"]
    next_path: str | None = None  # next_link: dotted path of the next URL in the body
    page_param: str = "page"
    page_size_param: str | None = None
    page_size: int | None = Field(default=None, gt=0)
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, gt=0)
    max_pages: int = Field(default=100, gt=0)


class Retry(Strict):
    """Retries of network errors, timeouts, 429 and 5xx: exponential backoff with jitter."""

    max_attempts: int = Field(default=5, ge=1)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30, ge=0)
    max_retry_after_s: float = Field(default=300, ge=0)  # longest Retry-After honoured


class Breaker(Strict):
    """Per-host circuit breaker: opens after `failures` in a row, half-opens after `cooldown_s`."""

    failures: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=60, ge=0)


class Source(Strict):
    kind: Literal["http", "file", "s3"]
    url: str | None = None
    path: str | None = None
    bucket: str | None = None
    key: str | None = None
    # many files: local (`landing/**/*.csv`) or S3 (with `bucket`, or `url: s3://b/p/**/*.csv`)
    glob: str | None = None
    missing: Literal["error", "skip"] = "error"  # a partition whose file or object is not there
    max_files_per_run: int | None = Field(default=None, gt=0)  # a landing zone's files per run
    format: Literal["csv", "xlsx", "xls", "ods", "json", "jsonl", "rss", "parquet"]
    sheet: str | int | None = None
    header_row: int = Field(default=1, ge=1)
    encoding: str = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."
    # the thousands separator of numbers written as text (None: numbers have none)
    thousands: Literal[",", ".", " ", "'"] | None = None
    # a compressed source: `auto` by its magic bytes (gzip, zip), or said outright
    compression: Literal["auto", "gzip", "zip", "none"] = "auto"
    member: str | None = None  # the file to read inside a zip that holds several
    records_path: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    pagination: Pagination | None = None
    retry: Retry = Field(default_factory=Retry)
    breaker: Breaker = Field(default_factory=Breaker)
    timeout_s: float = Field(default=30, gt=0)
    max_bytes: int = Field(default=104_857_600, gt=0)
    # the whole download, retries' waits included (default: 12 x timeout_s)
    deadline_s: float | None = Field(default=None, gt=0)
    # bytes a compressed source (gzip/deflate body, xlsx/zip members) may inflate to (default:
    # 20 x max_bytes), checked as it inflates
    max_inflated_bytes: int | None = Field(default=None, gt=0)
    # where a redirect may take the request with source.headers and credentials: another
    # origin gets none of them unless `any`; `never` refuses redirects
    follow_redirects: Literal["same_origin", "any", "never"] = "same_origin"

    @property
    def deadline(self) -> float:
        return self.deadline_s if self.deadline_s is not None else 12 * self.timeout_s

    @property
    def inflated_limit(self) -> int:
        return (
            self.max_inflated_bytes if self.max_inflated_bytes is not None else 20 * self.max_bytes
        )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value == "auto":  # detected by charset-normalizer, the guess recorded
            return value
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (e.g. utf-8, utf-8-sig, latin-1, or auto)"
            ) from None
        return value

    @model_validator(mode="after")
    def _numbers(self) -> "Source":
        if self.thousands is not None and self.thousands == self.decimal:
            raise field_error(
                "thousands",
                f"source.thousands {self.thousands!r} is the decimal mark too (source.decimal): "
                "a number could not be read one way",
            )
        return self

    @model_validator(mode="after")
    def _archive(self) -> "Source":
        if self.member is not None and self.compression in ("gzip", "none"):
            raise field_error(
                "member",
                f"source.member names a file inside a zip, but source.compression is "
                f"{self.compression!r} (use zip or auto)",
            )
        return self

    @model_validator(mode="after")
    def _placeholders(self) -> "Source":
        fields = {"url": self.url, "path": self.path, "key": self.key, "glob": self.glob}
        fields.update({f"params.{k}": v for k, v in self.params.items() if isinstance(v, str)})
        for field, template in fields.items():
            http_field = field == "url" and self.kind == "http" or field.startswith("params.")
            problem = placeholder_problem(
                template or "", WINDOW_NAMES if http_field else PARTITION_NAMES
            )
            if problem:
                raise field_error(field, problem)
        zone = "glob" if self.glob is not None else "url" if self.is_landing else None
        template = self.glob if self.glob is not None else self.url
        if zone and template and WEEKS.search(template):
            raise field_error(
                zone,
                f"source.{zone}: a landing zone's file is put in its partition by reading its "
                "path back to a date, which week numbers (%U %W %V %G) do not give: use "
                "%Y-%m-%d (or %Y/%m/%d) in the placeholder",
            )
        return self

    @property
    def partitioned_location(self) -> bool:
        """Whether the source names a partition's own data (`{partition_start}`, `{partition_end}`)."""
        templates = [self.url, self.path, self.key, self.glob, *map(str, self.params.values())]
        return any(has_partition_placeholder(t) for t in templates)

    @property
    def is_landing(self) -> bool:
        """A landing zone of many files: `glob`, or an s3:// url with a wildcard."""
        return self.glob is not None or bool(
            self.kind == "s3" and self.url and any(c in self.url for c in "*?[")
        )

    @model_validator(mode="after")
    def _location(self) -> "Source":
        if self.glob is not None and self.kind == "http":
            raise field_error("glob", "source.glob lists files: it takes kind file or s3, not http")
        if self.kind == "http" and not self.url:
            raise field_error("url", "source.kind 'http' needs source.url")
        if self.kind == "file" and not (self.path or self.glob):
            raise field_error("path", "source.kind 'file' needs source.path (or source.glob)")
        if self.glob is not None and (self.path or self.key):
            field = "path" if self.path else "key"
            raise field_error(field, f"source.glob and source.{field} both name files: keep one")
        if self.glob is not None and self.kind == "s3" and self.url:
            raise field_error(
                "url",
                "source.glob and source.url both name files: for S3 set source.bucket with "
                "source.glob, or put the wildcard in the url (s3://bucket/prefix/**/*.csv)",
            )
        if self.kind == "s3":
            from_url = bool(self.url and re.match(r"^s3://[^/]+/.+", self.url))
            if not from_url and not (self.bucket and (self.key or self.glob)):
                raise field_error(
                    "url" if self.url else "bucket",
                    "source.kind 's3' needs source.bucket and source.key (or source.glob), or "
                    "url: s3://bucket/key",
                )
        return self
