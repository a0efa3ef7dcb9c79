"""Row identity: `key_hash` (sha1 of the primary-key values) and `row_hash` (sha1 of the rest).

Values are rendered by Arrow's casts to text (shortest round-trip floats, ISO-like timestamps in
UTC), so a hash depends only on the typed values. `row_hash` joins `name=value` pairs sorted by
name and leaves nulls out, so adding a nullable column does not turn every row into a revision.

A hash is computed, staged and stored as its 20 bytes (DIGEST_TYPE): staged parts, event files
and projections hold bytes (half the size of hex to write, read and compare, and nothing for zstd
to squeeze). What leaves the store for people spells it as 40 lowercase hex digits (`hex_columns`:
exports, the warehouse, the manifest's schema), which sort as the bytes do. Event files and
windows written before hold hex; `digest_columns` reads them as bytes.
"""

import hashlib
import threading
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import duckdb

FIELD_SEP = "\x1f"
NAME_SEP = "\x1e"
NULL = "\x00"


def _text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


DIGEST_BYTES = 20
DIGEST_TYPE = pa.binary(DIGEST_BYTES)
HEX_TYPE = pa.string()  # a digest as published: 40 lowercase hex digits
_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)


KEY_HASH, ROW_HASH = "key_hash", "row_hash"  # the columns that hold them


def is_digest(type_: pa.DataType) -> bool:
    return bool(type_ == DIGEST_TYPE)


def _staged_digest(field: pa.Field) -> bool:
    """A hash column as staged (a source column of the same type is the user's: left as is)."""
    return field.name in (KEY_HASH, ROW_HASH) and is_digest(field.type)


def hex_digests(digests: pa.Array | pa.ChunkedArray) -> pa.Array:
    """20-byte digests as 40-digit lowercase hex text (vectorised; a null stays null)."""
    if isinstance(digests, pa.ChunkedArray):
        digests = digests.combine_chunks()
    count = len(digests)
    data = np.frombuffer(digests.buffers()[1], np.uint8) if count else np.zeros(0, np.uint8)
    data = data[digests.offset * DIGEST_BYTES :][: count * DIGEST_BYTES]
    text = _HEX_PAIRS[data].tobytes()  # each byte's two digits, in order
    offsets = np.arange(0, 2 * DIGEST_BYTES * count + 1, 2 * DIGEST_BYTES, dtype=np.int32)
    validity = digests.buffers()[0] if digests.null_count else None
    if validity is not None and digests.offset:  # re-base the bitmap of a slice
        validity = pc.is_valid(digests).buffers()[1]
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(text), validity, digests.null_count
    )


def hex_digests_decoded(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """40-digit hex text as 20-byte digests (DIGEST_TYPE); ValueError for anything else (a null,
    another length, a character that is not a hex digit)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    count = len(text)
    if count == 0:
        return pa.array([], DIGEST_TYPE)
    width = 2 * DIGEST_BYTES
    if text.null_count or not pc.all(pc.equal(pc.binary_length(text), width)).as_py():
        raise ValueError("expected 40-digit sha1 hex hashes")
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset :][: count + 1]
    digits = text.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    try:  # bytes.fromhex reads the digits at C speed (0.1 s a million hashes)
        decoded = bytes.fromhex(digits.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        decoded = b""
    if len(decoded) != count * DIGEST_BYTES:  # (fromhex also skips spaces)
        raise ValueError("expected 40-digit sha1 hex hashes")
    return pa.FixedSizeBinaryArray.from_buffers(DIGEST_TYPE, count, [None, pa.py_buffer(decoded)])


def _hex_hash(field: pa.Field) -> bool:
    """A hash column spelled as hex text (as event files and windows held them before)."""
    return field.name in (KEY_HASH, ROW_HASH) and pa.types.is_string(field.type)


def hex_type(field: pa.Field) -> pa.Field:
    """The field as people see it: a hash column as its hex text."""
    return field.with_type(HEX_TYPE) if _staged_digest(field) else field


def hex_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([hex_type(f) for f in schema], metadata=schema.metadata)


def hex_columns(table: pa.Table) -> pa.Table:
    """The table as people see it (exports, the warehouse): its hash columns as hex text."""
    for index, field in enumerate(table.schema):
        if _staged_digest(field):
            table = table.set_column(index, hex_type(field), hex_digests(table.column(index)))
    return table


def digest_type(field: pa.Field) -> pa.Field:
    """The field as stored: a hash column as its 20 bytes."""
    return field.with_type(DIGEST_TYPE) if _hex_hash(field) else field


def digest_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([digest_type(f) for f in schema], metadata=schema.metadata)


def digest_columns(table: pa.Table) -> pa.Table:
    """The table as stored: its hash columns as 20-byte digests (hex text decoded: a file
    written before hashes were stored as bytes reads as one written now)."""
    for index, field in enumerate(table.schema):
        if _hex_hash(field):
            table = table.set_column(
                index, digest_type(field), hex_digests_decoded(table.column(index))
            )
    return table


_connections = threading.local()


def _duckdb() -> "duckdb.DuckDBPyConnection":
    """This thread's in-memory DuckDB: it joins the texts and runs sha1 over Arrow data in
    vectorised C++ on every core, about ten times faster than a call to hashlib per value.
    (DuckDB is imported when a large input first needs it.)"""
    import duckdb

    connection: duckdb.DuckDBPyConnection | None = getattr(_connections, "connection", None)
    if connection is None:
        connection = _connections.connection = duckdb.connect(":memory:")
    return connection


DUCKDB_FROM = 20_000  # rows; fewer are hashed by hashlib (no DuckDB import or connection)


def _hashlib_sha1(joined: pa.ChunkedArray | pa.Array) -> pa.Array:
    """sha1 of every value (DIGEST_TYPE), in the input's order."""
    values = joined.cast(pa.binary()).to_pylist()
    return pa.array([hashlib.sha1(value).digest() for value in values], DIGEST_TYPE)


def _duckdb_sha1(texts: list[pa.Array], joined: "duckdb.Expression") -> pa.Array:
    """sha1 (DIGEST_TYPE) of the DuckDB expression `joined` over the columns c0, c1, ...
    (`texts`): the joining and the hashing both vectorised, on every core."""
    import duckdb as db

    source = pa.table({f"c{i}": text for i, text in enumerate(texts)})
    digest = db.FunctionExpression("unhex", db.FunctionExpression("sha1", joined)).alias("h")
    blobs = _duckdb().from_arrow(source).select(digest).to_arrow_table()["h"].combine_chunks()
    if pa.types.is_large_binary(blobs.type):
        blobs = blobs.cast(pa.binary())
    offsets = np.frombuffer(blobs.buffers()[1], np.int32)[blobs.offset :][: len(blobs) + 1]
    if blobs.null_count or not np.array_equal(np.diff(offsets), np.full(len(blobs), DIGEST_BYTES)):
        raise AssertionError("sha1 gave a value that is not 20 bytes")  # (never: checked anyway)
    data = blobs.buffers()[2].slice(int(offsets[0]), DIGEST_BYTES * len(blobs))
    return pa.FixedSizeBinaryArray.from_buffers(DIGEST_TYPE, len(blobs), [None, data])


def key_hashes(table: pa.Table, keys: list[str]) -> pa.Array:
    """sha1 of the key values as text, joined by FIELD_SEP (a null as NULL)."""
    if table.num_rows == 0:
        return pa.array([], DIGEST_TYPE)
    texts = [_text(table[k]) for k in keys]
    if table.num_rows >= DUCKDB_FROM:
        import duckdb as db

        parts = [
            db.CoalesceOperator(db.ColumnExpression(f"c{i}"), db.ConstantExpression(NULL))
            for i in range(len(texts))
        ]
        joined = (
            db.FunctionExpression("concat_ws", db.ConstantExpression(FIELD_SEP), *parts)
            if len(parts) > 1
            else parts[0]
        )
        return _duckdb_sha1(texts, joined)
    parts = [pc.fill_null(text, NULL) for text in texts]
    joined = pc.binary_join_element_wise(*parts, FIELD_SEP) if len(parts) > 1 else parts[0]
    return _hashlib_sha1(joined)


def row_hashes(table: pa.Table, columns: list[str]) -> pa.Array:
    """sha1 of `name NAME_SEP value` pairs, sorted by name, joined by FIELD_SEP, nulls left out
    ("" when every value is null)."""
    if table.num_rows == 0:
        return pa.array([], DIGEST_TYPE)
    names = sorted(columns)
    if not names:
        return _hashlib_sha1(pa.array([""] * table.num_rows, pa.string()))
    texts = [_text(table[name]) for name in names]
    if table.num_rows >= DUCKDB_FROM:
        import duckdb as db

        parts = [  # `||` is null when the value is; concat_ws skips nulls ("" if all are)
            db.FunctionExpression(
                "||", db.ConstantExpression(name + NAME_SEP), db.ColumnExpression(f"c{i}")
            )
            for i, name in enumerate(names)
        ]
        joined = db.FunctionExpression("concat_ws", db.ConstantExpression(FIELD_SEP), *parts)
        return _duckdb_sha1(texts, joined)
    parts = [
        pc.binary_join_element_wise(pa.scalar(name + NAME_SEP), text, "")
        for name, text in zip(names, texts, strict=True)
    ]
    # pyarrow 26 drops the rows whose inputs are all null when joining with null_handling="skip"
    # (3 rows in, 2 out). Joining everything-skipped gives "", so put "" there ourselves.
    all_null = pc.is_null(parts[0])
    for part in parts[1:]:
        all_null = pc.and_(all_null, pc.is_null(part))
    parts[0] = pc.if_else(all_null, "", parts[0])
    joined = pc.binary_join_element_wise(*parts, FIELD_SEP, null_handling="skip")
    return _hashlib_sha1(joined)


# --- a digest as integers: what the key index holds and repeated keys are first looked for by

Parts = tuple[np.ndarray, np.ndarray, np.ndarray]  # (first 8 bytes, next 8, last 4)


def _digest_bytes(hashes: pa.Array | pa.ChunkedArray, size: int) -> np.ndarray:
    """The first `size` bytes of each hash, as a (count, size) uint8 array. A hash is given as
    its 20 bytes (DIGEST_TYPE: a view, no copy) or as 40 hex digits (as stored before)."""
    if isinstance(hashes, pa.ChunkedArray):
        hashes = hashes.combine_chunks()
    count = len(hashes)
    if count == 0:
        return np.zeros((0, size), np.uint8)
    if not is_digest(hashes.type):  # hex text: event files of Ingest before 03a570f
        hashes = hex_digests_decoded(hashes)
    if hashes.null_count:
        raise ValueError("expected sha1 hashes, found nulls")
    data = np.frombuffer(hashes.buffers()[1], dtype=np.uint8)
    data = data[hashes.offset * DIGEST_BYTES :][: count * DIGEST_BYTES]
    return data.reshape(count, DIGEST_BYTES)[:, :size]


def key_prefixes(hashes: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The first 8 bytes of each hash as a big-endian uint64: digest_parts(hashes)[0] (what
    repeated keys are first looked for by)."""
    return _digest_bytes(hashes, 8).copy().view(">u8").ravel().astype(np.uint64)


def digest_parts(hashes: pa.Array | pa.ChunkedArray) -> Parts:
    """sha1 hashes (20 bytes, or 40 hex digits) -> (first 8 bytes, next 8, last 4) as
    big-endian ints."""
    digest = _digest_bytes(hashes, DIGEST_BYTES)
    first = digest[:, :8].copy().view(">u8").ravel().astype(np.uint64)
    second = digest[:, 8:16].copy().view(">u8").ravel().astype(np.uint64)
    third = digest[:, 16:].copy().view(">u4").ravel().astype(np.uint32)
    return first, second, third
