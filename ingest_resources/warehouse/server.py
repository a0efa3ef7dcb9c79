"""What PostgreSQL answered: the one row of a statement that returns one, the message of a
failure (the server's own, even when it ended the connection; never the connection URL), and
a rollback that does not hide it."""

import ctypes
import functools
import re
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import psycopg2
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor


def single_row(cursor: Cursor) -> tuple[Any, ...]:
    """The row of a statement that returns exactly one (a SELECT of expressions, an aggregate)."""
    row = cursor.fetchone()
    if row is None:
        raise psycopg2.ProgrammingError("the statement returned no row")
    return row


@functools.cache
def _libpq_error_message() -> Callable[[int], bytes | None] | None:
    """libpq's PQerrorMessage, from the very libpq psycopg2 runs on (looked up through its
    extension module, which links it); None where that cannot be done."""
    try:
        function = ctypes.CDLL(psycopg2._psycopg.__file__).PQerrorMessage
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_char_p
    function.argtypes = [ctypes.c_void_p]
    return function


SERVER_LINE = re.compile(r"^([A-Z]+):  (.+)$")  # how libpq writes a server message's lines


def _said_before_closing(connection: Connection) -> list[str]:
    """What the server said as it ended the connection ('FATAL: terminating connection due to
    administrator command'). libpq keeps it in PQerrorMessage, but psycopg2's exception holds
    only the client's last words ('server closed the connection unexpectedly', or 'invalid
    socket' in a COPY): psycopg/psycopg2#1689. `connection.pgconn_ptr` is psycopg2's handle
    for calling libpq (documented); it stays valid until the connection is closed."""
    function, pointer = _libpq_error_message(), getattr(connection, "pgconn_ptr", None)
    if function is None or pointer is None:
        return []
    text = (function(pointer) or b"").decode("utf-8", errors="replace")
    found = (SERVER_LINE.match(line) for line in text.splitlines())
    return [f"{m[1]}: {m[2].strip()}" for m in found if m]


def server_message(exc: psycopg2.Error, connection: Connection | None = None) -> str:
    """What PostgreSQL said (its primary message, detail and SQLSTATE; or, when it ended the
    connection, the lines libpq kept), else psycopg2's own text (a refused connection); and
    whether the connection was lost. Never the connection URL (it may hold a password)."""
    lost = connection is not None and bool(connection.closed)
    primary = exc.diag.message_primary
    if primary:
        text = primary
        if exc.diag.message_detail:
            text += f" ({exc.diag.message_detail})"
        if exc.pgcode:
            text += f" [SQLSTATE {exc.pgcode}]"
    else:
        said = _said_before_closing(connection) if lost and connection is not None else []
        text = "; ".join(said) or " ".join(str(exc).split())
    if lost:
        text += "; the connection to PostgreSQL was lost"
    return f"PostgreSQL: {text}"


def rollback_quietly(connection: Connection) -> None:
    """Roll back if the connection still stands; a lost connection's transaction was rolled
    back by the server (and rolling back again would only say 'connection already closed')."""
    if connection.closed:
        return
    with suppress(psycopg2.Error):
        connection.rollback()
