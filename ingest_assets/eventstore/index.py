"""The stored key index (`index/keys.parquet`): every published key_hash with its row_hash and
the version that wrote it, as of the version named in its footer. Derived from the events:
brought up to the chain's head by folding the versions it misses, and rebuilt from every event
when it is missing, unreadable, of an older layout or from a version not in the chain."""

import pyarrow as pa

from ingest_assets import layout
from ingest_assets.eventstore.guard import Guard, unguarded
from ingest_assets.eventstore.keyindex import SCHEMA, KeyIndex
from ingest_assets.eventstore.manifest import Manifest
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, digest_parts
from ingest_resources.object_store import ObjectStore

VERSION_META = b"ingest.version"
ROW_GROUP = 500_000  # rows encoded at a time when the index is written
UNREADABLE = (OSError, pa.ArrowException, ValueError, KeyError)

# The stored index's formats, told apart by their columns (its footer records no number):
# 1: Ingest before 8c460b7 stored key_hash, row_hash and version as text; rebuilt from the events
INDEX_FORMAT_1_COLUMNS = [KEY_HASH, ROW_HASH, "version"]
INDEX_COLUMNS = SCHEMA.names  # (2: the hashes as integers, keyindex.py; what this Ingest writes)


def _current_format(schema: pa.Schema) -> bool:
    """Whether a stored index is of the format this Ingest writes (any other is rebuilt)."""
    if schema.names == INDEX_FORMAT_1_COLUMNS:  # (Ingest before 8c460b7: rebuilt)
        return False
    return bool(schema.names == INDEX_COLUMNS)


def indexed_version(store: ObjectStore, dataset_id: str) -> str | None:
    """The version the stored index reflects; None if there is none or it cannot be read."""
    try:
        schema = store.parquet_schema(layout.index(dataset_id))
    except UNREADABLE:
        return None
    if not _current_format(schema):
        return None
    return (schema.metadata or {}).get(VERSION_META, b"").decode() or None


def _stored(store: ObjectStore, dataset_id: str) -> tuple[KeyIndex, str | None]:
    key = layout.index(dataset_id)
    try:
        footer = store.parquet_metadata(key)
        schema = footer.schema.to_arrow_schema()
        if not _current_format(schema):
            return KeyIndex.empty(), None
        index = KeyIndex.from_batches(store.iter_parquet(key), footer.num_rows)
    except UNREADABLE:
        return KeyIndex.empty(), None
    return index, (schema.metadata or {}).get(VERSION_META, b"").decode() or None


def load(store: ObjectStore, dataset_id: str, chain: list[Manifest]) -> tuple[KeyIndex, bool]:
    """The key index as of the chain's head, and whether the stored one had to be caught up."""
    if not chain:
        return KeyIndex.empty(), False
    index, indexed = _stored(store, dataset_id)
    if indexed == chain[-1].version:
        return index, False
    versions = [manifest.version for manifest in chain]
    if indexed in versions:
        missing = chain[versions.index(indexed) + 1 :]
    else:
        index, missing = KeyIndex.empty(), chain
    for manifest in missing:
        for file in manifest.file_keys:
            rows = store.read_parquet(file, columns=[KEY_HASH, ROW_HASH])
            index = index.merged(
                [digest_parts(rows[KEY_HASH])], [digest_parts(rows[ROW_HASH])], manifest.version
            )
    return index, True


def write(
    store: ObjectStore, dataset_id: str, index: KeyIndex, version: str, guard: Guard = unguarded
) -> None:
    table = index.to_table().replace_schema_metadata({VERSION_META: version.encode()})
    groups = (table.slice(start, ROW_GROUP) for start in range(0, table.num_rows, ROW_GROUP))
    guard()
    store.write_parquet_batches(layout.index(dataset_id), groups, table.schema)


def heal(
    store: ObjectStore, dataset_id: str, chain: list[Manifest], guard: Guard = unguarded
) -> KeyIndex | None:
    """Bring the stored index up to the chain's head. Returns it when it had to be read (else
    None: it is up to date, and a caller that needs it reads it with `load`)."""
    if not chain or indexed_version(store, dataset_id) == chain[-1].version:
        return None
    index, stale = load(store, dataset_id, chain)
    if stale:
        write(store, dataset_id, index, chain[-1].version, guard)
    return index
