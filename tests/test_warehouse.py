"""The PostgreSQL warehouse on the machine's real server: first load, identical reload, revision,
schema evolution, a refused type change, a shared table, hostile names, rebuild."""

import datetime as dt

import psycopg2
import pyarrow as pa
import pytest

from ingest_assets import stages
from ingest_assets.cli import main
from ingest_assets.contract import parse_config
from ingest_assets.eventstore import IncompatibleSchema
from ingest_resources.runtime import runtime_from_env
from ingest_resources.warehouse import WarehouseSchemaError
from ingest_resources.warehouse.schema import _orders_by_bytes


@pytest.fixture
def warehouse_env(pg_database, monkeypatch):
    monkeypatch.setenv("INGEST_POSTGRES_URL", pg_database)
    return pg_database


def dataset(
    tmp_path,
    rows: str,
    dataset_id="WH",
    table="observations",
    schema=None,
    header="series,day,value",
):
    csv = tmp_path / f"{dataset_id}.csv"
    csv.write_text(header + "\n" + rows)
    return parse_config(
        {
            "dataset_id": dataset_id,
            "source": {"kind": "file", "path": str(csv), "format": "csv"},
            "normalize": {
                "primary_keys": ["series", "day"],
                "time_column": "day",
                "schema": schema or {"value": "float64", "day": "date"},
            },
            "publish": {"postgres": {"table": table, "schema": "public"}},
        },
        f"{dataset_id}.yaml",
    )


def run(config):
    runtime = runtime_from_env()
    for stage in (stages.run_raw, stages.run_parse, stages.run_normalize, stages.run_publish):
        stage(runtime, config, "all")
    return stages.run_warehouse(runtime, config)


def query(url, statement, *args):
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(statement, args)
        return cursor.fetchall()


ROWS = "A,2024-01-01,1.5\nA,2024-01-02,2.5\nB,2024-01-01,10\n"


def test_first_load_identical_reload_and_revision(warehouse_env, tmp_path):
    first = run(dataset(tmp_path, ROWS))
    assert (first.rows_inserted, first.rows_updated, len(first.versions_loaded)) == (3, 0, 1)
    columns = dict(
        query(
            warehouse_env,
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'observations'",
        )
    )
    assert columns == {
        "series": "text",
        "day": "date",
        "value": "double precision",
        "collection_date": "date",
        "key_hash": "text",
        "row_hash": "text",
        "version": "text",
        "source": "text",
    }
    keys = query(
        warehouse_env,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'observations'::regclass AND i.indisprimary ORDER BY a.attname",
    )
    assert [k[0] for k in keys] == ["day", "series", "source"]
    before = query(
        warehouse_env,
        "SELECT xmin::text, series, day, value FROM observations ORDER BY series, day",
    )

    again = run(dataset(tmp_path, ROWS))  # nothing new published: nothing travels
    assert (again.rows_inserted, again.rows_updated, again.versions_loaded) == (0, 0, [])
    runtime = runtime_from_env()
    version = first.versions_loaded[0]
    table = runtime.store.read_parquet(runtime.store.list(f"datasets/WH/events/{version}/data")[0])
    retry = runtime.warehouse.load(
        "WH", version, "all", table, ["series", "day"], "public", "observations"
    )
    assert retry.already_loaded  # a retried load of a version in the ledger is a no-op
    assert (
        query(
            warehouse_env,
            "SELECT xmin::text, series, day, value FROM observations ORDER BY series, day",
        )
        == before
    )
    assert query(
        warehouse_env, "SELECT dataset, version, rows_inserted, rows_updated FROM ingest_loads"
    ) == [("WH", version, 3, 0)]

    revised = run(dataset(tmp_path, "A,2024-01-01,1.5\nA,2024-01-02,2.75\nB,2024-01-01,10\n"))
    assert (revised.rows_inserted, revised.rows_updated) == (0, 1)
    after = query(
        warehouse_env,
        "SELECT xmin::text, series, day, value FROM observations ORDER BY series, day",
    )
    assert [r[1:] for r in after][1][2] == 2.75
    assert (
        after[0][0] == before[0][0] and after[2][0] == before[2][0]
    )  # untouched rows keep their row version
    assert after[1][0] != before[1][0]


def test_a_new_column_is_added(warehouse_env, tmp_path):
    run(dataset(tmp_path, ROWS))
    grown = dataset(
        tmp_path,
        "A,2024-01-01,1.5,ok\nA,2024-01-02,2.5,ok\nB,2024-01-01,10,est\n",
        schema={"value": "float64", "day": "date", "quality": "string"},
        header="series,day,value,quality",
    )
    result = run(grown)
    assert result.rows_updated == 3  # the new values are revisions
    assert query(warehouse_env, "SELECT quality FROM observations ORDER BY series, day") == [
        ("ok",),
        ("ok",),
        ("est",),
    ]


def test_an_int_column_widens_to_float(warehouse_env, tmp_path):
    run(dataset(tmp_path, "A,2024-01-01,1\n", schema={"value": "int64", "day": "date"}))
    assert query(
        warehouse_env,
        "SELECT data_type FROM information_schema.columns WHERE table_name='observations' AND column_name='value'",
    ) == [("bigint",)]
    run(dataset(tmp_path, "A,2024-01-01,1.5\n", schema={"value": "float64", "day": "date"}))
    assert query(warehouse_env, "SELECT value FROM observations") == [(1.5,)]


def test_a_narrowing_type_change_is_refused_by_name(warehouse_env, tmp_path):
    run(dataset(tmp_path, ROWS))
    runtime = runtime_from_env()
    text_values = pa.table(
        {
            "series": ["A"],
            "day": [dt.date(2024, 1, 3)],
            "value": ["n/a"],
            "collection_date": [dt.date(2026, 1, 1)],
            "key_hash": ["k"],
            "row_hash": ["r"],
            "version": ["v-text"],
        }
    )
    with pytest.raises(
        WarehouseSchemaError,
        match=r'table "public"."observations": column "value" is double precision, the contract now makes it text',
    ):
        runtime.warehouse.load(
            "WH", "v-text", "all", text_values, ["series", "day"], "public", "observations"
        )
    assert query(warehouse_env, "SELECT count(*) FROM observations") == [
        (3,)
    ]  # nothing half-loaded
    assert query(warehouse_env, "SELECT count(*) FROM ingest_loads WHERE version = 'v-text'") == [
        (0,)
    ]


def test_publish_refuses_a_type_change_of_a_published_column(warehouse_env, tmp_path):
    run(dataset(tmp_path, ROWS))
    with pytest.raises(
        IncompatibleSchema,
        match=r"column 'value' was double in the published versions and is now string",
    ):
        run(dataset(tmp_path, ROWS, schema={"value": "string", "day": "date"}))
    assert (
        len(runtime_from_env().store.list("datasets/WH/events")) == 2
    )  # still one version: its data file and manifest


def test_two_datasets_share_one_table(warehouse_env, tmp_path):
    run(dataset(tmp_path, ROWS, dataset_id="FROM_API"))
    run(dataset(tmp_path, "A,2024-01-01,1.5\nC,2024-01-01,7\n", dataset_id="FROM_CSV"))
    counts = query(
        warehouse_env, "SELECT source, count(*) FROM observations GROUP BY source ORDER BY source"
    )
    assert counts == [("FROM_API", 3), ("FROM_CSV", 2)]


def test_hostile_names_stay_names(warehouse_env, tmp_path):
    evil_table = 'obs"; DROP TABLE ingest_loads; --'
    config = dataset(tmp_path, ROWS, table=evil_table)
    csv = tmp_path / "WH.csv"
    csv.write_text('series,day,"va""lue; DELETE FROM x"\nA,2024-01-01,1\n')
    config = config.model_copy(
        update={"normalize": config.normalize.model_copy(update={"schema_": {"day": "date"}})}
    )
    result = run(config)
    assert result.rows_inserted == 1
    tables = {
        r[0]
        for r in query(
            warehouse_env,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        )
    }
    assert tables == {evil_table, "ingest_loads"}
    columns = {
        r[0]
        for r in query(
            warehouse_env,
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            evil_table,
        )
    }
    assert 'va"lue; DELETE FROM x' in columns


def test_rebuild_reproduces_the_table(warehouse_env, tmp_path, capsys, monkeypatch):
    run(dataset(tmp_path, ROWS))
    config = dataset(
        tmp_path, "A,2024-01-01,1.5\nA,2024-01-02,3\nB,2024-01-01,10\nB,2024-01-02,11\n"
    )
    run(config)
    snapshot = "SELECT series, day, value, key_hash, row_hash, version, source FROM observations ORDER BY series, day"
    before = query(warehouse_env, snapshot)
    query(warehouse_env, "DELETE FROM observations WHERE series = 'B' RETURNING 1")  # damage
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "wh.yaml").write_text(
        f"dataset_id: WH\nsource: {{kind: file, path: {tmp_path / 'WH.csv'}, format: csv}}\n"
        "normalize: {primary_keys: [series, day], time_column: day, schema: {value: float64, day: date}}\n"
        "publish: {postgres: {table: observations}}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    assert main(["warehouse-rebuild", "WH"]) == 0
    assert "rebuilt public.observations from 2 version(s)" in capsys.readouterr().out
    assert query(warehouse_env, snapshot) == before
    assert len(query(warehouse_env, "SELECT * FROM ingest_loads WHERE dataset = 'WH'")) == 2


def test_without_a_warehouse_url_the_asset_skips(tmp_path, monkeypatch):
    monkeypatch.delenv("INGEST_POSTGRES_URL", raising=False)
    result = run(dataset(tmp_path, ROWS))
    assert result.skipped == "INGEST_POSTGRES_URL is not set"


def test_the_warehouse_asset_of_a_sample(warehouse_env):
    import dagster as dg

    from tests.test_dagster_e2e import SAMPLES, _materialize

    config = next(c for c in SAMPLES if c.publish.postgres is not None)
    with dg.DagsterInstance.ephemeral() as instance:
        first = _materialize(config, instance)["warehouse"]
        second = _materialize(config, instance)["warehouse"]
    assert first["rows_inserted"] == 13482 and first["table"] == "public.cpi_divisions"
    assert second["rows_upserted"] == 0 and second["versions_loaded"] == []
    assert query(
        warehouse_env, "SELECT count(*) FROM cpi_divisions WHERE source = 'INDEC_IPC_DIVISIONES'"
    ) == [(13482,)]


def test_an_empty_version_is_recorded_without_touching_tables(warehouse_env):
    runtime = runtime_from_env()
    result = runtime.warehouse.load("EMPTY", "v1", "all", pa.table({}), ["id"], "public", "nothing")
    assert (result.inserted, result.updated, result.already_loaded) == (0, 0, False)
    assert query(warehouse_env, "SELECT dataset, version FROM ingest_loads") == [("EMPTY", "v1")]
    assert query(
        warehouse_env, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'nothing'"
    ) == [(0,)]


def test_every_column_type_arrives_as_published(warehouse_env):
    """Binary COPY: each Arrow type is sent as the column's PostgreSQL type expects (integers of
    any width as bigint, float32 as double, nanoseconds as microseconds, dictionary text as
    text); "" stays an empty string, distinct from NULL; several batches, one transaction."""
    from decimal import Decimal

    from ingest_resources.warehouse import Warehouse

    instant = dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    nanos = (instant - epoch) // dt.timedelta(microseconds=1) * 1000 + 789  # .123456789 s
    first = pa.table(
        {
            "code": pa.array(["a", "b"]).dictionary_encode(),
            "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2)]),
            "small": pa.array([1, None], pa.int16()),
            "ratio": pa.array([0.5, None], pa.float32()),
            "flag": pa.array([True, None]),
            "price": pa.array([Decimal("12.34"), None], pa.decimal128(10, 2)),
            "at": pa.array([nanos, None], pa.int64()).cast(pa.timestamp("ns", "UTC")),
            "big": pa.array([Decimal("1.5"), None], pa.decimal256(20, 1)),
            "local": pa.array([dt.datetime(2024, 1, 1, 8), None], pa.timestamp("s")),
            "note": pa.array(['say "hi",\nthen; DROP TABLE x; --', ""]),
            "op": ["insert", "insert"],
        }
    )
    second = first.slice(0, 1).set_column(0, "code", pa.array(["c"]).dictionary_encode())
    second = second.set_column(9, "note", pa.array([None], pa.string()))
    result = Warehouse(warehouse_env).load(
        "TYPES", "v1", "all", iter([first, second]), ["code", "day"], "public", "types"
    )
    assert (result.inserted, result.updated) == (3, 0)
    rows = query(
        warehouse_env,
        "SELECT code, day, small, ratio, flag, price, at, local, note, source, big FROM types "
        "ORDER BY code",
    )
    assert rows[0] == (
        "a",
        dt.date(2024, 1, 1),
        1,
        0.5,
        True,
        Decimal("12.34"),
        instant + dt.timedelta(microseconds=1),  # 789 ns round up, as PostgreSQL's input would
        dt.datetime(2024, 1, 1, 8),
        'say "hi",\nthen; DROP TABLE x; --',
        "TYPES",
        Decimal("1.5"),
    )
    assert rows[1][2:9] == (None, None, None, None, None, None, "")
    assert rows[2][0] == "c" and rows[2][8] is None
    kinds = dict(
        query(
            warehouse_env,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'types'",
        )
    )
    assert kinds["small"] == "bigint" and kinds["ratio"] == "double precision"
    assert kinds["at"] == "timestamp with time zone" and kinds["price"] == "numeric"


def test_rows_that_do_not_fit_the_table_fail_the_load_and_change_nothing(warehouse_env):
    from ingest_resources.warehouse import Warehouse

    warehouse = Warehouse(warehouse_env)
    good = pa.table({"code": ["a"], "n": pa.array([1], pa.uint64()), "op": ["insert"]})
    warehouse.load("BIG", "v1", "all", good, ["code"], "public", "big")
    too_big = pa.table({"code": ["b"], "n": pa.array([2**64 - 1], pa.uint64()), "op": ["insert"]})
    with pytest.raises(
        WarehouseSchemaError, match=r"dataset BIG: table \"public\".\"big\".*n int64.*not in range"
    ):
        warehouse.load("BIG", "v2", "all", iter([good, too_big]), ["code"], "public", "big")
    assert query(warehouse_env, "SELECT code, n FROM big") == [("a", 1)]
    assert query(warehouse_env, "SELECT version FROM ingest_loads WHERE dataset = 'BIG'") == [
        ("v1",)
    ]


def test_a_value_the_server_refuses_fails_the_load_and_changes_nothing(warehouse_env):
    """PostgreSQL stops the COPY (text cannot hold a NUL byte): the error is the server's, the
    encoding thread stops, and the table and the ledger are as they were."""
    from ingest_resources.errors import WarehouseError
    from ingest_resources.warehouse import Warehouse

    warehouse = Warehouse(warehouse_env)
    good = pa.table({"code": ["a"], "note": ["fine"], "op": ["insert"]})
    warehouse.load("NUL", "v1", "all", good, ["code"], "public", "nul")
    batches = [pa.table({"code": [f"k{i}"], "note": ["x"], "op": ["insert"]}) for i in range(50)]
    batches[1] = pa.table({"code": ["bad"], "note": ["a\x00b"], "op": ["insert"]})
    with pytest.raises(
        WarehouseError, match=r"dataset NUL: table \"public\".\"nul\": version v2 not loaded .*0x00"
    ):
        warehouse.load("NUL", "v2", "all", iter(batches), ["code"], "public", "nul")
    assert query(warehouse_env, "SELECT code, note FROM nul") == [("a", "fine")]
    assert query(warehouse_env, "SELECT count(*) FROM ingest_loads WHERE dataset = 'NUL'") == [(1,)]


def test_a_decimal_wider_than_38_digits_is_refused_by_name(warehouse_env):
    from decimal import Decimal

    from ingest_resources.warehouse import Warehouse

    rows = pa.table(
        {"code": ["a"], "n": pa.array([Decimal(1)], pa.decimal256(40, 0)), "op": ["insert"]}
    )
    with pytest.raises(WarehouseSchemaError, match=r"dataset WIDE: .*column 'n' is decimal256"):
        Warehouse(warehouse_env).load("WIDE", "v1", "all", rows, ["code"], "public", "wide")
    assert query(warehouse_env, "SELECT to_regclass('public.wide')") == [(None,)]  # rolled back


def test_a_new_tables_key_leads_with_the_datasets_keys_compared_bytewise(warehouse_env, tmp_path):
    """The primary key is (the dataset's keys..., source): sorted by the values that differ
    first. In a database whose collation orders text as its bytes (C.UTF-8 here), its text
    columns are "C": the same order, compared by memcmp. Other collations keep their own."""
    run(dataset(tmp_path, ROWS + "b,2024-01-01,3\n\u00e9,2024-01-01,4\n"))
    key = query(
        warehouse_env,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'public.observations'::regclass "
        "AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    assert [name for (name,) in key] == ["series", "day", "source"]
    (default,) = query(
        warehouse_env, "SELECT datcollate FROM pg_database WHERE datname = current_database()"
    )[0]
    collations = dict(
        query(
            warehouse_env,
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_name = 'observations' AND table_schema = 'public'",
        )
    )
    expected = "C" if _orders_by_bytes(default) else None
    assert (collations["series"], collations["source"]) == (expected, expected)
    assert collations["key_hash"] is None  # not a key: the database's own
    ordered = query(warehouse_env, "SELECT DISTINCT series FROM observations ORDER BY 1")
    assert [s for (s,) in ordered] == ["A", "B", "b", "\u00e9"]  # as their UTF-8 bytes
    assert not _orders_by_bytes("en_US.UTF-8") and _orders_by_bytes("C.UTF-8")
    second = run(dataset(tmp_path, ROWS.replace("2.5", "2.75")))  # an upsert through that key
    assert (second.rows_inserted, second.rows_updated) == (0, 1)
