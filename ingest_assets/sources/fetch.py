"""Fetching a dataset's source bytes: local files, HTTP (pages included) and S3 objects.

Secrets in URL, headers and params are resolved here, at run time; error messages and metadata
carry the masked URL, never a credential. The headers and credentials of an HTTP source go to
the origin of `source.url` only (see ingest_resources.http), and one deadline bounds the whole
fetch, pages included. When INGEST_SOURCE_ROOTS is set, a file source must resolve inside it.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ingest_assets import settings
from ingest_assets.contract import DatasetConfig, Secrets, Source
from ingest_assets.sources.pages import fetch_pages
from ingest_assets.sources.request import http_client, http_request, masked
from ingest_assets.sources.windows import Window, fill_window
from ingest_resources import progress
from ingest_resources.http import FetchError, SourceMissing
from ingest_resources.object_store import file_chunks, file_sha256

SOURCE_ROOTS = "INGEST_SOURCE_ROOTS"

EXTENSIONS = {
    "csv": "csv",
    "xlsx": "xlsx",
    "xls": "xls",
    "ods": "ods",
    "json": "json",
    "jsonl": "jsonl",
    "rss": "xml",
    "parquet": "parquet",
}
COMPRESSED = ("gz", "zip")  # kept after the format's extension: `csv.gz`


@dataclass(frozen=True)
class Fetched:
    content: bytes  # empty when `path` is set
    ext: str
    source: str  # path or masked URL, for messages and metadata
    etag: str | None = None
    last_modified: str | None = None
    path: Path | None = None  # a local file, read in chunks rather than loaded whole
    content_type: str | None = None  # the response's (its charset may name a feed's encoding)

    def _local(self) -> Path:
        assert self.path is not None
        return self.path

    def sha256_and_size(self) -> tuple[str, int]:
        """Of the local file, read in chunks."""
        return file_sha256(self._local())

    def copy_and_hash(self, target: Path) -> tuple[str, int]:
        """Copy the file to `target` in chunks, hashing what was copied: the sha256 names the
        bytes stored even if the source changes meanwhile. Returns (sha256, size)."""
        digest, size = hashlib.sha256(), 0
        with target.open("wb") as copy:
            for chunk in file_chunks(self._local()):
                digest.update(chunk)
                copy.write(chunk)
                size += len(chunk)
                progress.add(bytes_=len(chunk))
        return digest.hexdigest(), size


def resolve_path(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else settings.project_root() / candidate


def _extension(config: DatasetConfig, name: str) -> str:
    path = Path(name.split("?")[0])
    suffix = path.suffix.lstrip(".").lower()
    workbook = ("xlsx", "xls", "xlsm", "ods")
    if config.source.format in workbook and suffix in workbook:
        return suffix
    if suffix in COMPRESSED and config.source.compression != "none":
        return f"{_extension(config, path.stem)}.{suffix}"
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
        raise SourceMissing(f"{label}: file not found")
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


def _fetch_http(config: DatasetConfig, secrets: Secrets, window: Window | None) -> Fetched:
    request = http_request(config, secrets, window)
    masked_url = secrets.mask(request.url)
    label = f"dataset {config.dataset_id}: GET {masked_url}"
    client = http_client(config, secrets)
    pagination = config.source.pagination
    try:
        if pagination is not None:
            content, first = fetch_pages(client, config, pagination, request, label)
        else:
            first = client.get(
                request.url, headers=request.headers, params=request.params, label=label
            )
            content = first.content
    except FetchError as exc:
        raise masked(exc, secrets) from None
    return Fetched(
        content=content,
        ext=_extension(config, request.url),
        source=masked_url,
        etag=first.etag,
        last_modified=first.last_modified,
        content_type=None if pagination is not None else first.content_type,  # (pages: re-encoded)
    )


def located(config: DatasetConfig, window: Window | None) -> DatasetConfig:
    """The config with `{partition_start...}` filled in source.path and source.key: the
    partition's own file or object (a url is filled with its request)."""
    source, update = config.source, {}
    for field in ("path", "key"):
        template = getattr(source, field)
        if template and "{" in template:
            update[field] = fill_window(template, window, config, f"source.{field}")
    if source.kind == "s3" and source.url and "{" in source.url:
        update["url"] = fill_window(source.url, window, config, "source.url")
    if not update:
        return config
    return config.model_copy(update={"source": source.model_copy(update=update)})


def fetch(
    config: DatasetConfig, secrets: Secrets | None = None, window: Window | None = None
) -> Fetched:
    """The source's bytes (a partition's own file when its location has placeholders). A
    file, object or URL that is not there raises `SourceMissing`."""
    secrets = secrets or Secrets()
    config = located(config, window)
    kind = config.source.kind
    if kind == "file":
        return _fetch_file(config)
    if kind == "http":
        return _fetch_http(config, secrets, window)
    return _fetch_s3(config)


def _fetch_s3(config: DatasetConfig) -> Fetched:
    from botocore.exceptions import BotoCoreError, ClientError

    from ingest_resources.runtime import aws_client, endpoint_url

    source = config.source
    bucket, key = s3_object(source)
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
        error = SourceMissing if code in ("NoSuchKey", "404", "NotFound") else FetchError
        raise error(
            f"{label}: {code or 'error'}: {exc.response.get('Error', {}).get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise FetchError(f"{label}: {type(exc).__name__}: {exc}") from None
    last_modified = response.get("LastModified")
    return Fetched(
        content=content,
        ext=_extension(config, key or ""),  # (no key: get_object refused it)
        source=f"s3://{bucket}/{key}",
        etag=response.get("ETag"),
        last_modified=last_modified.isoformat() if last_modified else None,
        content_type=response.get("ContentType"),
    )


def s3_object(source: Source) -> tuple[str, str | None]:
    """The bucket and key of an `s3` source: source.bucket and source.key when a bucket is
    given, else those of its url (s3://bucket/key)."""
    from ingest_resources.s3_store import parse_s3_url  # (boto3: only for an S3 source)

    if source.bucket:
        return source.bucket, source.key
    return parse_s3_url(source.url or "")
