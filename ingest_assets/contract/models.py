"""The dataset contract: pydantic models of one dataset YAML (see DESIGN.md).

Every model forbids unknown keys, so a typo fails validation with the field path instead of
being ignored. This module is pure: no Dagster, no I/O.
"""

import re
import zoneinfo
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ingest_resources.postgres_names import POSTGRES_NAME_BYTES

DATASET_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
TYPE_PATTERN = re.compile(r"^(string|int64|float64|bool|date|timestamp|decimal\((\d+),\s*(\d+)\))$")
PLUGIN_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
SERIES_CODE = "internal_series_code"
CORE_STAGES = ("raw", "parsed", "normalized", "published")

SERIES_PARSERS = frozenset({"series_map", "bcra_infomondia"})
BUILTIN_PARSERS = frozenset({"table", "json_records", "rss", "parquet"} | SERIES_PARSERS)
BUILTIN_NORMALIZERS = frozenset({"default", "bcra_infomondia"})
DEFAULT_PARSER_BY_FORMAT = {
    "csv": "table",
    "xlsx": "table",
    "xls": "table",
    "json": "json_records",
    "rss": "rss",
    "parquet": "parquet",
}
# Parsers whose rows have a natural key, used when normalize.primary_keys is not given.
DEFAULT_KEYS_BY_PARSER = {
    "series_map": [SERIES_CODE, "obs_time"],
    "bcra_infomondia": [SERIES_CODE, "obs_time"],
    "rss": ["id"],
}


def field_error(path: str, message: str) -> PydanticCustomError:
    """An error of a cross-field rule, reported at `path` (relative to the model it is raised in)."""
    return PydanticCustomError("contract", message, {"field": path})


CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
CRON_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


def cron_problem(expression: str) -> str | None:
    """What is wrong with a 5-field cron expression, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for position, (text, (name, low, high)) in enumerate(zip(fields, CRON_FIELDS, strict=True)):
        names = CRON_NAMES.get(position, [])
        for item in text.split(","):
            base, _, step = item.partition("/")
            if step and not step.isdigit():
                return f"{name} field {text!r}: step {step!r} is not a number"
            if base == "*":
                continue
            for bound in base.split("-", 1):
                value = (
                    names.index(bound.lower()) + (1 if position == 3 else 0)
                    if bound.lower() in names
                    else None
                )
                if value is None and not bound.isdigit():
                    return f"{name} field {text!r}: {bound!r} is not a number"
                value = int(bound) if value is None else value
                if not low <= value <= high:
                    return f"{name} field {text!r}: {value} is outside {low}-{high}"
    return None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _plugin_name(value: str, builtins: frozenset[str], what: str) -> str:
    if value in builtins or PLUGIN_REF.match(value):
        return value
    known = ", ".join(sorted(builtins))
    raise ValueError(
        f"unknown {what} plugin {value!r}: expected one of {known} or 'package.module:function'"
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
    format: Literal["csv", "xlsx", "xls", "json", "rss", "parquet"]
    sheet: str | int | None = None
    header_row: int = Field(default=1, ge=1)
    encoding: str = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."
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
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (e.g. utf-8, utf-8-sig, latin-1)"
            ) from None
        return value

    @model_validator(mode="after")
    def _location(self) -> "Source":
        if self.kind == "http" and not self.url:
            raise field_error("url", "source.kind 'http' needs source.url")
        if self.kind == "file" and not self.path:
            raise field_error("path", "source.kind 'file' needs source.path")
        if self.kind == "s3":
            from_url = bool(self.url and re.match(r"^s3://[^/]+/.+", self.url))
            if not from_url and not (self.bucket and self.key):
                raise field_error(
                    "url" if self.url else "bucket",
                    "source.kind 's3' needs source.bucket and source.key, or url: s3://bucket/key",
                )
        return self


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# What the built-in parsers take in parse.options (a plugin of your own takes anything):
# option -> (is it a valid value, what is expected)
TABLE_OPTIONS = {
    "na_values": (_strings, "a list of texts read as empty, e.g. [n/d, '-']"),
    "keep_default_na": (lambda v: isinstance(v, bool), "true or false"),
    "skip_footer": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a count of rows (0 or more) at the end of the file",
    ),
    "allow_duplicate_headers": (lambda v: isinstance(v, bool), "true or false"),
}


class Parse(Strict):
    plugin: str = "table"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("plugin")
    @classmethod
    def _plugin(cls, value: str) -> str:
        return _plugin_name(value, BUILTIN_PARSERS, "parse")

    @model_validator(mode="after")
    def _options(self) -> "Parse":
        if self.plugin not in BUILTIN_PARSERS:
            return self
        known = TABLE_OPTIONS if self.plugin == "table" else {}
        for name, value in self.options.items():
            if name not in known:
                takes = f"takes {', '.join(known)}" if known else "takes no options"
                raise field_error(
                    f"options.{name}",
                    f"unknown option for parse plugin {self.plugin!r}: it {takes}",
                )
            valid, expected = known[name]
            if not valid(value):
                raise field_error(f"options.{name}", f"expected {expected}, got {value!r}")
        return self


class SeriesMapEntry(Strict):
    internal_series_code: str = Field(min_length=1)
    sheet: str | int | None = None
    header_row: int | None = Field(default=None, ge=1)
    date_col: str = Field(min_length=1)
    value_col: str = Field(min_length=1)
    unit: str | None = None
    frequency: str | None = None
    description: str | None = None


class ParseConfig(Strict):
    file_type: str | None = None
    series_map: list[SeriesMapEntry] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("series_map")
    @classmethod
    def _unique_codes(cls, entries: list[SeriesMapEntry]) -> list[SeriesMapEntry]:
        seen: set[str] = set()
        for entry in entries:
            if entry.internal_series_code in seen:
                raise ValueError(
                    f"internal_series_code {entry.internal_series_code!r} appears twice"
                )
            seen.add(entry.internal_series_code)
        return entries


TypeName = Annotated[str, Field(pattern=TYPE_PATTERN.pattern)]
MAX_DECIMAL_PRECISION = 38  # what Arrow's decimal128 (and the warehouse's COPY) holds


class Normalize(Strict):
    plugin: str = "default"
    primary_keys: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    time_column: str = "obs_time"
    schema_: dict[str, TypeName] = Field(default_factory=dict, alias="schema")
    formats: dict[str, str] = Field(default_factory=dict)  # column -> strptime format

    @field_validator("plugin")
    @classmethod
    def _plugin(cls, value: str) -> str:
        return _plugin_name(value, BUILTIN_NORMALIZERS, "normalize")

    @property
    def builtin(self) -> bool:
        """A built-in normalizer (row by row, no user code) rather than a plugin's hook."""
        return self.plugin in BUILTIN_NORMALIZERS

    @model_validator(mode="after")
    def _decimals(self) -> "Normalize":
        for name, type_name in self.schema_.items():
            match = TYPE_PATTERN.match(type_name)
            if match and match.group(2):
                precision, scale = int(match.group(2)), int(match.group(3))
                if not 1 <= precision <= MAX_DECIMAL_PRECISION or scale > precision:
                    raise field_error(
                        f"schema.{name}",
                        f"{type_name!r}: decimal(precision, scale) takes a precision of 1 to "
                        f"{MAX_DECIMAL_PRECISION} digits and a scale of at most the precision, "
                        "e.g. decimal(18,4)",
                    )
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. America/Argentina/Cordoba)"
            ) from None
        return value


class Transform(Strict):
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)


class Partitions(Strict):
    kind: Literal["daily", "weekly", "monthly", "hourly", "none"] = "none"
    start: date | datetime | None = None

    @model_validator(mode="after")
    def _start(self) -> "Partitions":
        if self.kind != "none" and self.start is None:
            raise field_error(
                "start", f"partitions.kind {self.kind!r} needs partitions.start (e.g. 2024-01-01)"
            )
        return self


class Incremental(Strict):
    revisions: Literal["update", "ignore"] = "update"


def postgres_name(value: str) -> str:
    """An identifier PostgreSQL keeps as written: at most 63 bytes in UTF-8 (not characters)."""
    if len(value.encode()) > POSTGRES_NAME_BYTES:
        raise ValueError(
            f"{value[:80]!r} is {len(value.encode())} bytes in UTF-8; PostgreSQL keeps "
            f"{POSTGRES_NAME_BYTES} (it would cut the name and the next load would fail)"
        )
    return value


class PostgresTarget(Strict):
    table: str = Field(min_length=1, max_length=63)
    schema_: str = Field(default="public", alias="schema", min_length=1, max_length=63)

    @field_validator("table", "schema_")
    @classmethod
    def _fits(cls, value: str) -> str:
        return postgres_name(value)


class Publish(Strict):
    # false: no projections. The event versions are written all the same: they are the ledger
    # exactly-once publishing and the warehouse load from (and `warehouse-rebuild` reloads)
    object_store: bool = True
    postgres: PostgresTarget | None = None
    publish_empty: bool = False

    @model_validator(mode="after")
    def _somewhere(self) -> "Publish":
        if not self.object_store and self.postgres is None:
            raise field_error(
                "object_store",
                "publish.object_store: false leaves the data nowhere to be read: set "
                "publish.postgres (a table), or keep the object store",
            )
        return self


class Range(Strict):
    min: float | None = None
    max: float | None = None


class RowCount(Strict):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


CHECK_KINDS = (
    "not_null",
    "unique",
    "unique_primary_key",
    "range",
    "allowed_values",
    "row_count",
    "rejected_ratio",
    "schema_drift",
    "freshness",
)
Severity = Literal["error", "warn"]


class Checks(Strict):
    not_null: list[str] = Field(default_factory=list)
    unique: list[str] = Field(default_factory=list)
    ranges: dict[str, Range] = Field(default_factory=dict)
    allowed_values: dict[str, list[str | int | float | bool]] = Field(default_factory=dict)
    row_count: RowCount | None = None
    max_rejected_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    # `error` blocks publish, `warn` reports. Keys: a kind (`range`) or one check (`range:value`).
    # Defaults: error, except freshness (warn).
    severity: dict[str, Severity] = Field(default_factory=dict)

    @field_validator("severity")
    @classmethod
    def _known_checks(cls, value: dict[str, str]) -> dict[str, str]:
        """Names as the manifest spells them (`range:value`); the Dagster UI's spelling
        (`range__value`) is taken too."""
        named = {}
        for name, severity in value.items():
            if ":" not in name and "__" in name:
                name = name.replace("__", ":", 1)
            if name.split(":", 1)[0] not in CHECK_KINDS:
                raise ValueError(
                    f"unknown check {name!r}: expected one of {', '.join(CHECK_KINDS)}, optionally ':<column>'"
                )
            named[name] = severity
        return named


class Sensor(Strict):
    enabled: bool = False
    interval_s: int = Field(default=300, ge=1)


class Lock(Strict):
    key: str = "etl:{dataset_id}"
    ttl_s: int = Field(default=300, ge=1)


class Notify(Strict):
    sns_topic_arn: str | None = Field(default=None, pattern=r"^arn:aws[\w-]*:sns:")


class DatasetConfig(Strict):
    dataset_id: str = Field(pattern=DATASET_ID_PATTERN)
    description: str | None = None
    frequency: str | None = None
    lag_days: int | None = Field(default=None, ge=0)
    source: Source
    parse: Parse | None = None
    parse_config: ParseConfig = Field(default_factory=ParseConfig)
    normalize: Normalize = Field(default_factory=Normalize)
    transform: Transform = Field(default_factory=Transform)
    partitions: Partitions = Field(default_factory=Partitions)
    incremental: Incremental = Field(default_factory=Incremental)
    publish: Publish = Field(default_factory=Publish)
    checks: Checks = Field(default_factory=Checks)
    schedule: str | None = None
    sensor: Sensor = Field(default_factory=Sensor)
    lock: Lock = Field(default_factory=Lock)
    notify: Notify = Field(default_factory=Notify)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        problem = cron_problem(value) if value is not None else None
        if problem:
            raise ValueError(f"invalid cron expression {value!r}: {problem} (e.g. '0 */6 * * *')")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "DatasetConfig":
        plugin = self.parser
        if plugin in SERIES_PARSERS and not self.parse_config.series_map:
            raise field_error(
                "parse_config.series_map",
                f"parse.plugin {plugin!r} needs parse_config.series_map (one entry per series)",
            )
        if not self.primary_keys:
            raise field_error(
                "normalize.primary_keys",
                f"normalize.primary_keys is required for parse plugin {plugin!r} (the columns that identify a row)",
            )
        if self.publish.postgres is not None:  # the warehouse table's column names
            declared = {
                "normalize.primary_keys": self.normalize.primary_keys,
                "normalize.schema": list(self.normalize.schema_),
                "transform.metadata": list(self.transform.metadata),
            }
            for field, names in declared.items():
                for name in names:
                    try:
                        postgres_name(name)
                    except ValueError as exc:
                        raise field_error(field, f"column {exc}; rename it in a plugin") from None
        return self

    @property
    def parser(self) -> str:
        """The parse plugin, defaulting from the source format (series_map when one is given)."""
        if self.parse is not None:
            return self.parse.plugin
        if self.parse_config.series_map:
            return "series_map"
        return DEFAULT_PARSER_BY_FORMAT[self.source.format]

    @property
    def parse_options(self) -> dict[str, Any]:
        return dict(self.parse.options) if self.parse else {}

    @property
    def is_series(self) -> bool:
        return self.parser in SERIES_PARSERS

    @property
    def primary_keys(self) -> list[str]:
        """Primary keys; series datasets always include internal_series_code, first."""
        keys = list(self.normalize.primary_keys) or list(
            DEFAULT_KEYS_BY_PARSER.get(self.parser, [])
        )
        if self.is_series and SERIES_CODE not in keys:
            keys.insert(0, SERIES_CODE)
        return keys

    @property
    def stages(self) -> list[str]:
        """The dataset's asset names, in order: the four stages, and the warehouse if any."""
        return [*CORE_STAGES, "warehouse"] if self.publish.postgres else list(CORE_STAGES)

    @property
    def lock_key(self) -> str:
        return self.lock.key.replace("{dataset_id}", self.dataset_id)
