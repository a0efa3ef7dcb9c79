"""The manifest of an event version: what was published, from what, and the state committed
with it (high-water marks, fingerprints, checks). Typed, with a `format_version`:

- MANIFEST_FORMAT_1 (no `format_version` field; Ingest up to 8ed5491): `files` is a list of
  keys, no sizes or checksums; the store has no `commits/` records (chain.committed_versions);
- MANIFEST_FORMAT_2: `files` lists each event file with its size and sha256 (verified by
  publish and `verify`), and `latest_partition` is the greatest partition key published so far.
  Optional in it: `formats` (from issue 17 on; absent before), the format each date/time column
  of text is read with, kept for later runs.

Manifests of both formats are read; new ones are written as FORMAT_VERSION. Pure: no I/O."""

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ingest_assets.eventstore.errors import BrokenChain, UnknownFormat

# Ingest up to 8ed5491 (before the eventstore package) wrote manifests without a format_version
MANIFEST_FORMAT_1 = 1
MANIFEST_FORMAT_2 = 2
FORMAT_VERSION = MANIFEST_FORMAT_2  # what this Ingest writes
KNOWN_FORMATS = (MANIFEST_FORMAT_1, MANIFEST_FORMAT_2)


@dataclass(frozen=True)
class EventFile:
    key: str
    bytes: int | None = None  # None: not recorded (a MANIFEST_FORMAT_1 manifest)
    sha256: str | None = None

    @classmethod
    def from_item(cls, item: Any) -> "EventFile":
        """An entry of a manifest's `files` (TypeError if it is not one)."""
        if isinstance(item, str):  # MANIFEST_FORMAT_1 (Ingest up to 8ed5491): the key alone
            return cls(item)
        return cls(**item)


@dataclass(frozen=True)
class Manifest:
    version: str
    parent_version: str | None
    dataset_id: str
    partition: str | None
    created_at: str
    code_version: str
    files: tuple[EventFile, ...]
    inputs: dict[str, Any] = field(default_factory=dict)  # the raw fetch's info, and `parts`
    counts: dict[str, int] = field(default_factory=dict)
    schema_hash: str = ""
    schema: dict[str, str] = field(default_factory=dict)
    primary_keys: list[str] = field(default_factory=list)
    time_column: str = "collection_date"
    high_water_marks: dict[str, str] = field(default_factory=dict)
    rows_total: int = 0
    checks: dict[str, Any] = field(default_factory=dict)
    fence: int | None = None  # None: written before fencing (Ingest before c7d3c69)
    latest_partition: str | None = None  # None: a MANIFEST_FORMAT_1 manifest
    # column -> the format its dates/times are read with (`normalize.formats`, or inferred),
    # kept for later runs; empty in manifests written before formats were inferred
    formats: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def file_keys(self) -> list[str]:
        return [file.key for file in self.files]

    @property
    def fingerprint(self) -> str | None:
        found = self.inputs.get("fingerprint")
        return found if isinstance(found, str) else None

    @property
    def input_parts(self) -> list[str]:
        """The staged parts this version was published from (none recorded before c42c6d9)."""
        found = self.inputs.get("parts")
        return [str(key) for key in found] if isinstance(found, list) else []

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [asdict(file) for file in self.files]
        return data

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode()

    @classmethod
    def from_dict(cls, data: object, where: str) -> "Manifest":
        """A manifest of any known format; `where` (its key) names it in errors."""
        if not isinstance(data, dict):
            raise BrokenChain(f"{where}: expected a JSON object, found {type(data).__name__}")
        # (a MANIFEST_FORMAT_1 manifest has no format_version field)
        found = data.get("format_version", MANIFEST_FORMAT_1)
        if found not in KNOWN_FORMATS:
            raise UnknownFormat(
                f"{where}: format_version {found!r}, this Ingest reads 1 to {FORMAT_VERSION} "
                "(written by a newer Ingest? upgrade before publishing here)"
            )
        try:
            files = tuple(EventFile.from_item(item) for item in data["files"])
            known = {f.name for f in fields(cls)} - {"files", "format_version"}
            values = {name: data[name] for name in known if name in data}
            return cls(files=files, format_version=found, **values)
        except (KeyError, TypeError) as exc:
            raise BrokenChain(f"{where}: not a manifest ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_bytes(cls, body: bytes, where: str) -> "Manifest":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BrokenChain(f"{where}: unreadable JSON ({exc})") from None
        return cls.from_dict(data, where)
