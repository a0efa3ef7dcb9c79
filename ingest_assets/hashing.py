"""Row identity: `key_hash` (sha1 of the primary-key values) and `row_hash` (sha1 of the rest).

Values are rendered by Arrow's casts to text (shortest round-trip floats, ISO-like timestamps in
UTC), so a hash depends only on the typed values. `row_hash` joins `name=value` pairs sorted by
name and leaves nulls out, so adding a nullable column does not turn every row into a revision.
"""

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIELD_SEP = "\x1f"
NAME_SEP = "\x1e"
NULL = "\x00"


def _text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


DIGEST_BYTES = 20


def _sha1(joined: pa.ChunkedArray | pa.Array) -> pa.Array:
    """sha1 of every value as 40-character hex text. The bytes go to hashlib without a detour
    through Python text, and the hex is spelled out by numpy: about 0.4 s per million values."""
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    sha1 = hashlib.sha1
    digests = b"".join([sha1(value).digest() for value in joined.cast(pa.binary()).to_pylist()])
    return hex_array(np.frombuffer(digests, dtype=np.uint8), len(joined))


HEX_PAIRS = np.array(  # a byte -> its two hex digits, as one little-endian uint16
    [ord(f"{b:02x}"[0]) | ord(f"{b:02x}"[1]) << 8 for b in range(256)], dtype="<u2"
)


def hex_array(digest_bytes: np.ndarray, count: int) -> pa.Array:
    """`count` digests of DIGEST_BYTES bytes each, laid end to end, as hex strings."""
    text = HEX_PAIRS[digest_bytes].view(np.uint8)
    width = 2 * DIGEST_BYTES
    offsets = np.arange(0, width * (count + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text))


def key_hashes(table: pa.Table, keys: list[str]) -> pa.Array:
    if table.num_rows == 0:
        return pa.array([], pa.string())
    parts = [pc.fill_null(_text(table[k]), NULL) for k in keys]
    joined = pc.binary_join_element_wise(*parts, FIELD_SEP) if len(parts) > 1 else parts[0]
    return _sha1(joined)


def row_hashes(table: pa.Table, columns: list[str]) -> pa.Array:
    if table.num_rows == 0:
        return pa.array([], pa.string())
    parts = [
        pc.binary_join_element_wise(pa.scalar(name + NAME_SEP), _text(table[name]), "")
        for name in sorted(columns)
    ]
    if not parts:
        return _sha1(pa.array([""] * table.num_rows, pa.string()))
    # pyarrow 26 drops the rows whose inputs are all null when joining with null_handling="skip"
    # (3 rows in, 2 out). Joining everything-skipped gives "", so put "" there ourselves.
    all_null = pc.is_null(parts[0])
    for part in parts[1:]:
        all_null = pc.and_(all_null, pc.is_null(part))
    parts[0] = pc.if_else(all_null, "", parts[0])
    joined = pc.binary_join_element_wise(*parts, FIELD_SEP, null_handling="skip")
    return _sha1(joined)
