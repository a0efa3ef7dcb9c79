"""The dataset contract: the pydantic models of one dataset YAML (docs/contract.md), but for
`source:` (contract.source).

Every model forbids unknown keys, so a typo fails validation with the field path instead of
being ignored. This module is pure: no Dagster, no I/O.
"""

import zoneinfo
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ingest_assets.contract.base import Strict, field_error
from ingest_assets.contract.cron import cron_problem
from ingest_assets.contract.names import (
    BUILTIN_NORMALIZERS,
    BUILTIN_PARSERS,
    CHECK_KINDS,
    CORE_STAGES,
    DATASET_ID_PATTERN,
    DEFAULT_KEYS_BY_PARSER,
    DEFAULT_PARSER_BY_FORMAT,
    MAX_DECIMAL_PRECISION,
    SERIES_CODE,
    SERIES_PARSERS,
    TYPE_PATTERN,
    plugin_name,
)
from ingest_assets.contract.partition_rules import partition_problem
from ingest_assets.contract.source import Source
from ingest_resources.postgres_names import POSTGRES_NAME_BYTES


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# What the built-in parsers take in parse.options (a plugin of your own takes anything):
# option -> (is it a valid value, what is expected)
TABLE_OPTIONS: dict[str, tuple[Callable[[object], bool], str]] = {
    "na_values": (_strings, "a list of texts read as empty, e.g. [n/d, '-']"),
    "keep_default_na": (lambda v: isinstance(v, bool), "true or false"),
    "skip_footer": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a count of rows (0 or more) at the end of the file",
    ),
    "allow_duplicate_headers": (lambda v: isinstance(v, bool), "true or false"),
    "strip": (lambda v: isinstance(v, bool), "true or false"),
}


class Parse(Strict):
    plugin: str = "table"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("plugin")
    @classmethod
    def _plugin(cls, value: str) -> str:
        return plugin_name(value, BUILTIN_PARSERS, "parse")

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
        return plugin_name(value, BUILTIN_NORMALIZERS, "normalize")

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
    # a landing zone: the column that names each row's file (none: no such column)
    source_file_column: str | None = Field(default=None, min_length=1)


TIME_KINDS = ("daily", "weekly", "monthly", "hourly")


class Partitions(Strict):
    # files: one dynamic partition per file of source.glob
    kind: Literal["daily", "weekly", "monthly", "hourly", "files", "none"] = "none"
    start: date | datetime | None = None
    # a time partition of a whole-history source is "the source as read that day"
    snapshot: bool = False

    @property
    def is_time(self) -> bool:
        return self.kind in TIME_KINDS

    @model_validator(mode="after")
    def _start(self) -> "Partitions":
        if self.snapshot and not self.is_time:
            raise field_error(
                "snapshot", f"partitions.snapshot is for time partitions, not {self.kind!r}"
            )
        if self.is_time and self.start is None:
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
    def _known_checks(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        """Names as the manifest spells them (`range:value`); the Dagster UI's spelling
        (`range__value`) is taken too."""
        named: dict[str, Severity] = {}
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
    def _partitions_mean_data(self) -> "DatasetConfig":
        """A time partition reads its own data (a placeholder in the source), or says it is a
        snapshot; `files` partitions need files to be made of."""
        problem = partition_problem(self.source, self.partitions, self.schedule)
        if problem:
            raise field_error(*problem)
        return self

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
