"""How every Parquet file of the store is written (`parquet_options`), and the check that
batches written into one file share its schema (`conform`)."""

from typing import TypedDict

import pyarrow as pa

from ingest_resources.errors import DataError

HASH_FIELD = {b"ingest.values": b"hash"}  # field metadata: the values are (parts of) hashes


class ParquetOptions(TypedDict):
    """Keyword arguments of `pq.write_table` and `pq.ParquetWriter`."""

    compression: str | dict[str, str]
    compression_level: int | dict[str, int]
    use_dictionary: list[str] | bool
    write_statistics: list[str]


def _is_hash(field: pa.Field) -> bool:
    return field.name.endswith("_hash") or HASH_FIELD.items() <= (field.metadata or {}).items()


def parquet_options(schema: pa.Schema) -> ParquetOptions:
    """How every Parquet file of the store is written:
    - zstd level 1 (as small as the default level here, faster); none at all for hashes held
      as bytes or integers (random: zstd cannot shrink them, and a read then copies them once);
    - no dictionary encoding, but for Arrow dictionary columns: zstd over plain values is as
      small or smaller (1M staged CSV rows: 4.8 MB plain, 5.8 MB with dictionaries) and writes
      twice as fast;
    - no min/max statistics for hash columns (named `*_hash`, or marked with HASH_FIELD): every
      value differs and no reader filters on a range of hashes, so they cost time (a quarter of
      a write; most of the key index's) for nothing."""
    plain = [f.name for f in schema if not _is_hash(f)]
    raw = {f.name for f in schema if _is_hash(f) and _random(f)}
    compression: str | dict[str, str] = "zstd"
    level: int | dict[str, int] = 1
    if raw and not any(pa.types.is_nested(f.type) for f in schema):  # (a codec per leaf column)
        compression = {f.name: "none" if f.name in raw else "zstd" for f in schema}
        level = {f.name: 1 for f in schema if f.name not in raw}
    dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    return {
        "compression": compression,
        "compression_level": level,
        "use_dictionary": dictionaries or False,
        "write_statistics": plain,
    }


def _random(field: pa.Field) -> bool:
    """Digests as bytes, or marked parts of them (the key index's integers): not text, nor a
    user's number that happens to be named `*_hash`."""
    marked = HASH_FIELD.items() <= (field.metadata or {}).items()
    return bool(pa.types.is_fixed_size_binary(field.type)) or (marked and not _is_text(field.type))


def _is_text(type_: pa.DataType) -> bool:
    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


class SchemaMismatch(DataError, ValueError):
    """A batch cannot be written under the schema of the batches before it."""


def conform(key: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with the columns and types of `schema`, else SchemaMismatch naming what differs."""
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        have = {f.name: str(f.type) for f in table.schema}
        want = {f.name: str(f.type) for f in schema}
        differences = [
            f"{name}: {want.get(name, 'absent')} before, {have.get(name, 'absent')} now"
            for name in sorted(set(have) | set(want))
            if have.get(name) != want.get(name)
        ]
        raise SchemaMismatch(
            f"{key}: a batch has other columns than the first one ({'; '.join(differences)}): "
            f"{type(exc).__name__}: {exc}"
        ) from None
