"""Property-based tests of the event store's invariants (hypothesis): random multi-series,
multi-month tables with revisions, published over several versions, on the local store and on
S3 (moto). After every publish each projection window, the key index and the export are
compared with a model of the published state computed here in plain Python from the inputs
(later versions win), not with anything the store derived."""

import datetime as dt
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_assets import eventstore, layout
from ingest_assets.contract import SERIES_CODE, parse_config
from ingest_assets.eventstore import index as key_index
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, hex_columns, key_hashes, row_hashes
from ingest_resources.local_store import LocalObjectStore
from ingest_resources.locks import LocalLocks

START = dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
SHAPES = ("series", "plain", "moving")  # moving: the key is `id`, a revision may change months


def make_config(shape: str):
    keys = {"series": [SERIES_CODE, "obs_time"], "plain": ["obs_time"], "moving": ["id"]}[shape]
    schema = {"value": "float64"} | ({"id": "int64"} if shape == "moving" else {})
    return parse_config(
        {
            "dataset_id": f"prop_{shape}",
            "source": {"kind": "file", "path": "unused.csv", "format": "csv"},
            "normalize": {"primary_keys": keys, "schema": schema},
        },
        f"prop_{shape}.yaml",
    )


def table_of(config, shape: str, rows: dict) -> pa.Table:
    """The normalized table of one version: {key: (series, day, value)}."""
    items = sorted(rows.items())
    days = [START + dt.timedelta(days=day) for _, (_, day, _) in items]
    columns = {
        "obs_time": pa.array(days, pa.timestamp("us", tz="UTC")),
        "value": pa.array([float(value) for _, (_, _, value) in items], pa.float64()),
    }
    if shape == "series":
        columns = {SERIES_CODE: pa.array([s for _, (s, _, _) in items], pa.string()), **columns}
    if shape == "moving":
        columns = {"id": pa.array([key for key, _ in items], pa.int64()), **columns}
    table = pa.table(columns)
    values = [name for name in table.column_names if name not in config.primary_keys]
    return table.append_column(KEY_HASH, key_hashes(table, config.primary_keys)).append_column(
        ROW_HASH, row_hashes(table, values)
    )


@st.composite
def histories(draw, shape: str):
    """Versions of {key: (series, day, value)}; keys recur across versions (revisions)."""
    series = [f"S{i}" for i in range(draw(st.integers(1, 6 if shape == "series" else 1)))]
    versions = []
    for _ in range(draw(st.integers(1, 4))):
        rows = {}
        for _ in range(draw(st.integers(0, 40))):
            name = draw(st.sampled_from(series))
            day = draw(st.integers(0, 420))  # 14 months
            value = draw(st.integers(0, 3))  # few values: many repeats, some revisions
            if shape == "moving":
                key = draw(st.integers(0, 25))
            elif shape == "series":
                key = (name, day)
            else:
                key = day
            rows[key] = (name if shape == "series" else None, day, value)
        versions.append(rows)
    return versions


def model_windows(config, shape: str, state: dict) -> dict[str, list]:
    """What every window must hold: the latest row of each key, in its series and month."""
    windows = defaultdict(list)
    for key, (series, day, value) in state.items():
        when = START + dt.timedelta(days=day)
        window = layout.projection(
            config.dataset_id, series or config.dataset_id, when.year, when.month
        )
        windows[window].append((key if shape == "moving" else None, when, float(value)))
    return {key: sorted(rows) for key, rows in windows.items()}


def stored_windows(store, config, shape: str) -> dict[str, list]:
    found = {}
    for key in store.list(layout.projections(config.dataset_id)):
        if not key.endswith(".parquet"):
            continue
        table = store.read_parquet(key)
        ids = table["id"].to_pylist() if shape == "moving" else [None] * table.num_rows
        found[key] = sorted(
            zip(ids, table["obs_time"].to_pylist(), table["value"].to_pylist(), strict=True)
        )
    return found


def pairs(table: pa.Table) -> list[tuple[str, str]]:
    return sorted(zip(table[KEY_HASH].to_pylist(), table[ROW_HASH].to_pylist(), strict=True))


def check_against_model(store, config, shape: str, state: dict) -> None:
    assert stored_windows(store, config, shape) == model_windows(config, shape, state)
    current, _ = eventstore.read_current(store, config.dataset_id)
    chain = eventstore.version_chain(store, config.dataset_id, current)
    index, stale = key_index.load(store, config.dataset_id, chain)
    assert not stale and len(index) == len(state)
    exported = eventstore.published_table(store, config)
    assert exported.num_rows == len(state)
    expected_hashes = hex_columns(
        table_of(config, shape, {k: v for k, v in state.items()}).select([KEY_HASH, ROW_HASH])
    )
    assert pairs(exported) == pairs(expected_hashes)
    report = eventstore.verify(store, config)
    assert report.ok, report.problems


def publish_history(store, locks, shape: str, versions: list[dict]) -> None:
    config = make_config(shape)
    state: dict = {}
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for number, rows in enumerate(versions):
        result = eventstore.publish(
            store,
            locks,
            config,
            "all",
            table_of(config, shape, rows),
            {},
            {},
            now=now + dt.timedelta(hours=number),
        )
        assert not result.follow_up_errors
        state.update(rows)
        if state:
            check_against_model(store, config, shape, state)


PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("shape", SHAPES)
def test_windows_index_and_export_equal_the_model_on_disk(shape):
    @PROPERTY
    @given(histories(shape))
    def run(versions):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            publish_history(
                LocalObjectStore(root / "store"), LocalLocks(root / "locks"), shape, versions
            )

    run()


@pytest.mark.parametrize("shape", SHAPES)
def test_windows_index_and_export_equal_the_model_on_s3(aws, tmp_path, shape):
    from ingest_resources.runtime import aws_client
    from ingest_resources.s3_store import S3ObjectStore

    client = aws_client("s3", aws["endpoint"])

    @settings(PROPERTY, max_examples=4)
    @given(histories(shape))
    def run(versions):
        store = S3ObjectStore(client, aws["bucket"], f"prop-{uuid.uuid4().hex[:8]}")
        publish_history(store, LocalLocks(tmp_path / uuid.uuid4().hex), shape, versions)

    run()


def test_windows_are_cut_where_the_series_changes_whatever_group_by_returns():
    """The review's case: many series sorted, then grouped; pyarrow's group_by does not return
    groups in sorted order, so windows must be cut from the sorted codes themselves."""
    from ingest_assets.eventstore.projections import split_windows

    config = make_config("series")
    rows = {(f"S{i % 60}", i % 300): (f"S{i % 60}", i % 300, i % 7) for i in range(3000)}
    table = table_of(config, "series", rows)
    seen = 0
    for (series, year, month), window in split_windows(config, table):
        assert set(window[SERIES_CODE].to_pylist()) == {series}
        assert {(t.year, t.month) for t in window["obs_time"].to_pylist()} == {(year, month)}
        seen += window.num_rows
    assert seen == table.num_rows
