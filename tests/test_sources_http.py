"""HTTP sources against a real local HTTP server: headers, params, secrets, size cap, timeout."""

import json

import pytest
from werkzeug import Response

from ingest_assets import stages
from ingest_assets.contract import MissingEnvError, Secrets, parse_config
from ingest_assets.sources.fetch import fetch
from ingest_resources.http import FetchError

CSV = b"id,value\n1,10.5\n2,11\n"


def http_config(url: str, **source) -> object:
    return parse_config(
        {
            "dataset_id": "API_DATA",
            "source": {"kind": "http", "url": url, "format": "csv", **source},
            "normalize": {"primary_keys": ["id"]},
        },
        "api.yaml",
    )


def test_fetch_sends_headers_and_params_with_secrets(httpserver):
    httpserver.expect_request(
        "/data.csv",
        headers={"Authorization": "Bearer s3cret"},
        query_string={"series": "A", "key": "s3cret"},
    ).respond_with_data(
        CSV, headers={"ETag": '"abc"', "Last-Modified": "Sat, 21 Nov 2026 10:00:00 GMT"}
    )
    config = http_config(
        httpserver.url_for("/data.csv"),
        headers={"Authorization": "Bearer ${API_TOKEN}"},
        params={"series": "A", "key": "${API_TOKEN}"},
    )
    fetched = fetch(config, Secrets({"API_TOKEN": "s3cret"}))
    assert fetched.content == CSV
    assert fetched.etag == '"abc"' and fetched.last_modified.startswith("Sat, 21 Nov 2026")
    assert fetched.ext == "csv" and "s3cret" not in fetched.source


def test_raw_stage_records_fingerprints_and_publishes(httpserver, runtime):
    httpserver.expect_request("/data.csv").respond_with_data(CSV, headers={"ETag": '"v1"'})
    config = http_config(httpserver.url_for("/data.csv"))
    info = stages.run_raw(runtime, config, "all")
    assert info.etag == '"v1"' and info.bytes == len(CSV)
    stages.run_parse(runtime, config, "all")
    stages.run_normalize(runtime, config, "all")
    result = stages.run_publish(runtime, config, "all")
    assert result.rows_added == 2
    assert result.manifest.inputs["etag"] == '"v1"'
    assert result.manifest.inputs["source"] == httpserver.url_for("/data.csv")


def test_secret_in_url_is_masked_in_errors(httpserver):
    httpserver.expect_request("/missing").respond_with_data("nope", status=404)
    config = http_config(httpserver.url_for("/missing") + "?token=${API_TOKEN}")
    with pytest.raises(FetchError) as caught:
        fetch(config, Secrets({"API_TOKEN": "s3cret"}))
    message = str(caught.value)
    assert "dataset API_DATA" in message and "HTTP 404" in message and "/missing" in message
    assert "s3cret" not in message and "token=***" in message


def test_missing_environment_variable_is_named(httpserver):
    config = http_config(httpserver.url_for("/x"), headers={"Authorization": "Bearer ${API_TOKEN}"})
    with pytest.raises(
        MissingEnvError, match=r"API_DATA: source.headers.Authorization uses \$\{API_TOKEN\}"
    ):
        fetch(config, Secrets({}))


def test_body_over_max_bytes_is_refused(httpserver):
    httpserver.expect_request("/big.csv").respond_with_data(b"x" * 5000)
    config = http_config(httpserver.url_for("/big.csv"), max_bytes=1000)
    with pytest.raises(FetchError, match=r"5,000 bytes, over source.max_bytes 1,000"):
        fetch(config)


def test_streamed_body_over_max_bytes_is_refused(httpserver):
    def chunked(_request):
        return Response(
            (b"x" * 1000 for _ in range(5)), content_type="text/csv"
        )  # no Content-Length

    httpserver.expect_request("/stream.csv").respond_with_handler(chunked)
    config = http_config(httpserver.url_for("/stream.csv"), max_bytes=2500)
    with pytest.raises(FetchError, match="exceeded source.max_bytes 2,500"):
        fetch(config)


def test_failed_fetch_advances_nothing(httpserver, runtime):
    httpserver.expect_request("/data.csv").respond_with_data(CSV)
    config = http_config(httpserver.url_for("/data.csv"))
    first = stages.run_raw(runtime, config, "all")
    httpserver.clear()
    httpserver.expect_request("/data.csv").respond_with_data("down", status=503)
    fast = http_config(
        httpserver.url_for("/data.csv"), retry={"max_attempts": 2, "backoff_s": 0.01}
    )
    with pytest.raises(FetchError, match="gave up after 2 attempts: HTTP 503"):
        stages.run_raw(runtime, fast, "all")
    assert (
        json.loads(runtime.store.get("datasets/API_DATA/raw/all/latest.json"))["sha256"]
        == first.sha256
    )
