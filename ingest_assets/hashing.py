"""Row identity: `key_hash` (sha1 of the primary-key values) and `row_hash` (sha1 of the rest).

Values are rendered by Arrow's casts to text (shortest round-trip floats, ISO-like timestamps in
UTC), so a hash depends only on the typed values. `row_hash` joins `name=value` pairs sorted by
name and leaves nulls out, so adding a nullable column does not turn every row into a revision.
"""

import hashlib
import threading

import pyarrow as pa
import pyarrow.compute as pc

FIELD_SEP = "\x1f"
NAME_SEP = "\x1e"
NULL = "\x00"


def _text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


DIGEST_BYTES = 20

_connections = threading.local()


def _db():
    """DuckDB, imported when a large input first needs it."""
    import duckdb

    return duckdb


def _duckdb():
    """This thread's in-memory DuckDB: it joins the texts and runs sha1 over Arrow data in
    vectorised C++ on every core, about ten times faster than a call to hashlib per value."""
    connection = getattr(_connections, "connection", None)
    if connection is None:
        connection = _connections.connection = _db().connect(":memory:")
    return connection


DUCKDB_FROM = 20_000  # rows; fewer are hashed by hashlib (no DuckDB import or connection)


def _hashlib_sha1(joined: pa.ChunkedArray | pa.Array) -> pa.Array:
    """sha1 of every value as 40-character lowercase hex text, in the input's order."""
    values = joined.cast(pa.binary()).to_pylist()
    return pa.array([hashlib.sha1(value).hexdigest() for value in values], pa.string())


def _duckdb_sha1(texts: list, joined) -> pa.Array:
    """sha1 (hex) of the DuckDB expression `joined` over the columns c0, c1, ... (`texts`): the
    joining and the hashing both vectorised, on every core."""
    source = pa.table({f"c{i}": text for i, text in enumerate(texts)})
    expression = _db().FunctionExpression("sha1", joined).alias("h")
    hashed = _duckdb().from_arrow(source).select(expression).to_arrow_table()
    return hashed["h"].combine_chunks().cast(pa.string())


def key_hashes(table: pa.Table, keys: list[str]) -> pa.Array:
    """sha1 of the key values as text, joined by FIELD_SEP (a null as NULL)."""
    if table.num_rows == 0:
        return pa.array([], pa.string())
    texts = [_text(table[k]) for k in keys]
    if table.num_rows >= DUCKDB_FROM:
        db = _db()
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
        return pa.array([], pa.string())
    names = sorted(columns)
    if not names:
        return _hashlib_sha1(pa.array([""] * table.num_rows, pa.string()))
    texts = [_text(table[name]) for name in names]
    if table.num_rows >= DUCKDB_FROM:
        db = _db()
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
