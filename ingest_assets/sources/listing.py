"""Landing zones: the files a `source.glob` (or an `s3://bucket/prefix/**/*.csv` url) matches,
listed cheaply: a local folder walked below the glob's fixed prefix, or S3 ListObjectsV2 page by
page from that prefix. Each file comes with what tells a change without reading it (its size and
modification time, or its ETag). Pure of Dagster and the store.

Glob syntax: `*` and `?` within one path segment, `[...]` a set of characters, `**` any number
of segments (none included: `landing/**/*.csv` matches `landing/a.csv`).
"""

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest_assets.contract import DatasetConfig, Source
from ingest_assets.sources.fetch import resolve_path, source_roots
from ingest_assets.sources.windows import Window, fill_window
from ingest_resources.http import FetchError, SourceMissing

WILDCARDS = "*?["
LIST_PAGE_SIZE = 1000  # keys per ListObjectsV2 page (S3's own maximum)


@dataclass(frozen=True)
class LandingFile:
    name: str  # its path below the glob's fixed prefix: a `files` partition key
    location: str  # an absolute local path, or s3://bucket/key
    size: int
    # what changes with its content, cheaply: `mtime:<ns>` (local) or `etag:<ETag>` (S3)
    stamp: str


@dataclass(frozen=True)
class Zone:
    """A landing zone: local (`bucket` None: `prefix` is a folder) or an S3 bucket's prefix."""

    bucket: str | None
    # the glob's fixed part, up to its last `/` before a wildcard or placeholder: names are
    # paths below it (the same for every partition)
    prefix: str
    pattern: re.Pattern[str]  # matches a name (the path below the prefix)
    glob: str  # as configured, placeholders filled (for messages)
    listed: str  # where the listing starts: the fixed part of the filled glob (below prefix)

    def location(self, name: str) -> str:
        if self.bucket is None:
            return str(Path(self.prefix) / name)
        return f"s3://{self.bucket}/{self.prefix}{name}"


def split_glob(glob: str, special: str = WILDCARDS) -> tuple[str, str]:
    """(fixed prefix ending in `/` or empty, the rest from the segment of the first of
    `special`)."""
    first = min((glob.find(c) for c in special if c in glob), default=len(glob))
    cut = glob.rfind("/", 0, first) + 1
    return glob[:cut], glob[cut:]


def glob_pattern(glob: str) -> re.Pattern[str]:
    """The regular expression of a glob (its rest below the fixed prefix)."""
    return re.compile(glob_regex(glob) + r"\Z")


def glob_regex(glob: str) -> str:
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 1 :]:
            end = glob.index("]", i + 1)
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def zone(config: DatasetConfig, window: Window | None) -> Zone:
    """The landing zone of a dataset, with the partition's placeholders filled."""
    bucket, template = glob_template(config.source)
    glob = fill_window(template, window, config, "source.glob")
    prefix, _ = split_glob(template, WILDCARDS + "{")
    return make_zone(bucket, prefix, glob_pattern(glob[len(prefix) :]), glob)


def make_zone(bucket: str | None, prefix: str, pattern: re.Pattern[str], glob: str) -> Zone:
    """A zone whose names are paths below `prefix`, listed from the fixed part of `glob`."""
    listed, _ = split_glob(glob)
    if bucket is not None:
        return Zone(bucket, prefix, pattern, f"s3://{bucket}/{glob}", listed)
    folder = resolve_path(prefix or ".")
    return Zone(
        None,
        str(folder),
        pattern,
        str(folder / glob[len(prefix) :]),
        str(resolve_path(listed or ".")),
    )


def glob_template(source: Source) -> tuple[str | None, str]:
    """(the bucket of an S3 zone or None, the glob as written)."""
    if source.kind != "s3":
        return None, source.glob or ""
    if source.bucket:
        return source.bucket, source.glob or ""
    bucket, _, key = (source.url or "").removeprefix("s3://").partition("/")
    return bucket, key


def list_files(config: DatasetConfig, where: Zone) -> list[LandingFile]:
    """Every file of the zone, sorted by name."""
    found = _list_s3(config, where) if where.bucket else _list_local(config, where)
    return sorted(found, key=lambda f: f.name)


def _list_local(config: DatasetConfig, where: Zone) -> Iterator[LandingFile]:
    root, start = Path(where.prefix), Path(where.listed)
    _inside_roots(config, root)
    if not start.is_dir():
        return
    for folder, dirs, names in os.walk(start):
        dirs.sort()
        for file_name in names:
            path = Path(folder) / file_name
            name = path.relative_to(root).as_posix()
            if where.pattern.match(name):
                stat = path.stat()
                yield LandingFile(name, str(path), stat.st_size, f"mtime:{stat.st_mtime_ns}")


def _inside_roots(config: DatasetConfig, root: Path) -> None:
    roots = source_roots()
    real = Path(os.path.realpath(root))
    if roots and not any(real.is_relative_to(r) for r in roots):
        raise FetchError(
            f"dataset {config.dataset_id}: source.glob folder {root} resolves to {real}, "
            "outside INGEST_SOURCE_ROOTS; refused"
        )


def s3_client() -> Any:
    from ingest_resources.runtime import aws_client, endpoint_url

    return aws_client("s3", endpoint_url())


def _list_s3(config: DatasetConfig, where: Zone) -> Iterator[LandingFile]:
    from botocore.exceptions import BotoCoreError, ClientError

    assert where.bucket is not None
    pages = s3_client().get_paginator("list_objects_v2")
    try:
        listed = pages.paginate(
            Bucket=where.bucket,
            Prefix=where.listed,
            PaginationConfig={"PageSize": LIST_PAGE_SIZE},
        )
        for page in listed:
            for item in page.get("Contents", []):
                name = item["Key"][len(where.prefix) :]
                if where.pattern.match(name):
                    etag = str(item.get("ETag", "")).strip('"')
                    yield LandingFile(name, where.location(name), item["Size"], f"etag:{etag}")
    except (ClientError, BotoCoreError) as exc:
        raise FetchError(f"dataset {config.dataset_id}: listing {where.glob}: {exc}") from None


def named_files(config: DatasetConfig, where: Zone, names: Iterable[str]) -> list[LandingFile]:
    """The files of these names (`files` partitions), as they are now; a name the glob does not
    match, or a file that is gone, is an error naming it."""
    found = []
    for name in sorted(set(names)):
        if not where.pattern.match(name) or name.startswith("/") or ".." in name.split("/"):
            raise FetchError(f"dataset {config.dataset_id}: {name!r} is not a file of {where.glob}")
        found.append(_stat(config, where, name))
    return found


def _stat(config: DatasetConfig, where: Zone, name: str) -> LandingFile:
    location = where.location(name)
    if where.bucket is None:
        path = Path(location)
        _inside_roots(config, path.parent)
        if not path.is_file():
            raise SourceMissing(f"dataset {config.dataset_id}: {location}: file not found")
        stat = path.stat()
        return LandingFile(name, location, stat.st_size, f"mtime:{stat.st_mtime_ns}")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = s3_client().head_object(Bucket=where.bucket, Key=where.prefix + name)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        error = SourceMissing if code in ("404", "NoSuchKey", "NotFound") else FetchError
        raise error(f"dataset {config.dataset_id}: {location}: {code or exc}") from None
    except BotoCoreError as exc:
        raise FetchError(f"dataset {config.dataset_id}: {location}: {exc}") from None
    etag = str(head.get("ETag", "")).strip('"')
    return LandingFile(name, location, head["ContentLength"], f"etag:{etag}")
