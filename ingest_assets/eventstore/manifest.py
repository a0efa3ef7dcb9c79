"""The manifest of an event version: what was published, from what, and the state committed
with it (high-water marks, fingerprints, checks). Typed, with a `format_version`:

- 1 (no `format_version` field): `files` is a list of keys;
- 2: `files` lists each event file with its size and sha256 (verified by publish and `verify`),
  and `latest_partition` is the greatest partition key published so far.

Manifests of both formats are read; new ones are written as FORMAT_VERSION. Pure: no I/O."""

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ingest_assets.eventstore.errors import BrokenChain, UnknownFormat

FORMAT_VERSION = 2


@dataclass(frozen=True)
class EventFile:
    key: str
    bytes: int | None = None  # None: a format 1 manifest (not recorded)
    sha256: str | None = None


@dataclass(frozen=True)
class Manifest:
    version: str
    parent_version: str | None
    dataset_id: str
    partition: str | None
    created_at: str
    code_version: str
    files: tuple[EventFile, ...]
    inputs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    schema_hash: str = ""
    schema: dict[str, str] = field(default_factory=dict)
    primary_keys: list[str] = field(default_factory=list)
    time_column: str = "collection_date"
    high_water_marks: dict[str, str] = field(default_factory=dict)
    rows_total: int = 0
    checks: dict[str, Any] = field(default_factory=dict)
    fence: int | None = None
    latest_partition: str | None = None
    format_version: int = FORMAT_VERSION

    @property
    def file_keys(self) -> list[str]:
        return [file.key for file in self.files]

    @property
    def fingerprint(self) -> str | None:
        return self.inputs.get("fingerprint")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [asdict(file) for file in self.files]
        return data

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> "Manifest":
        """A manifest of any known format; `where` (its key) names it in errors."""
        if not isinstance(data, dict):
            raise BrokenChain(f"{where}: expected a JSON object, found {type(data).__name__}")
        found = data.get("format_version", 1)
        if found not in (1, FORMAT_VERSION):
            raise UnknownFormat(
                f"{where}: format_version {found!r}, this Ingest reads 1 to {FORMAT_VERSION} "
                "(written by a newer Ingest? upgrade before publishing here)"
            )
        try:
            files = tuple(
                EventFile(item) if isinstance(item, str) else EventFile(**item)
                for item in data["files"]
            )
            known = {name for name in cls.__dataclass_fields__ if name != "files"}
            values = {name: data[name] for name in known if name in data}
            values["format_version"] = found
            return cls(files=files, **values)
        except (KeyError, TypeError) as exc:
            raise BrokenChain(f"{where}: not a manifest ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_bytes(cls, body: bytes, where: str) -> "Manifest":
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BrokenChain(f"{where}: unreadable JSON ({exc})") from None
        return cls.from_dict(data, where)
