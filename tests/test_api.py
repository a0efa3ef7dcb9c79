"""The read API on a real server (uvicorn on 127.0.0.1) over datasets published in a temp store
through the stages: every data endpoint, pagination exactly once (across a publish too),
filters, time travel, bulk formats, 404 and 422. Expected rows come from the CSV files (the
csv module), not from our code."""

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_resources.runtime import local_runtime
from tests.api_server import (
    CATALOG_YAML,
    RATES_YAML,
    expected_rates,
    live_server,
    publish,
    scan,
    write_catalog,
    write_config,
    write_rates,
)

DATA = "/datasets/API_RATES/data"


@pytest.fixture(scope="module")
def rates(tmp_path_factory):
    """API_RATES published once (version 1), then revised (version 2); API_CATALOG once."""
    root = tmp_path_factory.mktemp("api")
    runtime = local_runtime(root / "store")
    first, second = root / "rates_v1.csv", root / "rates_v2.csv"
    write_rates(first)
    write_rates(second, revised=True)
    config = write_config(root / "configs", RATES_YAML, root / "rates.csv", "rates.yaml")
    (root / "rates.csv").write_bytes(first.read_bytes())
    v1 = publish(runtime, config)
    (root / "rates.csv").write_bytes(second.read_bytes())
    v2 = publish(runtime, config)
    write_catalog(root / "catalog.csv")
    catalog = write_config(root / "configs", CATALOG_YAML, root / "catalog.csv", "catalog.yaml")
    publish(runtime, catalog)
    with live_server(runtime, [config, catalog]) as client:
        yield {
            "client": client,
            "v1": v1,
            "v2": v2,
            "expected_v1": expected_rates(first),
            "expected_v2": expected_rates(second),
        }


def _keyed(rows):
    return {(r["internal_series_code"], r["obs_time"]): (r["value"], r["note"]) for r in rows}


def test_datasets_lists_each_with_its_state(rates):
    body = rates["client"].get("/datasets").json()
    by_id = {d["dataset_id"]: d for d in body["datasets"]}
    assert set(by_id) == {"API_RATES", "API_CATALOG"}
    found = by_id["API_RATES"]
    assert found["version"] == rates["v2"]
    assert found["rows"] == len(rates["expected_v2"]) == 3 * 51
    assert found["high_water_marks"] == {
        "A": "2024-05-30",
        "B": "2024-05-30",
        "C": "2024-05-30",
    }
    assert found["primary_keys"] == ["internal_series_code", "obs_time"]
    assert found["verify"]["state"] in ("pending", "ok")
    assert found["last_published"]


def test_a_full_scan_returns_every_row_once(rates):
    rows, pages = scan(rates["client"], DATA, page_size=7)
    assert len(rows) == len(rates["expected_v2"])
    assert _keyed(rows) == rates["expected_v2"]
    assert len({r["key_hash"] for r in rows}) == len(rows)
    assert [p["count"] for p in pages[:-1]] == [7] * (len(pages) - 1)
    assert {p["version"] for p in pages} == {rates["v2"]}
    assert pages[-1]["next_cursor"] is None and 0 < pages[-1]["count"] <= 7
    # the order: time, then key_hash (within a month, as the event files are)
    order = [(r["obs_time"], r["key_hash"]) for r in rows]
    assert order == sorted(order)


def test_the_default_page_is_100_rows(rates):
    body = rates["client"].get(DATA).json()
    assert body["count"] == 100 and body["next_cursor"]
    assert body["columns"][:4] == ["internal_series_code", "obs_time", "value", "note"]


def test_time_travel_reads_an_older_version(rates):
    rows, pages = scan(rates["client"], DATA, version=rates["v1"], page_size=50)
    assert _keyed(rows) == rates["expected_v1"]
    assert {p["version"] for p in pages} == {rates["v1"]}


def test_filters_series_from_to(rates):
    rows, _ = scan(
        rates["client"], DATA, series=["A", "C"], **{"from": "2024-02-01", "to": "2024-02-29"}
    )
    expected = {
        k: v
        for k, v in rates["expected_v2"].items()
        if k[0] in ("A", "C") and "2024-02-01" <= k[1] <= "2024-02-29"
    }
    assert _keyed(rows) == expected and len(expected) == 18  # Feb 3, 6, ..., 27
    assert {r["value"] for r in rows if r["internal_series_code"] == "A"} == {
        v for (s, _), (v, _) in expected.items() if s == "A"
    }


def test_from_and_to_take_times_too(rates):
    rows, _ = scan(
        rates["client"], DATA, series="B", **{"from": "2024-01-04T00:00:00Z", "to": "2024-01-07"}
    )
    assert sorted(r["obs_time"] for r in rows) == ["2024-01-04", "2024-01-07"]


def test_text_search_over_string_columns(rates):
    rows, _ = scan(rates["client"], DATA, q="ñANDÚ")
    expected = {k: v for k, v in rates["expected_v2"].items() if v[1] == "Ñandú"}
    assert _keyed(rows) == expected and expected


def test_columns_chooses_and_orders_columns(rates):
    body = rates["client"].get(DATA, params={"columns": "value,obs_time", "page_size": 2}).json()
    assert body["columns"] == ["value", "obs_time"]
    assert [list(r) for r in body["rows"]] == [["value", "obs_time"]] * 2
    again = rates["client"].get(DATA, params=[("columns", "key_hash"), ("page_size", 1)]).json()
    assert len(again["rows"][0]["key_hash"]) == 40


def test_a_cursor_keeps_its_version_and_may_change_columns(rates):
    client = rates["client"]
    first = client.get(DATA, params={"version": rates["v1"], "page_size": 5}).json()
    second = client.get(
        DATA, params={"cursor": first["next_cursor"], "page_size": 5, "columns": "value"}
    ).json()
    assert second["version"] == rates["v1"] and second["columns"] == ["value"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_bulk_formats_stream_every_row(rates, fmt):
    response = rates["client"].get(DATA, params={"format": fmt, "series": "A"})
    assert response.status_code == 200
    assert response.headers["x-ingest-version"] == rates["v2"]
    if fmt == "csv":
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        values = {(r["internal_series_code"], r["obs_time"]): float(r["value"]) for r in rows}
    else:
        table = (
            pq.read_table(pa.BufferReader(response.content))
            if fmt == "parquet"
            else pa.ipc.open_stream(response.content).read_all()
        )
        values = {
            (r["internal_series_code"], r["obs_time"].isoformat()): r["value"]
            for r in table.to_pylist()
        }
    assert values == {k: v[0] for k, v in rates["expected_v2"].items() if k[0] == "A"}


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_hashes_binary_sends_the_same_hashes_as_their_20_bytes(rates, fmt):
    client = rates["client"]
    spelled = client.get(DATA, params={"format": "csv"})
    as_hex = {
        (r["internal_series_code"], r["obs_time"]): (r["key_hash"], r["row_hash"])
        for r in csv.DictReader(io.StringIO(spelled.text))
    }
    response = client.get(DATA, params={"format": fmt, "hashes": "binary"})
    assert response.status_code == 200
    body = pa.BufferReader(response.content)
    table = pq.read_table(body) if fmt == "parquet" else pa.ipc.open_stream(body).read_all()
    assert table.schema.field("key_hash").type in (pa.binary(20), pa.binary())
    as_bytes = {
        (r["internal_series_code"], r["obs_time"].isoformat()): (r["key_hash"], r["row_hash"])
        for r in table.to_pylist()
    }
    assert len(as_bytes) == len(as_hex) == 3 * 51
    for key, (key_hash, row_hash) in as_bytes.items():
        assert len(key_hash) == len(row_hash) == 20
        assert (key_hash.hex(), row_hash.hex()) == as_hex[key]


def test_a_bulk_page_gives_its_next_cursor_in_a_header(rates):
    client = rates["client"]
    first = client.get(DATA, params={"format": "arrow", "page_size": 100})
    assert pa.ipc.open_stream(first.content).read_all().num_rows == 100
    rest = client.get(DATA, params={"format": "arrow", "cursor": first.headers["x-next-cursor"]})
    assert pa.ipc.open_stream(rest.content).read_all().num_rows == 3 * 51 - 100


def test_rows_that_moved_month_are_returned_once(rates, tmp_path):
    """API_CATALOG's key does not hold its time column: items 1-5 move to March in version 2;
    each is returned once, with its March row, in version 2, and in January/February in 1."""
    runtime = local_runtime(tmp_path / "store")
    write_catalog(tmp_path / "catalog.csv")
    config = write_config(tmp_path, CATALOG_YAML, tmp_path / "catalog.csv", "catalog.yaml")
    v1 = publish(runtime, config)
    write_catalog(tmp_path / "catalog.csv", moved=True)
    publish(runtime, config)
    with live_server(runtime, [config]) as client:
        rows, _ = scan(client, "/datasets/API_CATALOG/data", page_size=4)
        old, _ = scan(client, "/datasets/API_CATALOG/data", page_size=4, version=v1)
    with (tmp_path / "catalog.csv").open() as source:
        expected = {int(r["id"]): r["updated"] for r in csv.DictReader(source)}
    assert {r["id"]: r["updated"] for r in rows} == expected and len(rows) == 35
    assert len(old) == 30 and all(r["updated"] < "2024-03" for r in old)


def test_a_scan_across_a_publish_returns_its_version_exactly(tmp_path):
    """Half a scan, a new version (revised and added rows) published through the stages, the
    rest of the scan: exactly the rows of the version the scan began on, each once."""
    runtime = local_runtime(tmp_path / "store")
    source = tmp_path / "rates.csv"
    write_rates(source)
    expected_v1 = expected_rates(source)
    config = write_config(tmp_path / "configs", RATES_YAML, source, "rates.yaml")
    v1 = publish(runtime, config)
    with live_server(runtime, [config]) as client:
        rows, cursor = [], None
        for _ in range(5):
            params = {"page_size": 11, **({"cursor": cursor} if cursor else {})}
            body = client.get(DATA, params=params).json()
            rows += body["rows"]
            cursor = body["next_cursor"]
        write_rates(source, revised=True)
        v2 = publish(runtime, config)
        assert v2 != v1
        while cursor:
            body = client.get(DATA, params={"page_size": 11, "cursor": cursor}).json()
            assert body["version"] == v1
            rows += body["rows"]
            cursor = body["next_cursor"]
        assert _keyed(rows) == expected_v1 and len(rows) == len(expected_v1)
        fresh, _ = scan(client, DATA, page_size=200)
        assert _keyed(fresh) == expected_rates(source)


def test_versions_and_a_versions_manifest(rates):
    client = rates["client"]
    body = client.get("/datasets/API_RATES/versions").json()
    assert body["current"] == rates["v2"]
    assert [v["version"] for v in body["versions"]] == [rates["v2"], rates["v1"]]
    newest = body["versions"][0]
    assert newest["parent_version"] == rates["v1"]
    assert newest["counts"]["added"] == 3 * 10 and newest["counts"]["revised"] == 9  # A in February
    assert newest["rows_total"] == 3 * 51 and newest["files"] == 2  # February and May
    one = client.get(f"/datasets/API_RATES/versions/{rates['v1']}").json()
    assert one["current"] is False and one["manifest"]["version"] == rates["v1"]
    assert one["manifest"]["counts"]["rejected"] == 1
    assert set(one["manifest"]) >= {"files", "inputs", "checks", "high_water_marks", "schema"}


def test_quarantine_lists_rejected_rows_with_reasons(rates):
    body = rates["client"].get("/datasets/API_RATES/quarantine", params={"page_size": 1}).json()
    assert body["count"] == 1 and body["next_cursor"] is None
    row = body["rows"][0]
    assert row["reason_code"] == "type_error" and "obs_time" in row["reason"]
    assert row["partition"] == "all"


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/datasets/NOPE/data", {}, 404, "no dataset 'NOPE'"),
        ("/datasets/NOPE/versions", {}, 404, "no dataset"),
        (DATA, {"version": "20200101T000000000000Z"}, 404, "no published version"),
        ("/datasets/API_RATES/versions/20200101T000000000000Z", {}, 404, "no published"),
        (DATA, {"version": "../../etc/passwd"}, 422, "expected a version"),
        (DATA, {"page_size": 0}, 422, "page_size"),
        (DATA, {"page_size": 1001}, 422, "at most 1000 rows a JSON page"),
        (DATA, {"page_size": "ten"}, 422, "page_size"),
        (DATA, {"from": "yesterday"}, 422, "expected an ISO 8601 date"),
        (DATA, {"from": "2024-03-01", "to": "2024-02-01"}, 422, "is after"),
        (DATA, {"columns": "value,nope"}, 422, "no column 'nope'"),
        (DATA, {"format": "xml"}, 422, "format"),
        (DATA, {"hashes": "binary"}, 422, "only with format=parquet or arrow"),
        (DATA, {"hashes": "base64", "format": "arrow"}, 422, "hashes"),
        (DATA, {"cursor": "not-a-cursor"}, 422, "not a cursor of this server"),
        ("/nowhere", {}, 404, "Not Found"),
    ],
)
def test_errors_are_json_with_their_status(rates, path, params, status, says):
    response = rates["client"].get(path, params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert says in str(response.json()["detail"])


def test_a_forged_or_reused_cursor_is_refused(rates):
    client = rates["client"]
    cursor = client.get(DATA, params={"page_size": 3}).json()["next_cursor"]
    body, mac = cursor.split(".")
    import base64
    import json

    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["o"] = 0
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    response = client.get(DATA, params={"cursor": f"{forged}.{mac}"})
    assert response.status_code == 422 and "signature" in str(response.json()["detail"])
    other = client.get(DATA, params={"cursor": cursor, "series": "A"})
    assert other.status_code == 422 and "other filters" in str(other.json()["detail"])
    pinned = client.get(DATA, params={"cursor": cursor, "version": rates["v1"]})
    assert pinned.status_code == 422 and "pinned" in str(pinned.json()["detail"])


def test_nothing_published_is_a_404(tmp_path):
    runtime = local_runtime(tmp_path / "store")
    write_rates(tmp_path / "rates.csv")
    config = write_config(tmp_path, RATES_YAML, tmp_path / "rates.csv", "rates.yaml")
    with live_server(runtime, [config]) as client:
        response = client.get(DATA)
        assert response.status_code == 404 and "nothing published" in response.json()["detail"]
        listed = client.get("/datasets").json()["datasets"][0]
        assert listed["version"] is None and listed["verify"]["state"] == "nothing published"


def test_the_openapi_document_and_swagger_ui(rates):
    client = rates["client"]
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) >= {
        "/datasets",
        "/datasets/{dataset_id}/data",
        "/datasets/{dataset_id}/versions",
        "/datasets/{dataset_id}/versions/{version}",
        "/datasets/{dataset_id}/quarantine",
        "/health",
        "/stats",
    }
    assert "swagger-ui" in client.get("/docs").text


def test_the_data_path_loads_no_dagster(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import ingest_api.app, ingest_api.routers.data\n"
        "print(sorted(m for m in sys.modules if m.startswith('dagster')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
