"""The files ledger of a landing zone: which files each version ingested (name, location, size,
change stamp, sha256), so that each file is ingested once.

Each version that ingested files writes its own part, `events/<version>/files.parquet`, before
its manifest, which points to it (`inputs.files`: key, sha256, count): the part is committed by
the same compare-and-swap as the version's data (a writer that loses the race removes it with
its event), and a manifest stays the same size whatever the number of files. The ledger is the
parts of the versions in the chain, read together; the latest entry of a name wins.
"""

import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from ingest_assets import layout
from ingest_assets.eventstore.chain import read_current, version_chain
from ingest_assets.eventstore.errors import BrokenChain
from ingest_assets.eventstore.manifest import Manifest
from ingest_resources.object_store import ObjectStore

FILES_INPUT = "files"  # the manifest's `inputs` key of the pointer
LEDGER_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("location", pa.string()),
        ("size", pa.int64()),
        ("stamp", pa.string()),
        ("sha256", pa.string()),
    ]
)


@dataclass(frozen=True)
class FileEntry:
    name: str
    location: str
    size: int
    stamp: str  # mtime:<ns> or etag:<ETag>
    sha256: str


@dataclass(frozen=True)
class Ledger:
    """The published state of a landing zone: the latest entry per name, and every content
    (sha256, and S3 ETags) ingested under any name."""

    entries: Mapping[str, FileEntry]
    contents: frozenset[str]

    def done(self, name: str, size: int, stamp: str) -> bool:
        """Ingested as it is now, by the cheap signs: its size and stamp; or, for a name not
        seen before, an S3 ETag ingested under another name (a renamed copy)."""
        entry = self.entries.get(name)
        if entry is not None:
            return entry.size == size and entry.stamp == stamp
        return stamp.startswith("etag:") and stamp in self.contents

    def same_content(self, name: str, sha256: str) -> bool:
        """The file's bytes were ingested already: as this name's last entry (a file touched,
        not changed), or, for a new name, under another (a copy). A known name whose content
        changed, even back to an older content, is read again."""
        entry = self.entries.get(name)
        if entry is not None:
            return entry.sha256 == sha256
        return f"sha256:{sha256}" in self.contents


def ledger_key(dataset_id: str, version: str) -> str:
    return f"{layout.event(dataset_id, version)}/files.parquet"


def write_part(
    store: ObjectStore, dataset_id: str, version: str, entries: Iterable[FileEntry]
) -> dict[str, object]:
    """The version's part of the ledger, written; returns the manifest's pointer to it."""
    rows = list(entries)
    table = pa.Table.from_pylist([e.__dict__ for e in rows], schema=LEDGER_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    body = sink.getvalue()
    key = ledger_key(dataset_id, version)
    store.put(key, body)
    return {"key": key, "sha256": hashlib.sha256(body).hexdigest(), "count": len(rows)}


def read_ledger(
    store: ObjectStore, chain: Iterable[Manifest], base: Ledger | None = None
) -> Ledger:
    """The ledger of the versions in `chain` (oldest first), on top of `base` (the ledger of
    the versions before them); a part that is gone or does not match its pointer's sha256 is a
    broken chain."""
    entries: dict[str, FileEntry] = dict(base.entries) if base else {}
    contents: set[str] = set(base.contents) if base else set()
    for manifest in chain:
        pointer = manifest.inputs.get(FILES_INPUT)
        if not isinstance(pointer, dict):
            continue
        key = str(pointer["key"])
        try:
            body = store.get(key)
        except (KeyError, FileNotFoundError):
            raise BrokenChain(
                f"version {manifest.version}: its files ledger {key} is missing"
            ) from None
        if hashlib.sha256(body).hexdigest() != pointer.get("sha256"):
            raise BrokenChain(f"version {manifest.version}: {key} does not match its sha256")
        for row in pq.read_table(io.BytesIO(body)).to_pylist():
            entry = FileEntry(**row)
            entries[entry.name] = entry
            contents.add(f"sha256:{entry.sha256}")
            if entry.stamp.startswith("etag:"):
                contents.add(entry.stamp)
    return Ledger(entries, frozenset(contents))


# The last ledger read, per store and dataset: (its version, the ledger). A published version's
# parts never change, so the next read adds only the parts of the versions after it (a sensor
# ticking in one process reads each part once, not the whole chain every tick).
_READ: dict[tuple[str, str], tuple[str, Ledger]] = {}


def published_ledger(store: ObjectStore, dataset_id: str) -> Ledger:
    """The ledger of the published chain (empty before the first version)."""
    current, _ = read_current(store, dataset_id)
    if current is None:
        return Ledger({}, frozenset())
    where = (store.describe(), dataset_id)
    version, known = _READ.get(where, ("", None))
    if known is not None and version == current.version:
        return known
    chain = version_chain(store, dataset_id, current, after=version or None)
    base = known if known is not None and chain[0].parent_version == version else None
    ledger = read_ledger(store, chain, base)
    _READ[where] = (current.version, ledger)
    return ledger
