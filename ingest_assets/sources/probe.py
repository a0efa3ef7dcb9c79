"""Asking a source cheaply whether it changed, for the sensors: a file's sha256, an S3 object's
ETag, or an HTTP conditional GET."""

import hashlib
from typing import Required, TypedDict

from ingest_assets.contract import DatasetConfig, Secrets
from ingest_assets.sources.fetch import local_file, located, s3_object
from ingest_assets.sources.request import http_client, http_request, masked
from ingest_assets.sources.windows import Window
from ingest_resources.http import FetchError
from ingest_resources.object_store import file_sha256


class SourceVersion(TypedDict, total=False):
    """A source's version, as a sensor keeps it in its cursor (JSON): an HTTP source's also
    carries what the next conditional GET sends back."""

    version: Required[str]
    etag: str | None
    last_modified: str | None


def probe(
    config: DatasetConfig,
    previous: SourceVersion | None,
    secrets: Secrets | None = None,
    window: Window | None = None,
) -> SourceVersion:
    """The source's current version, asked cheaply: a file's sha256, S3 HEAD's ETag, or an HTTP
    conditional GET (If-None-Match / If-Modified-Since; 304 means unchanged) whose version is
    the ETag, else Last-Modified, else a hash of the body. Raises FetchError when it cannot tell."""
    config = located(config, window)  # (a partition's own file or object)
    kind = config.source.kind
    if kind == "file":
        sha256, _ = file_sha256(local_file(config))
        return {"version": f"sha256:{sha256}"}
    if kind == "s3":
        return _probe_s3(config)
    secrets = secrets or Secrets()
    request = http_request(config, secrets, window)
    conditional = dict(request.headers)
    etag = previous.get("etag") if previous else None
    last_modified = previous.get("last_modified") if previous else None
    if etag:
        conditional["If-None-Match"] = etag
    if last_modified:
        conditional["If-Modified-Since"] = last_modified
    label = f"dataset {config.dataset_id}: GET {secrets.mask(request.url)}"
    try:
        response = http_client(config, secrets).get(
            request.url, headers=conditional, params=request.params, label=label
        )
    except FetchError as exc:
        raise masked(exc, secrets) from None
    if response.status == 304 and previous and previous.get("version"):
        return previous
    if response.etag:
        version = f"etag:{response.etag}"
    elif response.last_modified:
        version = f"last-modified:{response.last_modified}"
    else:
        version = f"sha256:{hashlib.sha256(response.content).hexdigest()}"
    return {"version": version, "etag": response.etag, "last_modified": response.last_modified}


def _probe_s3(config: DatasetConfig) -> SourceVersion:
    from botocore.exceptions import BotoCoreError, ClientError

    from ingest_resources.runtime import aws_client, endpoint_url

    bucket, key = s3_object(config.source)
    try:
        head = aws_client("s3", endpoint_url()).head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise FetchError(f"dataset {config.dataset_id}: s3://{bucket}/{key}: {code}") from None
    except BotoCoreError as exc:
        raise FetchError(f"dataset {config.dataset_id}: s3://{bucket}/{key}: {exc}") from None
    return {"version": f"etag:{head['ETag']}"}
