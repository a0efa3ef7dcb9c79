"""What the stages hand each other through the store, typed: the raw fetch (`RawInfo`, in
`raw/<partition>/latest.json` and in the parsed data's footer), the normalized partition's
`meta.json` (`NormalizedMeta`: the raw fetch, counts, checks, high-water marks and the
`StagedPart`s), and what a manifest's `inputs` take from them.

`from_dict`/`to_dict` are the only places their JSON keys are spelled. The JSON is what the
stages wrote before they were typed, key for key (tests/fixtures/stores/staged holds files
written then); what older files lack (a `meta.json` before parts had a list or runs a day,
a footer before fingerprints) reads as it always did.
"""

import builtins
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ingest_assets import layout
from ingest_assets.rows.checks import CheckResult
from ingest_assets.stages.staged import META, PART, RAW_META
from ingest_resources.object_store import ObjectStore

JSON = dict[str, Any]


@dataclass(frozen=True)
class RawInfo:
    """One fetch of a partition's source: where its bytes are stored (`key`, content-addressed
    by `sha256`), how many, where they came from and the source's validators. `fingerprint`
    (set from parse on) names everything the parsed rows depend on."""

    key: str
    sha256: str
    bytes: int
    source: str
    etag: str | None
    last_modified: str | None
    fetched_at: str  # ISO 8601, UTC
    fingerprint: str | None = None
    content_type: str | None = None  # the HTTP/S3 Content-Type (its charset: a feed's encoding)
    # the partition's file was not there and `source.missing: skip` made it an empty partition
    missing: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RawInfo":
        return cls(
            key=data["key"],
            sha256=data["sha256"],
            bytes=data["bytes"],
            source=data["source"],
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            fetched_at=data["fetched_at"],
            fingerprint=data.get("fingerprint"),
            content_type=data.get("content_type"),
            missing=bool(data.get("missing", False)),
        )

    def to_dict(self, with_fingerprint: bool = True) -> JSON:
        """As `meta.json` and the footer hold it (`latest.json`: without the fingerprint)."""
        data: JSON = {
            "key": self.key,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "source": self.source,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "fetched_at": self.fetched_at,
        }
        if with_fingerprint:
            data["fingerprint"] = self.fingerprint
        if self.content_type is not None:  # (only when known: files written before stay alike)
            data["content_type"] = self.content_type
        if self.missing:
            data["missing"] = True
        return data

    def manifest_inputs(self, parts: list[str]) -> JSON:
        """What a published version records of what it was made from: this fetch, and the
        staged `parts` it was published from."""
        return {
            "sha256": self.sha256,
            "bytes": self.bytes,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "source": self.source,
            "fetched_at": self.fetched_at,
            "fingerprint": self.fingerprint,
            "parts": parts,
        }

    def footer(self) -> builtins.bytes:
        """The parsed data's RAW_META value."""
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def of_parsed(cls, schema: pa.Schema) -> "RawInfo | None":
        """The fetch parsed data (its schema) was made from; None without a footer."""
        footer = (schema.metadata or {}).get(RAW_META)
        return None if footer is None else cls.from_dict(json.loads(footer))


def read_latest(store: ObjectStore, dataset_id: str, partition: str) -> RawInfo | None:
    """The partition's last fetch (`latest.json`), or None before any."""
    key = layout.raw_latest(dataset_id, partition)
    if not store.exists(key):
        return None
    return RawInfo.from_dict(json.loads(store.get(key)))


def write_latest(store: ObjectStore, dataset_id: str, partition: str, info: RawInfo) -> None:
    body = json.dumps(info.to_dict(with_fingerprint=False), indent=2).encode()
    store.put(layout.raw_latest(dataset_id, partition), body)


@dataclass(frozen=True)
class Counts:
    """Rows of a normalized partition: parsed = normalized + rejected + duplicates."""

    parsed: int
    rejected: int
    duplicates: int  # exact repeats of a row, dropped
    normalized: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Counts":
        return cls(data["parsed"], data["rejected"], data["duplicates"], data["normalized"])

    def to_dict(self) -> dict[str, int]:
        return {
            "parsed": self.parsed,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "normalized": self.normalized,
        }


@dataclass(frozen=True)
class CheckRecord:
    """A check's result as `meta.json` and the manifest keep it (by the check's name)."""

    passed: bool
    severity: str
    detail: str
    failing_rows: int

    @classmethod
    def of(cls, result: CheckResult) -> "CheckRecord":
        return cls(result.passed, result.check.severity, result.detail, result.failing_rows)

    @property
    def blocking(self) -> bool:
        """Failed, with severity `error`: the partition is not published."""
        return not self.passed and self.severity == "error"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CheckRecord":
        return cls(data["passed"], data["severity"], data["detail"], data["failing_rows"])

    def to_dict(self) -> JSON:
        return {
            "passed": self.passed,
            "severity": self.severity,
            "detail": self.detail,
            "failing_rows": self.failing_rows,
        }


@dataclass(frozen=True)
class StagedPart:
    """One Parquet part of the staged normalized rows, as `meta.json` lists it."""

    key: str
    rows: int | None  # None: listed before parts had counts (its rows are counted when read)
    parsed: int | None  # the parsed rows of its batch
    digest: str | None  # its parsed batch's (None: a part of no batch of its own)
    clean: bool  # nothing of its batch was rejected or repeated: it may stand for the batch

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StagedPart":
        return cls(
            key=data["key"],
            rows=data.get("rows"),
            parsed=data.get("parsed"),
            digest=data.get("digest"),
            clean=bool(data.get("clean", False)),
        )

    def to_dict(self) -> JSON:
        data: JSON = {"key": self.key}
        if self.rows is not None:
            data["rows"] = self.rows
        if self.parsed is not None:
            data["parsed"] = self.parsed
        return {**data, "digest": self.digest, "clean": self.clean}

    def rewritten(self, key: str, rows: int) -> "StagedPart":
        """This part without some of its rows, at `key` (no longer its batch's rows as such)."""
        return dataclasses.replace(self, key=key, rows=rows, clean=False)


def single_part(folder: str) -> StagedPart:
    """The one part a `meta.json` written before parts had a list stands for."""
    return StagedPart(f"{folder}/{PART}", None, None, None, False)


@dataclass(frozen=True)
class NormalizedMeta:
    """A staged normalized partition's `meta.json`: what it was made from and of."""

    day: dt.date | None  # of collection_date: the parts are reused that day only (None: older)
    raw: RawInfo
    counts: Counts
    checks: dict[str, CheckRecord]  # by check name, in the order they ran
    high_water_marks: dict[str, str]
    parts: list[StagedPart]
    # the format each date/time column of text was read with (the contract's, kept from the
    # published version, or inferred); {} in a meta.json written before formats were inferred
    formats: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], folder: str) -> "NormalizedMeta":
        """`folder` is the partition's (the single part of a list-less meta.json is there)."""
        day = data.get("day")
        parts = [StagedPart.from_dict(p) for p in data.get("parts") or []]
        return cls(
            day=dt.date.fromisoformat(day) if day is not None else None,
            raw=RawInfo.from_dict(data["raw"]),
            counts=Counts.from_dict(data["counts"]),
            checks={n: CheckRecord.from_dict(c) for n, c in data["checks"].items()},
            high_water_marks=dict(data.get("high_water_marks", {})),
            parts=parts or [single_part(folder)],
            formats={str(k): str(v) for k, v in (data.get("formats") or {}).items()},
        )

    def to_dict(self) -> JSON:
        data: JSON = {
            "day": self.day.isoformat() if self.day is not None else None,
            "raw": self.raw.to_dict(),
            "counts": self.counts.to_dict(),
            "checks": self.checks_dict(),
            "high_water_marks": self.high_water_marks,
            "parts": [part.to_dict() for part in self.parts],
        }
        return {**data, "formats": self.formats} if self.formats else data

    def checks_dict(self) -> JSON:
        """The checks as the manifest records them."""
        return {name: record.to_dict() for name, record in self.checks.items()}

    @property
    def part_keys(self) -> list[str]:
        return [part.key for part in self.parts]


def read_meta(store: ObjectStore, folder: str) -> NormalizedMeta | None:
    """The `meta.json` in `folder`; None if there is none, or it is damaged (made again)."""
    key = f"{folder}/{META}"
    if not store.exists(key):
        return None
    try:
        return NormalizedMeta.from_dict(json.loads(store.get(key)), folder)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        return None


def write_meta(store: ObjectStore, folder: str, meta: NormalizedMeta) -> None:
    store.put(f"{folder}/{META}", json.dumps(meta.to_dict(), default=str).encode())
