"""`ingest verify`: walk the chain from `current` and check every manifest, parent link and
event file (size and sha256), then the derived files (key index, projections) against a replay
of the events. Every problem is named; nothing is changed."""

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets import layout
from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.eventstore import follow_ups, projections
from ingest_assets.eventstore import index as key_index
from ingest_assets.eventstore.chain import chain_problems, read_current, version_chain
from ingest_assets.eventstore.errors import EventStoreError
from ingest_assets.eventstore.events import VERSION
from ingest_assets.eventstore.files import read_ledger
from ingest_assets.eventstore.keyindex import KeyIndex
from ingest_assets.eventstore.manifest import Manifest
from ingest_assets.eventstore.replay import replay
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, Parts, digest_columns, digest_parts
from ingest_resources.object_store import ObjectStore


@dataclass
class Report:
    dataset_id: str
    version: str | None = None
    versions: int = 0
    files: int = 0
    bytes: int = 0
    rows: int = 0
    windows: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store: ObjectStore, config: DatasetConfig, derived: bool = True) -> Report:
    started = time.perf_counter()
    report = Report(config.dataset_id)
    try:
        _verify(store, config, derived, report)
    except EventStoreError as exc:
        report.problems.append(str(exc))
    report.seconds = time.perf_counter() - started
    return report


def _verify(store: ObjectStore, config: DatasetConfig, derived: bool, report: Report) -> None:
    dataset_id = config.dataset_id
    current, _ = read_current(store, dataset_id)
    if current is None:
        report.notes.append("nothing published yet")
        return
    chain = version_chain(store, dataset_id, current)
    report.version, report.versions = current.version, len(chain)
    for manifest in chain:
        if manifest.dataset_id != dataset_id:
            report.problems.append(
                f"{layout.manifest(dataset_id, manifest.version)} names dataset "
                f"{manifest.dataset_id!r}"
            )
    report.files = sum(len(manifest.files) for manifest in chain)
    report.bytes = sum(file.bytes or 0 for manifest in chain for file in manifest.files)
    report.problems += chain_problems(store, dataset_id, chain, checksums=True)
    read_ledger(store, chain)  # a landing zone's files ledger: each part there, as committed
    for version in follow_ups.pending(store, dataset_id):
        report.notes.append(f"follow-ups of version {version} not finished (the next run does)")
    if report.problems or not derived:
        return  # (derived files are checked against whole events only)
    latest = replay(store, chain, _checked_columns(store, config, chain))
    report.rows = 0 if latest is None else latest.num_rows
    report.problems += _index_problems(store, dataset_id, current, latest)
    if config.publish.object_store:
        report.problems += _projection_problems(store, config, current, latest, report)


def _checked_columns(store: ObjectStore, config: DatasetConfig, chain: list[Manifest]) -> list[str]:
    """What the derived files are checked on: the hashes, the version, and what places a row
    in its window (series, time); not the values (their row_hash stands for them)."""
    first = next((m.file_keys[0] for m in chain if m.files), None)
    names = set(store.parquet_schema(first).names) if first else set()
    placing = [SERIES_CODE, config.normalize.time_column, "collection_date"]
    return [KEY_HASH, ROW_HASH, VERSION, *(name for name in placing if name in names)]


def _index_problems(
    store: ObjectStore, dataset_id: str, current: Manifest, latest: pa.Table | None
) -> list[str]:
    key = layout.index(dataset_id)
    indexed = key_index.indexed_version(store, dataset_id)
    if indexed != current.version:
        return [
            f"{key} reflects version {indexed or 'none (missing or unreadable)'}, current is "
            f"{current.version} (the next publish or `ingest repair {dataset_id}` rebuilds it)"
        ]
    index, _ = key_index.load(store, dataset_id, [current])
    # versions as numbers: their position in one list of every version either side names
    names = sorted(set(index.versions) | set(_versions(latest)))
    expected = _index_rows(
        digest_parts(latest[KEY_HASH]) if latest is not None else _empty_parts(),
        digest_parts(latest[ROW_HASH]) if latest is not None else _empty_parts(),
        _codes(latest[VERSION], names) if latest is not None else np.zeros(0, np.int64),
    )
    remap = np.asarray([names.index(v) for v in index.versions], dtype=np.int64)
    found = _index_rows(index.keys, index.rows, remap[index.version_codes])
    if len(found[0]) != len(expected[0]):
        return [f"{key} holds {len(found[0])} keys, the events {len(expected[0])}"]
    differing = int(np.sum(np.any(np.stack(found) != np.stack(expected), axis=0)))
    return [f"{key}: {differing} key(s) differ from the events"] if differing else []


def _versions(latest: pa.Table | None) -> list[str]:
    if latest is None:
        return []
    return [str(version) for version in pc.unique(latest[VERSION]).to_pylist()]


def _codes(versions: "pa.ChunkedArray", names: list[str]) -> np.ndarray:
    found = pc.index_in(versions, value_set=pa.array(names, pa.string()))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)


def _empty_parts() -> Parts:
    return KeyIndex.empty().keys


def _index_rows(keys: Parts, rows: Parts, versions: np.ndarray) -> list[np.ndarray]:
    """Key parts, row parts and version codes, sorted by key (as unsigned integers alike)."""
    columns = [*keys, *rows, versions]
    order = np.lexsort(tuple(reversed(columns[:3])))
    return [np.asarray(column[order]).astype(np.uint64) for column in columns]


def _projection_problems(
    store: ObjectStore,
    config: DatasetConfig,
    current: Manifest,
    latest: pa.Table | None,
    report: Report,
) -> list[str]:
    dataset_id = config.dataset_id
    problems: list[str] = []
    state = projections.state_version(store, dataset_id)
    if state != current.version:
        problems.append(
            f"{layout.projections_state(dataset_id)} says {state or 'nothing (missing or unreadable)'}, "
            f"current is {current.version} (the next publish or `ingest repair` rebuilds them)"
        )
    expected = projections.expected_windows(config, latest)
    stored = {key for key in store.list(layout.projections(dataset_id)) if key.endswith(".parquet")}
    report.windows = len(expected)
    for key in sorted(stored - set(expected)):
        problems.append(f"{key} holds rows no key's latest version has (a stale window)")
    for key in sorted(set(expected) - stored):
        problems.append(f"{key} is missing ({expected[key].num_rows} rows expected)")
    for key in sorted(set(expected) & stored):
        try:
            found = digest_columns(store.read_parquet(key, columns=[KEY_HASH, ROW_HASH, VERSION]))
        except Exception as exc:  # noqa: BLE001 - reported, one problem of many
            problems.append(f"{key} is unreadable ({type(exc).__name__}: {exc})")
            continue
        want = expected[key].select([KEY_HASH, ROW_HASH, VERSION])
        if not _same_rows(found, want):
            problems.append(
                f"{key} holds {found.num_rows} rows, not the {want.num_rows} latest rows of its "
                "keys in that series and month"
            )
    return problems


def _same_rows(found: pa.Table, want: pa.Table) -> bool:
    if found.num_rows != want.num_rows:
        return False
    order = [(KEY_HASH, "ascending")]
    found, want = found.sort_by(order), want.sort_by(order)
    return all(
        found[name].cast(want.schema.field(name).type).equals(want[name])
        for name in (KEY_HASH, ROW_HASH, VERSION)
    )
