"""The object store on S3 (or any S3 API: `AWS_ENDPOINT_URL`), with conditional writes.

Immutable objects are written with `If-None-Match: *`; the `current` pointer is replaced with
`If-Match: <etag>` (or `If-None-Match: *` for the first version), so a writer that lost the
race gets 412 and changes nothing.
"""

import builtins
import hashlib
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from ingest_resources.object_store import CasConflict, ObjectStore

FOOTER_GUESS = 64 << 10  # bytes read from a Parquet object's end: its footer, usually whole
CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
PART_BYTES = 64 << 20  # an immutable object larger than this is uploaded in parts of this size


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"expected s3://bucket[/prefix], got {url!r}")
    return parsed.netloc, parsed.path.strip("/")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3ObjectStore(ObjectStore):
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:  # boto3's S3 client
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(cls, client: Any, url: str) -> "S3ObjectStore":
        bucket, prefix = parse_s3_url(url)
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> bytes:
        found = self.get_with_etag(key)
        if found is None:
            raise KeyError(f"{self.describe()}: no object {key!r}")
        return found[0]

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _code(error) in MISSING_CODES:
                return None
            raise
        return response["Body"].read(), response["ETag"]

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def _upload(self, key: str, path: Path, immutable: bool = False) -> bool:
        if not immutable:
            self.client.upload_file(str(path), self.bucket, self._key(key))  # multipart when large
            return True
        # boto3's transfer manager takes no If-None-Match: one PUT, or parts completed under it
        condition = {"IfNoneMatch": "*"}
        try:
            size = path.stat().st_size
            if size <= PART_BYTES:
                with open(path, "rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket, Key=self._key(key), Body=body, **condition
                    )
                return True
            self._multipart(self._key(key), path, size, condition)
        except ClientError as error:
            if _code(error) in CONFLICT_CODES:
                return False
            raise
        return True

    def _multipart(self, key: str, path: Path, size: int, condition: dict[str, str]) -> None:
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            parts = []
            with open(path, "rb") as body:
                for number in range(1, -(-size // PART_BYTES) + 1):
                    response = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload,
                        PartNumber=number,
                        Body=body.read(PART_BYTES),
                    )
                    parts.append({"ETag": response["ETag"], "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except BaseException:
            with suppress(ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            raise

    def _download(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
        except ClientError as error:
            if _code(error) in MISSING_CODES:
                raise KeyError(f"{self.describe()}: no object {key!r}") from None
            raise

    def _footer(self, key: str) -> pq.FileMetaData:
        """A Parquet object's footer from ranged GETs of its tail, not the whole object."""

        def tail(size: int) -> bytes:
            try:
                response = self.client.get_object(
                    Bucket=self.bucket, Key=self._key(key), Range=f"bytes=-{size}"
                )
            except ClientError as error:
                if _code(error) in MISSING_CODES:
                    raise KeyError(f"{self.describe()}: no object {key!r}") from None
                raise
            body: bytes = response["Body"].read()
            return body

        data = tail(FOOTER_GUESS)
        length = int.from_bytes(data[-8:-4], "little") + 8
        if length > len(data):
            data = tail(length)
        return pq.read_metadata(pa.BufferReader(b"PAR1" + data[-length:]))

    def parquet_metadata(self, key: str) -> pq.FileMetaData:
        return self._footer(key)

    def copy(self, source: str, key: str, durable: bool = True) -> None:
        """A server-side copy (in parts past 5 GB): the bytes do not travel."""
        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": self._key(source)}, self.bucket, self._key(key)
            )
        except ClientError as error:
            if _code(error) in MISSING_CODES:
                raise KeyError(f"{self.describe()}: no object {source!r}") from None
            raise

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
            )
        except ClientError as error:
            if _code(error) in CONFLICT_CODES:
                return False
            raise
        return True

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **condition
            )
        except ClientError as error:
            if _code(error) in CONFLICT_CODES | MISSING_CODES:
                raise CasConflict(
                    f"{key}: expected ETag {etag}: another writer published first ({_code(error)})"
                ) from None
            raise
        new_etag: str = response["ETag"]
        return new_etag

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _code(error) in MISSING_CODES:
                return False
            raise
        return True

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key == full or key.startswith(full.rstrip("/") + "/"):
                    keys.append(key[strip:])
        return sorted(keys)

    def stat_list(self, prefix: str, hidden: bool = False) -> dict[str, tuple[int, float]]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key == full or key.startswith(full.rstrip("/") + "/"):
                    found[key[strip:]] = (item["Size"], item["LastModified"].timestamp())
        return dict(sorted(found.items()))

    def list_folders(self, prefix: str) -> builtins.list[str]:
        full = self._key(prefix).rstrip("/") + "/"
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full, Delimiter="/"
        ):
            names += [
                item["Prefix"][len(full) :].rstrip("/") for item in page.get("CommonPrefixes", [])
            ]
        return sorted(names)

    def sha256(self, key: str) -> str:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _code(error) in MISSING_CODES:
                raise KeyError(f"{self.describe()}: no object {key!r}") from None
            raise
        digest = hashlib.sha256()
        for chunk in response["Body"].iter_chunks(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()

    def delete_prefix(self, prefix: str) -> None:
        keys = [self._key(k) for k in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")
