"""Fetching a dataset's source bytes: local files, HTTP and S3 objects.

Secrets in URL, headers and params are resolved here, at run time; error messages and metadata
carry the masked URL, never a credential. The headers and credentials of an HTTP source go to
the origin of `source.url` only (see ingest_resources.http), and one deadline bounds the whole
fetch, pages included. When INGEST_SOURCE_ROOTS is set, a file source must resolve inside it.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ingest_assets import settings
from ingest_assets.contract import DatasetConfig, Secrets
from ingest_assets.sources.windows import Window, fill_window
from ingest_resources.http import (
    Deadline,
    Download,
    FetchError,
    HttpClient,
    RetryPolicy,
    shared_breaker,
)

SOURCE_ROOTS = "INGEST_SOURCE_ROOTS"

EXTENSIONS = {
    "csv": "csv",
    "xlsx": "xlsx",
    "xls": "xls",
    "json": "json",
    "rss": "xml",
    "parquet": "parquet",
}


CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Fetched:
    content: bytes  # empty when `path` is set
    ext: str
    source: str  # path or masked URL, for messages and metadata
    etag: str | None = None
    last_modified: str | None = None
    path: Path | None = None  # a local file, read in chunks rather than loaded whole

    def _chunks(self):
        """The local file's bytes, a chunk at a time, read into one buffer (no new bytes
        object per chunk: a third less time to hash 46 MB)."""
        assert self.path is not None
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        with self.path.open("rb", buffering=0) as source:
            while count := source.readinto(buffer):
                yield view[:count]

    def sha256_and_size(self) -> tuple[str, int]:
        """Of the local file, read in chunks."""
        digest, size = hashlib.sha256(), 0
        for chunk in self._chunks():
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def copy_and_hash(self, target: Path) -> tuple[str, int]:
        """Copy the file to `target` in chunks, hashing what was copied: the sha256 names the
        bytes stored even if the source changes meanwhile. Returns (sha256, size)."""
        digest, size = hashlib.sha256(), 0
        with target.open("wb") as copy:
            for chunk in self._chunks():
                digest.update(chunk)
                copy.write(chunk)
                size += len(chunk)
        return digest.hexdigest(), size


def resolve_path(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else settings.project_root() / candidate


def _extension(config: DatasetConfig, name: str) -> str:
    suffix = Path(name.split("?")[0]).suffix.lstrip(".").lower()
    if config.source.format in ("xlsx", "xls") and suffix in ("xlsx", "xls", "xlsm", "ods"):
        return suffix
    return EXTENSIONS[config.source.format]


def source_roots() -> list[Path]:
    """The folders (real paths) that file sources must resolve inside: INGEST_SOURCE_ROOTS,
    separated by os.pathsep; none when it is unset or empty."""
    listed = os.environ.get(SOURCE_ROOTS, "").split(os.pathsep)
    return [Path(os.path.realpath(root)) for root in listed if root.strip()]


def local_file(config: DatasetConfig) -> Path:
    """The file a `kind: file` source names. With INGEST_SOURCE_ROOTS set, its real path (every
    symlink followed) must lie inside one of the roots, and that real path is what is read, so
    that what was checked is what is read: a config cannot take /etc/passwd or a secret key
    through a `..` or a symlink."""
    path = resolve_path(config.source.path or "")
    label = f"dataset {config.dataset_id}: source.path {path}"
    roots = source_roots()
    if roots:
        real = Path(os.path.realpath(path))
        if not any(real.is_relative_to(root) for root in roots):
            listed = os.pathsep.join(str(root) for root in roots)
            raise FetchError(
                f"{label} resolves to {real}, outside {SOURCE_ROOTS} ({listed}); refused"
            )
        path = real
    if not path.is_file():
        raise FetchError(f"{label}: file not found")
    return path


def _fetch_file(config: DatasetConfig) -> Fetched:
    shown = resolve_path(config.source.path or "")
    path = local_file(config)
    size = path.stat().st_size
    if size > config.source.max_bytes:
        raise FetchError(
            f"dataset {config.dataset_id}: source.path {shown}: {size:,} bytes, over "
            f"source.max_bytes {config.source.max_bytes:,}"
        )
    return Fetched(content=b"", ext=_extension(config, shown.name), source=str(shown), path=path)


def _client(config: DatasetConfig, secrets: Secrets) -> HttpClient:
    source = config.source
    retry = RetryPolicy(**source.retry.model_dump())
    return HttpClient(
        source.timeout_s,
        source.max_bytes,
        retry,
        shared_breaker(source.breaker.failures, source.breaker.cooldown_s),
        deadline_s=source.deadline,
        max_inflated_bytes=source.inflated_limit,
        follow_redirects=source.follow_redirects,
        mask=secrets.mask,
    )


def _request(config: DatasetConfig, secrets: Secrets, window: Window | None):
    """URL, headers and params with secrets and `{partition_start}`/`{partition_end}`/`{since}` filled."""
    source, dataset_id = config.source, config.dataset_id
    url = fill_window(
        secrets.expand(source.url or "", dataset_id, "source.url"), window, config, "source.url"
    )
    headers = secrets.expand_mapping(source.headers, dataset_id, "source.headers")
    params = {
        key: fill_window(value, window, config, f"source.params.{key}")
        if isinstance(value, str)
        else value
        for key, value in secrets.expand_mapping(source.params, dataset_id, "source.params").items()
    }
    return url, headers, params


def _fetch_http(config: DatasetConfig, secrets: Secrets, window: Window | None) -> Fetched:
    url, headers, params = _request(config, secrets, window)
    masked = secrets.mask(url)
    label = f"dataset {config.dataset_id}: GET {masked}"
    client = _client(config, secrets)
    try:
        if config.source.pagination is not None:
            content, first = _fetch_pages(client, config, url, headers, params, label)
        else:
            first = client.get(url, headers=headers, params=params, label=label)
            content = first.content
    except FetchError as exc:
        raise FetchError(secrets.mask(str(exc)), retryable=exc.retryable) from None
    return Fetched(
        content=content,
        ext=_extension(config, url),
        source=masked,
        etag=first.etag,
        last_modified=first.last_modified,
    )


def _page_records(body: object, config: DatasetConfig, label: str) -> list:
    path = config.source.records_path
    node = _dotted(body, path) if path else body
    if not isinstance(node, list):
        raise FetchError(
            f"{label}: no list of records at source.records_path {config.source.records_path!r}"
        )
    return node


def _dotted(body: object, path: str) -> object:
    for part in path.split("."):
        body = body.get(part) if isinstance(body, dict) else None
    return body


def _fetch_pages(client: HttpClient, config: DatasetConfig, url: str, headers, params, label: str):
    """Every page of a paginated JSON API, stored as `{"pages": [body, ...]}` (json_records reads
    the records of each page). Stops at the last page; more than max_pages is an error, not a
    silent truncation. One deadline for all the pages; the headers go only to the origin of
    source.url, wherever a next link points."""
    pagination = config.source.pagination
    deadline: Deadline = client.deadline()
    pages: list[object] = []
    first: Download | None = None
    next_url: str | None = url
    number, offset = 1, 0
    while True:
        if len(pages) >= pagination.max_pages:
            raise FetchError(
                f"{label}: more than source.pagination.max_pages={pagination.max_pages} pages; "
                "raise it or narrow the request"
            )
        query = dict(params)
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
            headers=headers,
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
            next_url = str(link) if link else response.link_next
            if not next_url:
                break
        elif pagination.kind == "page":
            if not records or (pagination.page_size and len(records) < pagination.page_size):
                break
            number += 1
        else:
            if len(records) < pagination.limit:
                break
            offset += pagination.limit
    return json.dumps({"pages": pages}).encode(), first


def fetch(
    config: DatasetConfig, secrets: Secrets | None = None, window: Window | None = None
) -> Fetched:
    secrets = secrets or Secrets()
    kind = config.source.kind
    if kind == "file":
        return _fetch_file(config)
    if kind == "http":
        return _fetch_http(config, secrets, window)
    return _fetch_s3(config)


def _fetch_s3(config: DatasetConfig) -> Fetched:
    from botocore.exceptions import BotoCoreError, ClientError

    from ingest_resources.runtime import aws_client, endpoint_url
    from ingest_resources.s3_store import parse_s3_url

    source = config.source
    bucket, key = (source.bucket, source.key) if source.bucket else parse_s3_url(source.url or "")
    label = f"dataset {config.dataset_id}: s3://{bucket}/{key}"
    client = aws_client("s3", endpoint_url())
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        size = response.get("ContentLength", 0)
        if size > source.max_bytes:
            response["Body"].close()
            raise FetchError(f"{label}: {size:,} bytes, over source.max_bytes {source.max_bytes:,}")
        content = response["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise FetchError(
            f"{label}: {code or 'error'}: {exc.response.get('Error', {}).get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise FetchError(f"{label}: {type(exc).__name__}: {exc}") from None
    last_modified = response.get("LastModified")
    return Fetched(
        content=content,
        ext=_extension(config, key),
        source=f"s3://{bucket}/{key}",
        etag=response.get("ETag"),
        last_modified=last_modified.isoformat() if last_modified else None,
    )


def probe(
    config: DatasetConfig,
    previous: dict | None,
    secrets: Secrets | None = None,
    window: Window | None = None,
) -> dict:
    """The source's current version, asked cheaply: a file's sha256, S3 HEAD's ETag, or an HTTP
    conditional GET (If-None-Match / If-Modified-Since; 304 means unchanged) whose version is
    the ETag, else Last-Modified, else a hash of the body. Raises FetchError when it cannot tell."""
    import hashlib

    previous = previous or {}
    kind = config.source.kind
    if kind == "file":
        path = local_file(config)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return {"version": f"sha256:{digest.hexdigest()}"}
    if kind == "s3":
        return _probe_s3(config)
    secrets = secrets or Secrets()
    url, headers, params = _request(config, secrets, window)
    conditional = dict(headers)
    if previous.get("etag"):
        conditional["If-None-Match"] = previous["etag"]
    if previous.get("last_modified"):
        conditional["If-Modified-Since"] = previous["last_modified"]
    label = f"dataset {config.dataset_id}: GET {secrets.mask(url)}"
    try:
        response = _client(config, secrets).get(
            url, headers=conditional, params=params, label=label
        )
    except FetchError as exc:
        raise FetchError(secrets.mask(str(exc)), retryable=exc.retryable) from None
    if response.status == 304 and previous.get("version"):
        return previous
    if response.etag:
        version = f"etag:{response.etag}"
    elif response.last_modified:
        version = f"last-modified:{response.last_modified}"
    else:
        version = f"sha256:{hashlib.sha256(response.content).hexdigest()}"
    return {"version": version, "etag": response.etag, "last_modified": response.last_modified}


def _probe_s3(config: DatasetConfig) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError

    from ingest_resources.runtime import aws_client, endpoint_url
    from ingest_resources.s3_store import parse_s3_url

    source = config.source
    bucket, key = (source.bucket, source.key) if source.bucket else parse_s3_url(source.url or "")
    try:
        head = aws_client("s3", endpoint_url()).head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise FetchError(f"dataset {config.dataset_id}: s3://{bucket}/{key}: {code}") from None
    except BotoCoreError as exc:
        raise FetchError(f"dataset {config.dataset_id}: s3://{bucket}/{key}: {exc}") from None
    return {"version": f"etag:{head['ETag']}"}
