"""Older store formats, each read by a branch that names it: manifests of MANIFEST_FORMAT_1 (no
`format_version`, no sizes or checksums, no `commits/` records), projections whose state.json
has no format (PROJECTIONS_FORMAT_1), a key index of INDEX_FORMAT_1_COLUMNS, manifests from
before fencing and before `inputs.parts`. The format 1 store of tests/fixtures/stores/ is read
as the Ingest that wrote it read it, and published on; test_pipeline covers hex hashes."""

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ingest_assets import eventstore, layout
from ingest_assets.contract import load_config_file
from ingest_assets.eventstore import chain as chains
from ingest_assets.eventstore import index as key_index
from ingest_assets.eventstore import projections
from ingest_assets.eventstore.manifest import (
    FORMAT_VERSION,
    MANIFEST_FORMAT_1,
    MANIFEST_FORMAT_2,
    EventFile,
    Manifest,
)
from ingest_assets.rows.hashing import (
    KEY_HASH,
    ROW_HASH,
    digest_columns,
    hex_digests,
    key_hashes,
    row_hashes,
)
from ingest_resources.local_store import LocalObjectStore
from ingest_resources.locks import LocalLocks
from tests.test_eventstore_faults import Store

FIXTURE = Path(__file__).parent / "fixtures" / "stores"
DATASETS = ["legacy_series", "legacy_plain"]


def _v1_store(tmp_path: Path, dataset_id: str):
    """A copy of the format 1 fixture (a store is written in place), its config and locks."""
    shutil.copytree(FIXTURE / "v1", tmp_path / "store")
    store = LocalObjectStore(tmp_path / "store")
    config = load_config_file(FIXTURE / "v1_configs" / f"{dataset_id}.yaml")
    return store, config, LocalLocks(tmp_path / "locks")


def _expected_versions(dataset_id: str) -> list[str]:
    found = json.loads((FIXTURE / "v1_expected" / "versions.json").read_text())[dataset_id]
    return [version["version"] for version in found]


FORMAT_1 = {  # as Ingest before fencing wrote it: no format_version, fence or latest_partition
    "version": "20240101T000000000000Z",
    "parent_version": None,
    "dataset_id": "D",
    "partition": "all",
    "created_at": "2024-01-01T00:00:00+00:00",
    "code_version": "ingest-0.1.0",
    "files": [
        "datasets/D/events/20240101T000000000000Z/data/year=2024/month=01/part-00000.parquet"
    ],
    "inputs": {"sha256": "ab", "fingerprint": None},
}


def test_a_manifest_of_each_known_format_reads_and_a_newer_one_is_refused():
    old = Manifest.from_bytes(json.dumps(FORMAT_1).encode(), "old.json")
    assert old.format_version == MANIFEST_FORMAT_1
    assert old.files == (EventFile(FORMAT_1["files"][0]),)  # no size, no checksum
    assert (old.fence, old.latest_partition, old.fingerprint, old.input_parts) == (
        None,
        None,
        None,
        [],
    )
    new = Manifest(
        **{**FORMAT_1, "files": (EventFile("k", 10, "ff"),), "inputs": {"parts": ["p"]}},
        fence=3,
        latest_partition="all",
    )
    assert new.format_version == FORMAT_VERSION == MANIFEST_FORMAT_2
    assert Manifest.from_bytes(new.to_bytes(), "new.json") == new
    assert new.input_parts == ["p"]
    newer = {**new.to_dict(), "format_version": FORMAT_VERSION + 1}
    with pytest.raises(
        eventstore.UnknownFormat, match="format_version 3, this Ingest reads 1 to 2"
    ):
        Manifest.from_dict(newer, "newer.json")
    for broken in ([], {"version": "v"}, {**FORMAT_1, "files": [1]}):
        with pytest.raises(eventstore.BrokenChain):
            Manifest.from_dict(broken, "broken.json")


@pytest.mark.parametrize("dataset_id", DATASETS)
def test_a_format_1_store_lists_its_versions_without_commit_records(tmp_path, dataset_id):
    """No `commits/` folder: every version with a format 1 manifest was published. Repair
    writes the records, and the versions are then read from them."""
    store, config, locks = _v1_store(tmp_path, dataset_id)
    versions = _expected_versions(dataset_id)
    assert store.list(layout.commits(dataset_id)) == []
    assert chains.committed_versions(store, dataset_id) == versions
    eventstore.repair(store, locks, config)
    records = store.list(layout.commits(dataset_id))
    assert records == [layout.commit(dataset_id, version) for version in versions]
    assert json.loads(store.get(records[-1])) == {"version": versions[-1], "parent": versions[-2]}
    assert chains.committed_versions(store, dataset_id) == versions
    assert eventstore.verify(store, config).ok


def test_format_1_event_files_are_checked_as_parquet_having_no_recorded_checksum(tmp_path):
    store, config, _ = _v1_store(tmp_path, "legacy_plain")
    head = eventstore.read_current(store, "legacy_plain")[0]
    chain = eventstore.version_chain(store, "legacy_plain", head)
    assert chains.chain_problems(store, "legacy_plain", chain, checksums=True) == []
    damaged = head.files[0].key
    size = len(store.get(damaged))
    store.put(damaged, b"x" * size)  # the same size: no recorded size to tell it by
    assert chains.chain_problems(store, "legacy_plain", chain) == []
    problems = chains.chain_problems(store, "legacy_plain", chain, checksums=True)
    assert len(problems) == 1 and problems[0].startswith(f"{damaged} is unreadable")


@pytest.mark.parametrize("dataset_id", DATASETS)
def test_projections_without_a_format_are_rebuilt_once(tmp_path, dataset_id, monkeypatch):
    store, config, locks = _v1_store(tmp_path, dataset_id)
    state = json.loads(store.get(layout.projections_state(dataset_id)))
    assert "format" not in state  # PROJECTIONS_FORMAT_1
    assert projections.state_version(store, dataset_id) is None
    rebuilt = []
    rebuild = projections.rebuild
    monkeypatch.setattr(projections, "rebuild", lambda *args: rebuilt.append(1) or rebuild(*args))
    eventstore.bring_up_to_date(store, locks, config)
    head = _expected_versions(dataset_id)[-1]
    assert projections.state_version(store, dataset_id, count=True) == head
    assert json.loads(store.get(layout.projections_state(dataset_id)))["format"] == 2
    eventstore.bring_up_to_date(store, locks, config)
    assert rebuilt == [1]
    assert eventstore.verify(store, config).ok


def test_a_key_index_of_format_1_columns_is_rebuilt(tmp_path):
    """An index of key_hash, row_hash and version as text (Ingest before 8c460b7), even one
    whose footer names the current version, is taken as missing and rebuilt."""
    ds = Store(tmp_path)
    ds.publish({i: 1.0 for i in range(20)})
    head = ds.publish({i: 2.0 for i in range(10, 30)})
    replayed = eventstore.replay(ds.store, eventstore.version_chain(ds.store, "F", ds.current()))
    old = pa.table(
        {
            KEY_HASH: hex_digests(replayed[KEY_HASH]),
            ROW_HASH: hex_digests(replayed[ROW_HASH]),
            "version": replayed["version"],
        }
    ).replace_schema_metadata({key_index.VERSION_META: head.version.encode()})
    ds.store.write_parquet(layout.index("F"), old)
    assert key_index.indexed_version(ds.store, "F") is None
    assert not ds.verify().ok
    assert ds.publish({i: 3.0 for i in range(30, 35)}).rows_added == 5
    assert ds.store.parquet_schema(layout.index("F")).names == key_index.INDEX_COLUMNS
    assert ds.verify().ok


@pytest.mark.parametrize(
    ("dataset_id", "partition"), [("legacy_series", "2099-01-01"), ("legacy_plain", "all")]
)
def test_a_format_1_store_is_published_on_in_format_2(tmp_path, dataset_id, partition):
    """New and revised rows over a format 1 head (no latest_partition recorded): a format 2
    version whose parent is the old head, with its commit record; the old versions stay."""
    store, config, locks = _v1_store(tmp_path, dataset_id)
    versions = _expected_versions(dataset_id)
    published = eventstore.published_table(store, config)
    rows = digest_columns(published.drop_columns(["version"]))
    later = pc.add(rows["obs_time"], pa.scalar(dt.timedelta(days=400)))
    new = rows.slice(0, 3).set_column(
        rows.schema.get_field_index("obs_time"), "obs_time", later.slice(0, 3)
    )
    new = new.set_column(
        new.schema.get_field_index(KEY_HASH), KEY_HASH, key_hashes(new, config.primary_keys)
    )
    revised = rows.slice(3, 1)
    revised = revised.set_column(
        revised.schema.get_field_index(ROW_HASH), ROW_HASH, row_hashes(revised, ["obs_time"])
    )
    table = pa.concat_tables([rows.slice(4), new, revised])
    result = eventstore.publish(store, locks, config, partition, table, {}, {})
    assert result.committed and (result.rows_added, result.rows_revised) == (3, 1)
    manifest = result.manifest
    assert manifest.format_version == MANIFEST_FORMAT_2
    assert manifest.parent_version == versions[-1]
    assert manifest.latest_partition == partition
    assert all(file.bytes and file.sha256 for file in manifest.files)
    assert store.exists(layout.commit(dataset_id, manifest.version))
    chain = eventstore.version_chain(store, dataset_id, manifest)
    assert [m.format_version for m in chain] == [MANIFEST_FORMAT_1] * len(versions) + [2]
    assert eventstore.verify(store, config).ok
    assert eventstore.published_table(store, config).num_rows == published.num_rows + 3


def test_a_manifest_without_input_parts_leaves_no_staged_part_out(tmp_path):
    """Manifests before c42c6d9 list no `inputs.parts`: every part is compared row by row."""
    store = LocalObjectStore(tmp_path)
    staged = eventstore.StagedRows(store, (("a.parquet", 5), ("b.parquet", 7)))
    before = Manifest.from_dict(FORMAT_1, "old.json")
    assert staged.unpublished(before) == (staged, 0)
    listed = Manifest.from_dict({**FORMAT_1, "inputs": {"parts": ["a.parquet"]}}, "new.json")
    rest, repeated = staged.unpublished(listed)
    assert rest.keys == ["b.parquet"] and repeated == 5
