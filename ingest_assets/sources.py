"""Fetching a dataset's source bytes: local files, HTTP and S3 objects.

Secrets in URL, headers and params are resolved here, at run time; error messages and metadata
carry the masked URL, never a credential.
"""

from dataclasses import dataclass
from pathlib import Path

from ingest_assets import settings
from ingest_assets.configs import Secrets
from ingest_assets.contract import DatasetConfig
from ingest_resources.http import FetchError, download

EXTENSIONS = {
    "csv": "csv",
    "xlsx": "xlsx",
    "xls": "xls",
    "json": "json",
    "rss": "xml",
    "parquet": "parquet",
}


@dataclass(frozen=True)
class Fetched:
    content: bytes
    ext: str
    source: str  # path or masked URL, for messages and metadata
    etag: str | None = None
    last_modified: str | None = None


def resolve_path(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else settings.project_root() / candidate


def _extension(config: DatasetConfig, name: str) -> str:
    suffix = Path(name.split("?")[0]).suffix.lstrip(".").lower()
    if config.source.format in ("xlsx", "xls") and suffix in ("xlsx", "xls", "xlsm", "ods"):
        return suffix
    return EXTENSIONS[config.source.format]


def _fetch_file(config: DatasetConfig) -> Fetched:
    path = resolve_path(config.source.path or "")
    label = f"dataset {config.dataset_id}: source.path {path}"
    if not path.is_file():
        raise FetchError(f"{label}: file not found")
    size = path.stat().st_size
    if size > config.source.max_bytes:
        raise FetchError(
            f"{label}: {size:,} bytes, over source.max_bytes {config.source.max_bytes:,}"
        )
    return Fetched(content=path.read_bytes(), ext=_extension(config, path.name), source=str(path))


def _fetch_http(config: DatasetConfig, secrets: Secrets) -> Fetched:
    source, dataset_id = config.source, config.dataset_id
    url = secrets.expand(source.url or "", dataset_id, "source.url")
    headers = secrets.expand_mapping(source.headers, dataset_id, "source.headers")
    params = secrets.expand_mapping(source.params, dataset_id, "source.params")
    masked = secrets.mask(url)
    try:
        result = download(
            url,
            headers=headers,
            params=params,
            timeout_s=source.timeout_s,
            max_bytes=source.max_bytes,
            label=f"dataset {dataset_id}: GET {masked}",
        )
    except FetchError as exc:
        raise FetchError(secrets.mask(str(exc))) from None
    return Fetched(
        content=result.content,
        ext=_extension(config, url),
        source=masked,
        etag=result.etag,
        last_modified=result.last_modified,
    )


def fetch(config: DatasetConfig, secrets: Secrets | None = None) -> Fetched:
    secrets = secrets or Secrets()
    kind = config.source.kind
    if kind == "file":
        return _fetch_file(config)
    if kind == "http":
        if config.source.pagination is not None:
            raise FetchError(
                f"dataset {config.dataset_id}: source.pagination is not supported by this version "
                "(it comes with the HTTP resilience work); remove it to fetch one page"
            )
        return _fetch_http(config, secrets)
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
