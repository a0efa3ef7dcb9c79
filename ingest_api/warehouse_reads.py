"""`source=warehouse`: the rows of a dataset's PostgreSQL table (publish.postgres), filtered and
paginated by keyset on the primary key.

Nothing the client sends becomes SQL text: identifiers come from the config and the table's
own catalog (quoted by psycopg2.sql), values travel as parameters. The table holds the latest
rows only, so `version` is refused here. A scan is pinned to the newest version of the ledger
(`ingest_loads`) when it began: each page is read in one REPEATABLE READ transaction that
first reads the ledger, and if a newer version was loaded meanwhile the scan stops with a 409
(start again, or read the store, whose scans are pinned to their version whatever is
published)."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg2
import pyarrow as pa
from fastapi.responses import Response, StreamingResponse
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as PgCursor

from ingest_api.cursor import Cursor, digest, encode
from ingest_api.errors import BadParameter, Conflict, NotFound, Unavailable
from ingest_api.filters import Filters
from ingest_api.output import (
    MEDIA_TYPES,
    NEXT_CURSOR,
    VERSION_HEADER,
    json_body,
    json_rows,
    stream,
)
from ingest_api.state import ApiState
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_resources.postgres_names import table_column
from ingest_resources.warehouse import LEDGER, server_message
from ingest_resources.warehouse.schema import existing_columns

HIDDEN = ("source",)  # the dataset_id of every row: the table may be shared
TEXT_TYPES = ("text", "character varying")
ARROW_TYPES = {
    "double precision": pa.float64(),
    "real": pa.float32(),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "character varying": pa.string(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
    "date": pa.date32(),
}
FETCH_ROWS = 50_000


class Table:
    """The dataset's table as the warehouse has it: its columns (as PostgreSQL names them)."""

    def __init__(self, config: DatasetConfig, columns: dict[str, str]) -> None:
        target = config.publish.postgres
        assert target is not None
        self.config, self.schema, self.table = config, target.schema_, target.table
        self.columns = {n: t for n, t in columns.items() if n not in HIDDEN}
        self.keys = [table_column(k) for k in config.primary_keys]
        wanted = table_column(config.normalize.time_column)
        self.time = wanted if wanted in self.columns else "collection_date"

    def arrow_schema(self, names: list[str]) -> pa.Schema:
        return pa.schema([(n, ARROW_TYPES.get(self.columns[n], pa.string())) for n in names])

    def select(self, names: list[str]) -> sql.Composable:
        """The columns, those of a type Arrow is not given here as text."""
        parts: list[sql.Composable] = []
        for name in names:
            if self.columns[name] in ARROW_TYPES:
                parts.append(sql.Identifier(name))
            else:
                parts.append(
                    sql.SQL("{}::text AS {}").format(sql.Identifier(name), sql.Identifier(name))
                )
        return sql.SQL(", ").join(parts)

    def where(self, filters: Filters, after: list[Any] | None) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier("source"))]
        params: list[Any] = [self.config.dataset_id]
        if filters.series:
            if SERIES_CODE in self.columns:
                clauses.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(SERIES_CODE)))
                params.append(list(filters.series))
            elif self.config.dataset_id not in filters.series:
                clauses.append(sql.SQL("false"))
        if filters.start or filters.end:
            column = sql.Identifier(self.time)
            if self.columns.get(self.time) == "date":
                low: dt.date | dt.datetime = filters.lower().date()
                high: dt.date | dt.datetime = (
                    filters.upper_exclusive() - dt.timedelta(microseconds=1)
                ).date()
                clauses.append(sql.SQL("{} BETWEEN %s AND %s").format(column))
            else:
                low, high = filters.lower(), filters.upper_exclusive()
                clauses.append(sql.SQL("{} >= %s AND {} < %s").format(column, column))
            params += [low, high]
        if filters.q:
            texts = [n for n, kind in self.columns.items() if kind in TEXT_TYPES]
            pattern = (
                "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            matches = [sql.SQL("{} ILIKE %s").format(sql.Identifier(n)) for n in texts]
            clauses.append(
                sql.SQL("({})").format(sql.SQL(" OR ").join(matches or [sql.SQL("false")]))
            )
            params += [pattern] * len(texts)
        if after is not None:
            keys = sql.SQL(", ").join(sql.Identifier(k) for k in self.keys)
            marks = sql.SQL(", ").join(sql.Placeholder() for _ in self.keys)
            clauses.append(sql.SQL("({}) > ({})").format(keys, marks))
            params += after
        return sql.SQL(" AND ").join(clauses), params

    def query(
        self, names: list[str], filters: Filters, after: list[Any] | None, limit: int | None
    ) -> tuple[sql.Composable, list[Any]]:
        where, params = self.where(filters, after)
        statement = sql.SQL("SELECT {}, {} FROM {} WHERE {} ORDER BY {}").format(
            self.select(names),
            sql.SQL(", ").join(sql.Identifier(k) for k in self.keys),
            sql.Identifier(self.schema, self.table),
            where,
            sql.SQL(", ").join(sql.Identifier(k) for k in self.keys),
        )
        if limit is not None:
            statement = sql.SQL("{} LIMIT {}").format(statement, sql.Literal(limit))
        return statement, params


def _connect(state: ApiState, dataset_id: str) -> Connection:
    warehouse = state.runtime.warehouse
    assert warehouse is not None
    try:
        connection = warehouse.connect()
        connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
        return connection
    except psycopg2.Error as exc:
        raise Unavailable(f"dataset {dataset_id}: the warehouse: {server_message(exc)}") from None


def _ledger_head(cursor: PgCursor, dataset_id: str) -> str | None:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (LEDGER,))
    row = cursor.fetchone()
    if not row or not row[0]:
        return None
    cursor.execute(
        sql.SQL("SELECT max(version) FROM {} WHERE dataset = %s").format(sql.Identifier(LEDGER)),
        (dataset_id,),
    )
    found = cursor.fetchone()
    return str(found[0]) if found and found[0] else None


def _open(
    state: ApiState, dataset_id: str
) -> tuple[DatasetConfig, Connection, PgCursor, Table, str]:
    config = state.catalog.config(dataset_id)
    target = config.publish.postgres
    if target is None:
        raise BadParameter(
            f"source=warehouse: dataset {dataset_id} has no publish.postgres table", "source"
        )
    if state.runtime.warehouse is None:
        raise BadParameter(
            "source=warehouse: INGEST_POSTGRES_URL is not set on this server", "source"
        )
    connection = _connect(state, dataset_id)
    try:
        cursor = connection.cursor()
        head = _ledger_head(cursor, dataset_id)
        columns = existing_columns(cursor, target.schema_, target.table)
    except psycopg2.Error as exc:
        connection.close()
        raise Unavailable(f"dataset {dataset_id}: the warehouse: {server_message(exc)}") from None
    if head is None or not columns:
        connection.close()
        raise NotFound(f"dataset {dataset_id}: nothing loaded into the warehouse yet")
    return config, connection, cursor, Table(config, columns), head


def _names(table: Table, columns: list[str] | None) -> list[str]:
    known = list(table.columns)
    if not columns:
        return known
    wanted = [table_column(n) for item in columns for n in item.split(",") if n]
    unknown = [n for n in wanted if n not in table.columns]
    if unknown:
        raise BadParameter(
            f"columns: no column {unknown[0][:80]!r} in the warehouse table of dataset "
            f"{table.config.dataset_id} (its columns: {', '.join(known)})"
        )
    return list(dict.fromkeys(wanted))


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def respond(
    state: ApiState,
    dataset_id: str,
    filters: Filters,
    columns: list[str] | None,
    version: str | None,
    size: int | None,
    pinned: Cursor | None,
    fmt: str,
) -> Response:
    if version is not None:
        raise BadParameter(
            "version: the warehouse holds the latest rows only (use source=store)", "version"
        )
    config, connection, cursor, table, head = _open(state, dataset_id)
    fingerprint = digest("warehouse", filters.digest())
    after = None
    if pinned is not None:
        if pinned.dataset != dataset_id or pinned.filters != fingerprint or pinned.after is None:
            connection.close()
            raise BadParameter(
                "cursor: made for another dataset, source or filters: repeat the filters of the request that returned it",
                "cursor",
            )
        if pinned.version != head:
            connection.close()
            raise Conflict(
                f"dataset {dataset_id}: the warehouse loaded version {head} after this scan "
                f"began on {pinned.version}: start again, or read source=store (pinned)"
            )
        after = pinned.after
    try:
        names = _names(table, columns)
    except BadParameter:
        connection.close()
        raise
    schema = table.arrow_schema(names)
    if size is None:
        return StreamingResponse(
            stream(
                fmt, _all_rows(connection, cursor, table, names, filters, after, schema), schema
            ),
            media_type=MEDIA_TYPES[fmt],
            headers={VERSION_HEADER: head},
        )
    try:
        statement, params = table.query(names, filters, after, size + 1)
        cursor.execute(statement, params)
        fetched = cursor.fetchall()
    except psycopg2.Error as exc:
        raise Unavailable(f"dataset {dataset_id}: the warehouse: {server_message(exc)}") from None
    finally:
        connection.close()
    rows, more = fetched[:size], len(fetched) > size
    count = len(names)
    page = _arrow(rows, count, schema)
    next_cursor = None
    if more and rows:
        last = [_plain(v) for v in rows[-1][count:]]
        made = Cursor(dataset_id, head, fingerprint, "", 0, "", last)
        next_cursor = encode(made, state.settings.cursor_key)
    headers = {VERSION_HEADER: head}
    if fmt != "json":
        if next_cursor:
            headers[NEXT_CURSOR] = next_cursor
        return StreamingResponse(
            stream(fmt, iter([page]), schema), media_type=MEDIA_TYPES[fmt], headers=headers
        )
    body = {
        "dataset_id": dataset_id,
        "version": head,
        "source": "warehouse",
        "columns": names,
        "count": len(rows),
        "rows": json_rows([page], names),
        "next_cursor": next_cursor,
    }
    return Response(json_body(body), media_type="application/json", headers=headers)


def _arrow(rows: list[tuple[Any, ...]], count: int, schema: pa.Schema) -> pa.Table:
    return pa.table(
        [pa.array([row[i] for row in rows], field.type) for i, field in enumerate(schema)][:count],
        schema=schema,
    )


def _all_rows(
    connection: Connection,
    cursor: PgCursor,
    table: Table,
    names: list[str],
    filters: Filters,
    after: list[Any] | None,
    schema: pa.Schema,
) -> Iterator[pa.Table]:
    """Every row, fetched FETCH_ROWS at a time through a server-side cursor, in the page's
    transaction (its snapshot: the version read from the ledger)."""
    try:
        statement, params = table.query(names, filters, after, None)
        named = connection.cursor(name="ingest_api_scan")
        named.itersize = FETCH_ROWS
        named.execute(statement, params)
        while rows := named.fetchmany(FETCH_ROWS):
            yield _arrow(rows, len(names), schema)
        named.close()
    finally:
        cursor.close()
        connection.close()
