"""The raw stage: fetch the partition's source and store its bytes, content-addressed, with
`latest.json` naming the fetch (`state.RawInfo`)."""

import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ingest_assets import eventstore, layout
from ingest_assets.contract import DatasetConfig, Secrets
from ingest_assets.sources.fetch import Fetched, fetch
from ingest_assets.sources.windows import window_for
from ingest_assets.stages.staged import nothing_published, reporting_full_disk
from ingest_assets.stages.state import RawInfo, read_latest, write_latest
from ingest_resources.http import SourceMissing
from ingest_resources.object_store import ObjectStore
from ingest_resources.runtime import Runtime


def run_raw(
    rt: Runtime,
    config: DatasetConfig,
    partition: str,
    secrets: Secrets | None = None,
    files: Sequence[str] | None = None,
) -> RawInfo:
    """The partition's source fetched into raw/; a landing zone's new files (of `files`, for
    `files` partitions) with their listing (stages.landing)."""
    current, _ = eventstore.read_current(rt.store, config.dataset_id)
    try:
        if config.source.is_landing:
            from ingest_assets.stages.landing import run_landing_raw  # (it builds on this one)

            return run_landing_raw(rt, config, partition, secrets, files)
        fetched = fetch(config, secrets, window_for(config, partition, current))
    except SourceMissing as exc:
        if config.source.missing != "skip":
            raise
        why = f"source missing, partition skipped (source.missing: skip): {exc}"
        return record_empty(rt.store, config, partition, why)
    folder = layout.raw_latest(config.dataset_id, partition).rsplit("/", 1)[0]
    published = nothing_published(current.version if current else None)
    with reporting_full_disk(
        rt.store, config, "raw", partition, f"{folder}/", lambda: published
    ) as store:
        if fetched.path is None:
            key, sha256, size = store_fetched(store, config, partition, fetched)
        else:
            key, sha256, size = _store_raw_file(store, config, partition, fetched)
        info = RawInfo(
            key=key,
            sha256=sha256,
            bytes=size,
            source=fetched.source,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            fetched_at=dt.datetime.now(dt.UTC).isoformat(),
            content_type=fetched.content_type,
        )
        write_latest(store, config.dataset_id, partition, info)
    return info


def _store_raw_file(
    store: ObjectStore, config: DatasetConfig, partition: str, fetched: Fetched
) -> tuple[str, str, int]:
    """A local source file into raw/, content-addressed, without loading it whole. A file of
    the size fetched last time is hashed first: bytes already stored are not copied again."""
    assert fetched.path is not None
    latest = read_latest(store, config.dataset_id, partition)
    if latest is not None and latest.bytes == fetched.path.stat().st_size:
        sha256, size = fetched.sha256_and_size()
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        if store.exists(key):
            return key, sha256, size
    return store_fetched(store, config, partition, fetched)


def store_fetched(
    store: ObjectStore,
    config: DatasetConfig,
    partition: str,
    fetched: Fetched,
    durable: bool = True,
) -> tuple[str, str, int]:
    """Fetched bytes (or a local file, copied in chunks) into raw/, content-addressed; the
    same bytes are stored once. A file is hashed as it is copied (once), so the name is the
    sha256 of the bytes stored even if the file changes meanwhile. `durable=False`: the
    caller syncs the keys at once (`ObjectStore.sync`). Returns (key, sha256, size)."""
    if fetched.path is None:
        sha256, size = hashlib.sha256(fetched.content).hexdigest(), len(fetched.content)
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        store.put_if_absent(key, fetched.content)
        return key, sha256, size
    near = layout.raw(config.dataset_id, partition, "pending", fetched.ext)
    folder = store.scratch_folder(near)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".raw-")
    os.close(fd)
    scratch = Path(name)
    try:
        sha256, size = fetched.copy_and_hash(scratch)
        key = layout.raw(config.dataset_id, partition, sha256, fetched.ext)
        if not store.exists(key):  # the same bytes are stored once
            store.put_file(key, scratch, move=True, durable=durable)
    finally:
        scratch.unlink(missing_ok=True)
    return key, sha256, size


def record_empty(store: ObjectStore, config: DatasetConfig, partition: str, why: str) -> RawInfo:
    """A partition with nothing to read (its file missing with `source.missing: skip`, or a
    landing zone with no new file), recorded as such: the later stages publish nothing for
    it, and what was published before stays."""
    info = RawInfo(
        key="",
        sha256="",
        bytes=0,
        source=why,
        etag=None,
        last_modified=None,
        fetched_at=dt.datetime.now(dt.UTC).isoformat(),
        missing=True,
    )
    write_latest(store, config.dataset_id, partition, info)
    return info


def skipped(store: ObjectStore, config: DatasetConfig, partition: str) -> str | None:
    """Why the partition's last fetch had nothing to read (`record_empty`), or None."""
    latest = read_latest(store, config.dataset_id, partition)
    return latest.source if latest is not None and latest.missing else None
