"""The names the contract knows: identifier and type patterns, built-in plugins, stages, checks."""

import re

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
    "ods": "table",
    "json": "json_records",
    "jsonl": "json_records",
    "rss": "rss",
    "parquet": "parquet",
}
# Parsers whose rows have a natural key, used when normalize.primary_keys is not given.
DEFAULT_KEYS_BY_PARSER = {
    "series_map": [SERIES_CODE, "obs_time"],
    "bcra_infomondia": [SERIES_CODE, "obs_time"],
    "rss": ["id"],
}
MAX_DECIMAL_PRECISION = 38  # what Arrow's decimal128 (and the warehouse's COPY) holds

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


def plugin_name(value: str, builtins: frozenset[str], what: str) -> str:
    """`value` if it names a built-in plugin or a `package.module:function`; else a ValueError
    listing the built-ins."""
    if value in builtins or PLUGIN_REF.match(value):
        return value
    known = ", ".join(sorted(builtins))
    raise ValueError(
        f"unknown {what} plugin {value!r}: expected one of {known} or 'package.module:function'"
    )
