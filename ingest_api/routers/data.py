"""GET /datasets/{id}/data: the published rows, latest value per key, filtered, paginated by
signed cursors pinned to a version (pages.py), as JSON pages or streamed CSV, Parquet or Arrow;
from the store, or from the warehouse table when asked (`source=warehouse`)."""

from collections.abc import Iterator
from typing import Annotated, Literal

import pyarrow as pa
from fastapi import Query
from fastapi.responses import Response, StreamingResponse

from ingest_api import warehouse_reads
from ingest_api.cursor import decode, encode
from ingest_api.errors import BadParameter
from ingest_api.filters import Filters, select_columns
from ingest_api.models import DataPage
from ingest_api.output import (
    MEDIA_TYPES,
    NEXT_CURSOR,
    VERSION_HEADER,
    json_body,
    json_rows,
    published,
    published_schema,
    stream,
)
from ingest_api.pages import Scan
from ingest_api.routers.common import DatasetId, State, errors, guarded_router

router = guarded_router()
JSON_PAGE, JSON_PAGE_MAX = 100, 1000
BULK_PAGE_MAX = 1_000_000

BULK = {
    fmt: {"schema": {"type": "string", "format": "binary"}}
    for fmt in ("text/csv", MEDIA_TYPES["parquet"], MEDIA_TYPES["arrow"])
}


@router.get(
    "/datasets/{dataset_id}/data",
    response_model=DataPage,
    responses={
        **errors(404, 409),
        200: {
            "description": "a JSON page; or (format=csv|parquet|arrow) the rows streamed, the "
            f"next page's cursor in the {NEXT_CURSOR} header when page_size was given",
            "content": BULK,
        },
    },
    summary="the published rows, latest value per key",
)
def data(
    dataset_id: DatasetId,
    state: State,
    series: Annotated[
        list[str] | None,
        Query(description="only these series (repeatable)", max_length=1000),
    ] = None,
    from_: Annotated[
        str | None,
        Query(alias="from", max_length=40, description="time column >= (ISO 8601 date or time)"),
    ] = None,
    to: Annotated[
        str | None,
        Query(max_length=40, description="time column <= (a date: the whole day)"),
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="text in any string column (any case)")
    ] = None,
    columns: Annotated[
        list[str] | None,
        Query(description="only these columns (repeatable, or comma-separated)", max_length=200),
    ] = None,
    version: Annotated[
        str | None, Query(max_length=40, description="a published version (default: current)")
    ] = None,
    page_size: Annotated[
        int | None,
        Query(
            ge=1,
            le=BULK_PAGE_MAX,
            description=f"rows a page: JSON {JSON_PAGE} by default, at most {JSON_PAGE_MAX}; "
            "csv/parquet/arrow: every row by default",
        ),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=4096, description="next_cursor of the previous page")
    ] = None,
    format: Annotated[Literal["json", "csv", "parquet", "arrow"], Query()] = "json",
    hashes: Annotated[
        Literal["hex", "binary"],
        Query(
            description="key_hash and row_hash as 40 hex digits (as `ingest export` spells "
            "them), or as their 20 bytes (format=parquet|arrow only: half the bytes of a bulk "
            "read)"
        ),
    ] = "hex",
    source: Annotated[
        Literal["store", "warehouse"],
        Query(description="warehouse: the dataset's PostgreSQL table (latest rows only)"),
    ] = "store",
) -> Response:
    if format == "json" and page_size is not None and page_size > JSON_PAGE_MAX:
        raise BadParameter(
            f"page_size={page_size}: at most {JSON_PAGE_MAX} rows a JSON page (format=csv, "
            "parquet or arrow stream more)",
            "page_size",
        )
    if hashes == "binary" and format not in ("parquet", "arrow"):
        raise BadParameter(
            f"hashes=binary: only with format=parquet or arrow (format={format} carries text)",
            "hashes",
        )
    size = page_size or (JSON_PAGE if format == "json" else None)
    filters = Filters.parse(series, from_, to, q)
    pinned = decode(cursor, state.settings.cursor_key) if cursor else None
    if pinned is not None and version is not None and pinned.version != version:
        raise BadParameter(
            f"version={version[:40]}: the cursor is pinned to version {pinned.version}", "version"
        )
    if source == "warehouse":
        if hashes == "binary":
            raise BadParameter(
                "hashes=binary: the warehouse holds hashes as hex text (use source=store)",
                "hashes",
            )
        return warehouse_reads.respond(
            state, dataset_id, filters, columns, version, size, pinned, format
        )
    snapshot = state.snapshot(dataset_id, pinned.version if pinned else version)
    names = select_columns(snapshot, columns)
    scan = Scan(snapshot, filters)
    position = scan.start(pinned)
    key = state.settings.cursor_key
    schema = published_schema(snapshot.schema, names, hashes)
    if size is None:  # a bulk read of every row from the cursor on

        def prepare(table: pa.Table) -> pa.Table:
            return published(table, names, hashes)

        tables = scan.stream(position, prepare)
        return _streamed(format, tables, schema, None, snapshot.version)
    pieces, following = scan.page(position, size)
    next_cursor = encode(following, key) if following else None
    if format != "json":
        ready = (published(piece, names, hashes) for piece in pieces)
        return _streamed(format, ready, schema, next_cursor, snapshot.version)
    rows = json_rows(pieces, names)
    body = {
        "dataset_id": dataset_id,
        "version": snapshot.version,
        "source": "store",
        "columns": names,
        "count": len(rows),
        "rows": rows,
        "next_cursor": next_cursor,
    }
    return Response(json_body(body), media_type="application/json")


def _streamed(
    fmt: str,
    tables: Iterator[pa.Table],
    schema: pa.Schema,
    next_cursor: str | None,
    version: str,
) -> StreamingResponse:
    """`tables`, already `published`, as one streamed `fmt` body."""
    headers = {VERSION_HEADER: version, **({NEXT_CURSOR: next_cursor} if next_cursor else {})}
    return StreamingResponse(
        stream(fmt, tables, schema), media_type=MEDIA_TYPES[fmt], headers=headers
    )
