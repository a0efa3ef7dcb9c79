"""`source=warehouse` on a real server: the dataset's PostgreSQL table (127.0.0.1:5432, a fresh
database per test), paginated by keyset on the primary key, filtered in SQL with parameters
only, refused when a newer version was loaded mid-scan; /health checks the warehouse."""

import datetime as dt

import pyarrow as pa
import pytest

from ingest_assets import stages
from ingest_resources.runtime import build_runtime
from tests.api_server import (
    RATES_YAML,
    expected_rates,
    live_server,
    publish,
    scan,
    write_config,
    write_rates,
)

DATA = "/datasets/API_RATES/data"
WAREHOUSE_YAML = RATES_YAML + "publish: {{postgres: {{table: rates, schema: api_test}}}}\n"


@pytest.fixture
def loaded(tmp_path, pg_database):
    write_rates(tmp_path / "rates.csv")
    config = write_config(tmp_path, WAREHOUSE_YAML, tmp_path / "rates.csv", "rates.yaml")
    runtime = build_runtime(tmp_path / "store", warehouse_url=pg_database)
    version = publish(runtime, config)
    stages.run_warehouse(runtime, config)
    return runtime, config, tmp_path / "rates.csv", version


def _keyed(rows):
    return {(r["internal_series_code"], r["obs_time"]): (r["value"], r["note"]) for r in rows}


def test_a_warehouse_scan_returns_every_row_once_in_key_order(loaded):
    runtime, config, source, version = loaded
    with live_server(runtime, [config]) as client:
        rows, pages = scan(client, DATA, source="warehouse", page_size=13)
        assert _keyed(rows) == expected_rates(source)
        assert len(rows) == len({r["key_hash"] for r in rows}) == 3 * 41
        keys = [(r["internal_series_code"], r["obs_time"]) for r in rows]
        assert keys == sorted(keys)
        assert {p["source"] for p in pages} == {"warehouse"}
        assert {p["version"] for p in pages} == {version}  # the ledger's newest
        assert "source" not in pages[0]["columns"]


def test_warehouse_filters_are_parameters(loaded):
    runtime, config, source, version = loaded
    with live_server(runtime, [config]) as client:
        rows, _ = scan(
            client,
            DATA,
            source="warehouse",
            series=["B", "x' OR '1'='1"],
            q="holiday",
            **{"from": "2024-02-01", "to": "2024-03-31"},
        )
        expected = {
            k: v
            for k, v in expected_rates(source).items()
            if k[0] == "B" and "2024-02-01" <= k[1] <= "2024-03-31" and v[1] == "holiday"
        }
        assert _keyed(rows) == expected and len(expected) == 1  # B on 2024-03-01
        hostile = client.get(DATA, params={"source": "warehouse", "q": "%' OR 1=1 --"})
        assert hostile.status_code == 200 and hostile.json()["count"] == 0
        chosen = client.get(
            DATA, params={"source": "warehouse", "columns": "value,obs_time", "page_size": 1}
        ).json()
        assert list(chosen["rows"][0]) == ["value", "obs_time"]
        arrow = client.get(DATA, params={"source": "warehouse", "format": "arrow", "series": "C"})
        table = pa.ipc.open_stream(arrow.content).read_all()
        assert table.num_rows == 41 and table.schema.field("obs_time").type == pa.date32()
        assert table.column("obs_time").to_pylist()[0] == dt.date(2024, 1, 1)


def test_a_warehouse_scan_stops_when_a_newer_version_is_loaded(loaded):
    runtime, config, source, version = loaded
    with live_server(runtime, [config]) as client:
        first = client.get(DATA, params={"source": "warehouse", "page_size": 10}).json()
        write_rates(source, revised=True)
        publish(runtime, config)
        stages.run_warehouse(runtime, config)
        response = client.get(
            DATA, params={"source": "warehouse", "page_size": 10, "cursor": first["next_cursor"]}
        )
        assert response.status_code == 409
        assert "start again, or read source=store" in response.json()["detail"]
        rows, _ = scan(client, DATA, source="warehouse", page_size=100)
        assert _keyed(rows) == expected_rates(source)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"version": "20200101T000000000000Z"}, "latest rows only"),
        ({"columns": "nope"}, "no column 'nope' in the warehouse table"),
    ],
)
def test_warehouse_parameters_it_cannot_honour_are_422(loaded, params, says):
    runtime, config, _, _ = loaded
    with live_server(runtime, [config]) as client:
        response = client.get(DATA, params={"source": "warehouse", **params})
        assert response.status_code == 422 and says in str(response.json()["detail"])


def test_without_a_warehouse_source_warehouse_is_422(tmp_path):
    write_rates(tmp_path / "rates.csv")
    config = write_config(tmp_path, RATES_YAML, tmp_path / "rates.csv", "rates.yaml")
    runtime = build_runtime(tmp_path / "store")
    publish(runtime, config)
    with live_server(runtime, [config]) as client:
        response = client.get(DATA, params={"source": "warehouse"})
        assert response.status_code == 422
        assert "no publish.postgres table" in str(response.json()["detail"])


def test_health_checks_the_warehouse(loaded, tmp_path):
    runtime, config, _, _ = loaded
    with live_server(runtime, [config]) as client:
        checks = client.get("/health").json()["checks"]
        assert checks["warehouse"] == {"ok": True, "detail": "SELECT 1 answered"}
    down = build_runtime(
        tmp_path / "store", warehouse_url="postgresql://postgres@127.0.0.1:1/nowhere"
    )
    with live_server(down, [config]) as client:
        response = client.get("/health")
        assert response.status_code == 503
        assert not response.json()["checks"]["warehouse"]["ok"]
        assert "cannot connect" in response.json()["checks"]["warehouse"]["detail"]
        data = client.get(DATA, params={"source": "warehouse"})
        assert data.status_code == 503 and "the warehouse" in data.json()["detail"]
