"""Every page of a paginated JSON API (`source.pagination`: next_link, page or offset)."""

import json

from ingest_assets.contract import DatasetConfig, Pagination
from ingest_assets.sources.request import Request
from ingest_resources.http import Download, FetchError, HttpClient


def _dotted(body: object, path: str) -> object:
    for part in path.split("."):
        body = body.get(part) if isinstance(body, dict) else None
    return body


def _page_records(body: object, config: DatasetConfig, label: str) -> list[object]:
    path = config.source.records_path
    node = _dotted(body, path) if path else body
    if not isinstance(node, list):
        raise FetchError(
            f"{label}: no list of records at source.records_path {config.source.records_path!r}"
        )
    return node


def fetch_pages(
    client: HttpClient,
    config: DatasetConfig,
    pagination: Pagination,
    request: Request,
    label: str,
) -> tuple[bytes, Download]:
    """Every page of a paginated JSON API, stored as `{"pages": [body, ...]}` (json_records reads
    the records of each page), and the first page's response. Stops at the last page; more than
    max_pages is an error, not a silent truncation. One deadline for all the pages; the headers
    go only to the origin of source.url, wherever a next link points."""
    url = request.url
    deadline = client.deadline()
    pages: list[object] = []
    first: Download | None = None
    next_url = url
    number, offset = 1, 0
    while True:
        if len(pages) >= pagination.max_pages:
            raise FetchError(
                f"{label}: more than source.pagination.max_pages={pagination.max_pages} pages; "
                "raise it or narrow the request"
            )
        query = dict(request.params)
        if pagination.kind == "page":
            query[pagination.page_param] = number
            if pagination.page_size_param and pagination.page_size:
                query[pagination.page_size_param] = pagination.page_size
        elif pagination.kind == "offset":
            query[pagination.offset_param] = offset
            query[pagination.limit_param] = pagination.limit
        target = next_url if pagination.kind == "next_link" else url
        response = client.get(
            target,
            headers=request.headers,
            params=query if target == url else {},
            label=label,
            deadline=deadline,
            home=url,
        )
        first = first or response
        try:
            body = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FetchError(f"{label}: page {len(pages) + 1} is not JSON: {exc}") from None
        pages.append(body)
        records = _page_records(body, config, label)
        if pagination.kind == "next_link":
            link = _dotted(body, pagination.next_path) if pagination.next_path else None
            found = str(link) if link else response.link_next
            if not found:
                break
            next_url = found
        elif pagination.kind == "page":
            if not records or (pagination.page_size and len(records) < pagination.page_size):
                break
            number += 1
        else:
            if len(records) < pagination.limit:
                break
            offset += pagination.limit
    return json.dumps({"pages": pages}).encode(), first
