"""PostgreSQL's names: the 63-byte limit on an identifier, and the name a longer column is
loaded under. No driver here: the contract's validation imports the limit."""

import functools
import hashlib

POSTGRES_NAME_BYTES = 63  # PostgreSQL truncates longer identifiers (NAMEDATALEN - 1)
NAME_HEAD_BYTES = POSTGRES_NAME_BYTES - 9  # what a long name keeps, before "_" and 8 hex digits


@functools.lru_cache(maxsize=4096)
def table_column(name: str) -> str:
    """The column's name in PostgreSQL. A name of at most 63 bytes in UTF-8 is kept as written;
    a longer one, which PostgreSQL would cut to 63 bytes (so the next load, not finding the
    full name, would add it again and fail), becomes its first 54 bytes (whole characters) +
    "_" + the first 8 hex digits of the sha1 of the whole name: at most 63 bytes, the same on
    every load, and two long names that share their first 54 bytes still differ."""
    encoded = name.encode()
    if len(encoded) <= POSTGRES_NAME_BYTES:
        return name
    head = encoded[:NAME_HEAD_BYTES].decode("utf-8", errors="ignore")  # no half character
    return f"{head}_{hashlib.sha1(encoded).hexdigest()[:8]}"


def quoted(*names: str) -> str:
    """`"schema"."table"`, quoted as psycopg2.sql.Identifier quotes it (for messages)."""
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)
