"""The chain of published versions: `current` and the manifests it links to, read and checked.

`current/manifest.json` points to the newest version; each manifest names its parent. A missing
or unreadable `current` while versions were committed is never taken for a first publish
(CurrentLost), and a chain whose manifests or event files are gone or truncated is never
built on (BrokenChain)."""

from concurrent.futures import ThreadPoolExecutor

from ingest_assets import layout
from ingest_assets.eventstore.errors import BrokenChain, CurrentLost
from ingest_assets.eventstore.manifest import MANIFEST_FORMAT_1, EventFile, Manifest
from ingest_resources.object_store import ObjectStore


def read_current(store: ObjectStore, dataset_id: str) -> tuple[Manifest | None, str | None]:
    """The current manifest and its ETag; (None, None) when nothing was ever published."""
    key = layout.current(dataset_id)
    found = store.get_with_etag(key)
    if found is None:
        committed = committed_versions(store, dataset_id)
        if committed:
            raise CurrentLost(
                f"dataset {dataset_id}: {key} is missing, but {len(committed)} version(s) were "
                f"published (the newest {committed[-1]}); nothing is published over them. Run "
                f"`ingest repair {dataset_id}` to restore it to the newest whole version"
            )
        return None, None
    data, etag = found
    try:
        return Manifest.from_bytes(data, key), etag
    except BrokenChain as exc:
        raise CurrentLost(
            f"dataset {dataset_id}: {exc}; nothing is published over it. Run "
            f"`ingest repair {dataset_id}` to restore it to the newest whole version"
        ) from None


def committed_versions(store: ObjectStore, dataset_id: str) -> list[str]:
    """Versions known to have been published, oldest first: those with a commit record, and
    in a store written before commit records (MANIFEST_FORMAT_1) every version with a
    manifest of that format."""
    versions = [
        key.rsplit("/", 1)[1].removesuffix(".json")
        for key in store.list(layout.commits(dataset_id))
        if key.endswith(".json")
    ]
    if versions:
        return sorted(versions)
    legacy: list[str] = []
    for version in store.list_folders(layout.events(dataset_id)):
        key = layout.manifest(dataset_id, version)
        try:
            manifest = Manifest.from_bytes(store.get(key), key)
        except (KeyError, BrokenChain):
            continue
        if manifest.format_version == MANIFEST_FORMAT_1:  # Ingest up to 8ed5491: no records
            legacy.append(version)
    return sorted(legacy)


def read_manifest(store: ObjectStore, dataset_id: str, version: str) -> Manifest:
    """A version's manifest (KeyError if it does not exist, BrokenChain if unreadable)."""
    key = layout.manifest(dataset_id, version)
    return Manifest.from_bytes(store.get(key), key)


def version_chain(
    store: ObjectStore, dataset_id: str, head: Manifest | None, after: str | None = None
) -> list[Manifest]:
    """Manifests from the first version up to `head`, oldest first (with `after`: only those
    after that version, when it is on the chain). A parent that is missing, or not older than
    its child, is a BrokenChain naming it."""
    chain: list[Manifest] = []
    manifest = head
    while manifest is not None:
        chain.append(manifest)
        parent = manifest.parent_version
        if not parent or parent == after:
            break
        if parent >= manifest.version:
            raise BrokenChain(
                f"dataset {dataset_id}: version {manifest.version} names parent {parent}, "
                "which is not older"
            )
        try:
            manifest = read_manifest(store, dataset_id, parent)
        except KeyError:
            raise BrokenChain(
                f"dataset {dataset_id}: {layout.manifest(dataset_id, parent)} is missing "
                f"(the parent of version {chain[-1].version})"
            ) from None
    return chain[::-1]


def chain_problems(
    store: ObjectStore, dataset_id: str, chain: list[Manifest], checksums: bool = False
) -> list[str]:
    """What is wrong with the event files of `chain`: missing, of another size than recorded,
    and (with `checksums`: every byte read) of another sha256. One listing, no reads without
    `checksums`."""
    sizes = store.list_sizes(layout.events(dataset_id))
    problems: list[str] = []
    to_hash: list[tuple[Manifest, EventFile]] = []
    for manifest in chain:
        for file in manifest.files:
            size = sizes.get(file.key)
            if size is None:
                problems.append(
                    f"{file.key} is missing (an event file of version {manifest.version})"
                )
            elif file.bytes is not None and size != file.bytes:  # (None: MANIFEST_FORMAT_1)
                problems.append(
                    f"{file.key} holds {size} bytes, its manifest (version {manifest.version}) "
                    f"recorded {file.bytes}"
                )
            elif checksums:
                to_hash.append((manifest, file))
    if not to_hash:
        return problems

    def check(item: tuple[Manifest, EventFile]) -> str | None:
        manifest, file = item
        try:
            if file.sha256 is None:  # MANIFEST_FORMAT_1 recorded no checksum: Parquet at all?
                store.parquet_metadata(file.key)
                return None
            found = store.sha256(file.key)
        except Exception as exc:  # noqa: BLE001 - reported, one problem of many
            return f"{file.key} is unreadable ({type(exc).__name__}: {exc})"
        if found != file.sha256:
            return (
                f"{file.key} has sha256 {found[:12]}..., its manifest (version "
                f"{manifest.version}) recorded {file.sha256[:12]}..."
            )
        return None

    with ThreadPoolExecutor(max_workers=store.concurrency) as pool:
        problems.extend(problem for problem in pool.map(check, to_hash) if problem)
    return problems


def require_whole(store: ObjectStore, dataset_id: str, chain: list[Manifest]) -> None:
    """Refuse to build on a chain with a missing or truncated event file."""
    problems = chain_problems(store, dataset_id, chain)
    if problems:
        raise BrokenChain(
            f"dataset {dataset_id}: the published chain is broken, nothing was published over "
            f"it: {'; '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}. Run "
            f"`ingest verify {dataset_id}` for every problem, `ingest repair {dataset_id}` to "
            "go back to the newest whole version"
        )
