"""The read API's platform routes and guards on a real server: /health and /stats from the
store, the manifests and the Dagster instance (real `ingest run`s), the API key, the rate
limit, the verify verdict, and `ingest serve` itself."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ingest_api import ApiSettings
from ingest_assets.cli.main import main
from ingest_resources.runtime import local_runtime
from tests.api_server import RATES_YAML, free_port, live_server, publish, write_config, write_rates

REPO = Path(__file__).resolve().parents[1]
BROKEN_YAML = """\
dataset_id: API_BROKEN
source: {{kind: file, path: {path}, format: csv}}
normalize: {{primary_keys: [id]}}
"""


@pytest.fixture
def rates(tmp_path, monkeypatch):
    """API_RATES published in the test's store (INGEST_STORE_ROOT), its config in a folder
    that INGEST_CONFIG_DIR names."""
    write_rates(tmp_path / "rates.csv")
    folder = tmp_path / "configs"
    config = write_config(folder, RATES_YAML, tmp_path / "rates.csv", "rates.yaml")
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(folder))
    runtime = local_runtime(tmp_path / "store")
    return runtime, config, folder


def test_health_and_stats_from_real_runs(rates, tmp_path):
    runtime, config, folder = rates
    broken = write_config(folder, BROKEN_YAML, tmp_path / "missing.csv", "broken.yaml")
    assert main(["run", "API_RATES"]) == 0
    assert main(["run", "API_BROKEN"]) == 1
    with live_server(runtime, [config, broken]) as client:
        health = client.get("/health")
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["status"] == "ok"
        assert body["checks"]["store"]["ok"] and body["checks"]["dagster"]["ok"]
        assert "warehouse" not in body["checks"]
        assert body["datasets"]["API_RATES"]["last_run_status"] == "SUCCESS"
        assert body["datasets"]["API_BROKEN"]["last_run_status"] == "FAILURE"
        assert body["datasets"]["API_BROKEN"]["version"] is None
        stats = client.get("/stats").json()
        rates_stats = stats["datasets"]["API_RATES"]
        assert (rates_stats["runs"], rates_stats["successes"], rates_stats["failures"]) == (1, 1, 0)
        assert rates_stats["durations"]["count"] == 1 and rates_stats["durations"]["p50_s"] > 0
        assert rates_stats["rows_published"] == 3 * 41 and rates_stats["rows_rejected"] == 1
        assert rates_stats["versions"] == 1 and rates_stats["last_failure"] is None
        failed = stats["datasets"]["API_BROKEN"]
        assert (failed["runs"], failed["failures"], failed["rows_published"]) == (1, 1, 0)
        assert "missing.csv" in failed["last_failure"]["reason"]
        assert failed["last_failure"]["at"].startswith("20")


def test_health_is_503_naming_what_failed(rates, tmp_path):
    runtime, config, _ = rates
    publish(runtime, config)
    (tmp_path / "store/datasets/API_RATES/current/manifest.json").write_text("{not json")
    with live_server(runtime, [config]) as client:
        response = client.get("/health")  # DAGSTER_HOME (the test's own) was never set up
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert not checks["dagster"]["ok"] and "not set up" in checks["dagster"]["detail"]
        assert not checks["store"]["ok"] and "API_RATES" in checks["store"]["detail"]
        data = client.get("/datasets/API_RATES/data")
        assert data.status_code == 503 and "ingest repair API_RATES" in data.json()["detail"]
        stats = client.get("/stats")
        assert stats.status_code == 503  # (the store's error, as JSON)
        assert "detail" in stats.json()


def test_an_api_key_guards_every_route_but_health(rates):
    runtime, config, _ = rates
    publish(runtime, config)
    settings = ApiSettings(api_key="s3cret key", rate=0)
    with live_server(runtime, [config], settings) as client:
        for path in ("/datasets", "/datasets/API_RATES/data", "/stats", "/datasets/NOPE/data"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            assert "X-API-Key" in response.json()["detail"]
        wrong = client.get("/datasets", headers={"Authorization": "Bearer s3cret"})
        assert wrong.status_code == 401
        bearer = client.get("/datasets", headers={"Authorization": "Bearer s3cret key"})
        assert bearer.status_code == 200
        header = client.get("/datasets/API_RATES/data", headers={"X-API-Key": "s3cret key"})
        assert header.status_code == 200 and header.json()["count"] == 100
        assert client.get("/health").status_code in (200, 503)  # no key needed
        assert client.get("/openapi.json").status_code == 200
    with live_server(runtime, [config]) as open_client:
        assert open_client.get("/datasets").status_code == 200


def test_the_rate_limit_answers_429_with_retry_after(rates):
    runtime, config, _ = rates
    with live_server(runtime, [config], ApiSettings(rate=0.5, burst=2)) as client:
        statuses = [client.get("/datasets").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = client.get("/datasets")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "too many requests" in limited.json()["detail"]


def test_the_verify_verdict_of_the_current_version(rates, tmp_path):
    runtime, config, _ = rates
    publish(runtime, config)

    def verdict(client: httpx.Client) -> dict:
        deadline = time.monotonic() + 30
        while True:
            found = client.get("/datasets").json()["datasets"][0]["verify"]
            if found["state"] != "pending" or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    with live_server(runtime, [config]) as client:
        found = verdict(client)
        assert (found["state"], found["mode"]) == ("ok", "chain") and found["checked_at"]
    event = next((tmp_path / "store/datasets/API_RATES/events").rglob("*.parquet"))
    data = bytearray(event.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte: same size, another sha256
    event.write_bytes(bytes(data))
    with live_server(runtime, [config]) as client:
        found = verdict(client)
        assert found["state"] == "problems" and "sha256" in found["problems"][0]


def test_ingest_serve_serves(rates, tmp_path):
    runtime, config, folder = rates
    publish(runtime, config)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "INGEST_API_VERIFY": "off"}
    command = [sys.executable, "-m", "ingest_assets.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/datasets/API_RATES/versions")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "ingest serve did not answer"
                time.sleep(0.2)
        assert response.status_code == 200
        assert len(response.json()["versions"]) == 1
    finally:
        process.terminate()
        process.wait(timeout=30)
