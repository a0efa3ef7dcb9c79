"""`parquet`: a Parquet file as it is, with `_row` added in front."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_assets.parsers import ParseError

UTC = dt.UTC


@pytest.fixture
def parquet_file(tmp_path):
    table = pa.table(
        {
            "series": pa.array(["BCRA_TC", "BCRA_TC", "INDEC_IPC"], pa.string()),
            "obs_time": pa.array(
                [
                    dt.datetime(2025, 8, 11, 3, tzinfo=UTC),
                    dt.datetime(2025, 8, 12, 3, tzinfo=UTC),
                    None,
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "value": pa.array([1330.5, 1321.5, None], pa.float64()),
            "count": pa.array([1, 2, 3], pa.int32()),
            "price": pa.array([Decimal("10.25"), None, Decimal("-3.50")], pa.decimal128(9, 2)),
            "day": pa.array([dt.date(2025, 8, 11), dt.date(2025, 8, 12), None], pa.date32()),
            "ok": pa.array([True, False, None], pa.bool_()),
        }
    )
    path = tmp_path / "observations.parquet"
    pq.write_table(table, path, row_group_size=2)  # two row groups
    return path, table


def test_parquet_is_read_as_it_is(parse, parquet_file):
    path, written = parquet_file
    table = parse(path, {"format": "parquet"}, keys=["series", "obs_time"])
    assert table.column_names == ["_row", *written.column_names]
    assert table.schema.field("_row").type == pa.int64()
    assert table.column("_row").to_pylist() == [1, 2, 3]
    assert table.drop_columns(["_row"]).schema == written.schema
    assert table.drop_columns(["_row"]).to_pylist() == written.to_pylist()
    second = table.slice(1, 1).to_pylist()[0]
    assert second == {
        "_row": 2,
        "series": "BCRA_TC",
        "obs_time": dt.datetime(2025, 8, 12, 3, tzinfo=UTC),
        "value": 1321.5,
        "count": 2,
        "price": None,
        "day": dt.date(2025, 8, 12),
        "ok": False,
    }


def test_parquet_columns_can_be_renamed(parse, parquet_file):
    path, _ = parquet_file
    table = parse(
        path,
        {"format": "parquet"},
        keys=["series_code"],
        parse_config={"columns": {"series": "series_code", "value": "obs_value"}},
    )
    assert table.column_names == [
        "_row",
        "series_code",
        "obs_time",
        "obs_value",
        "count",
        "price",
        "day",
        "ok",
    ]
    assert table.column("obs_value").to_pylist() == [1330.5, 1321.5, None]


def test_not_parquet_is_a_clear_error(config, run, fixture_file):
    path = fixture_file("csv/bde_catalogo_tc_latin1.csv")
    cfg = config({"format": "parquet"}, keys=["x"], dataset_id="PQ_TEST")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    assert str(info.value).startswith(f"dataset PQ_TEST: {path}: not a readable Parquet file")
