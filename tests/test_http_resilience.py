"""HTTP resilience against a real local server that injects failures: retries with backoff and
Retry-After, no retry on auth/not-found, resets, timeouts, pagination, the circuit breaker."""

import datetime as dt
import email.utils
import json
import socket
import threading
import time

import pytest
from werkzeug import Request, Response

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_assets.sources.fetch import fetch
from ingest_resources.http import (
    CircuitBreaker,
    FetchError,
    HttpClient,
    RetryPolicy,
    retry_after_seconds,
)

CSV = b"id,value\n1,10\n"
FAST = {"max_attempts": 5, "backoff_s": 0.01, "max_backoff_s": 0.05}


def config_for(url: str, **source):
    return parse_config(
        {
            "dataset_id": "API",
            "source": {"kind": "http", "url": url, "format": "csv", "retry": FAST, **source},
            "normalize": {"primary_keys": ["id"]},
        },
        "api.yaml",
    )


class Script:
    """Responses served in order, one per request; records when each request arrived."""

    def __init__(self, *responses: Response):
        self.responses = list(responses)
        self.times: list[float] = []

    def __call__(self, _request: Request) -> Response:
        self.times.append(time.monotonic())
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


def test_429_with_retry_after_seconds_then_success(httpserver):
    script = Script(Response("slow down", status=429, headers={"Retry-After": "1"}), Response(CSV))
    httpserver.expect_request("/data.csv").respond_with_handler(script)
    fetched = fetch(config_for(httpserver.url_for("/data.csv")))
    assert fetched.content == CSV and len(script.times) == 2
    assert script.times[1] - script.times[0] >= 0.95  # the server's Retry-After, not our backoff


def test_retry_after_as_an_http_date():
    now = dt.datetime(2026, 11, 22, 10, 0, 0, tzinfo=dt.UTC)
    later = email.utils.format_datetime(now + dt.timedelta(seconds=42), usegmt=True)
    assert retry_after_seconds(later, now) == 42
    assert retry_after_seconds("7") == 7 and retry_after_seconds("soon") is None


def test_503_three_times_then_success(httpserver):
    script = Script(*[Response("busy", status=503)] * 3, Response(CSV))
    httpserver.expect_request("/data.csv").respond_with_handler(script)
    assert fetch(config_for(httpserver.url_for("/data.csv"))).content == CSV
    assert len(script.times) == 4


def test_401_is_not_retried_and_says_why(httpserver):
    script = Script(Response("no", status=401))
    httpserver.expect_request("/data.csv").respond_with_handler(script)
    config = config_for(httpserver.url_for("/data.csv") + "?key=${API_KEY}")
    from ingest_assets.contract import Secrets

    with pytest.raises(FetchError) as caught:
        fetch(config, Secrets({"API_KEY": "hunter2"}))
    message = str(caught.value)
    assert len(script.times) == 1
    assert "dataset API: GET http://" in message and "HTTP 401 UNAUTHORIZED (not retried" in message
    assert "hunter2" not in message and "key=***" in message


def test_giving_up_names_the_last_error(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data("down", status=502)
    with pytest.raises(FetchError, match=r"gave up after 5 attempts: HTTP 502 BAD GATEWAY"):
        fetch(config_for(httpserver.url_for("/data.csv")))


def test_a_retry_after_longer_than_allowed_fails_at_once(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        "later", status=429, headers={"Retry-After": "3600"}
    )
    with pytest.raises(
        FetchError, match="asks to wait 3600s, over source.retry.max_retry_after_s 300s"
    ):
        fetch(config_for(httpserver.url_for("/data.csv")))


@pytest.fixture
def flaky_socket_server():
    """A raw TCP server: the first connection is reset mid-response, the next one is served."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    served = []

    def serve() -> None:
        for attempt in range(2):
            connection, _ = server.accept()
            connection.recv(65536)
            served.append(attempt)
            if attempt == 0:
                connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                connection.close()  # RST: connection reset by peer
            else:
                body = CSV
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(body), body)
                )
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/data.csv", served
    thread.join(5)
    server.close()


def test_a_connection_reset_is_retried(flaky_socket_server):
    url, served = flaky_socket_server
    assert fetch(config_for(url)).content == CSV
    assert served == [0, 1]


def test_a_slow_response_past_the_timeout(httpserver):
    def slow(_request):
        time.sleep(0.6)
        return Response(CSV)

    httpserver.expect_request("/slow.csv").respond_with_handler(slow)
    config = config_for(
        httpserver.url_for("/slow.csv"), timeout_s=0.2, retry={"max_attempts": 2, "backoff_s": 0.01}
    )
    started = time.monotonic()
    with pytest.raises(
        FetchError, match=r"gave up after 2 attempts: timed out after source.timeout_s=0.2s"
    ):
        fetch(config)
    assert time.monotonic() - started < 3


def test_the_breaker_opens_then_half_opens():
    clock = [0.0]
    breaker = CircuitBreaker(failures=3, cooldown_s=10, clock=lambda: clock[0])
    calls = []

    def failing_get(*_args, **_kwargs):
        calls.append(clock[0])
        raise __import__("httpx").ConnectError("refused")

    client = HttpClient(1, 1000, RetryPolicy(max_attempts=1), breaker, sleep=lambda _s: None)
    client._once = lambda *a, **k: (_ for _ in ()).throw(
        __import__("ingest_resources.http.client", fromlist=["_Retryable"])._Retryable(
            "ConnectError"
        )
    )
    for _ in range(3):
        with pytest.raises(FetchError, match="gave up after 1 attempts"):
            client.get(
                "http://api.example/x",
                headers={},
                params={},
                label="dataset API: GET http://api.example/x",
            )
    assert breaker.is_open("api.example")
    with pytest.raises(
        FetchError,
        match=r"circuit open for api.example after 3 failures in a row; not calling it again for 10s",
    ):
        client.get(
            "http://api.example/x",
            headers={},
            params={},
            label="dataset API: GET http://api.example/x",
        )
    clock[0] = 11  # the cool-down passed: one trial goes through, fails, and re-opens the circuit
    with pytest.raises(FetchError, match="gave up after 1 attempts"):
        client.get("http://api.example/x", headers={}, params={}, label="x")
    assert breaker.is_open("api.example")
    clock[0] = 22
    client._once = lambda *a, **k: __import__(
        "ingest_resources.http", fromlist=["Download"]
    ).Download(b"ok", None, None, None)
    assert client.get("http://api.example/x", headers={}, params={}, label="x").content == b"ok"
    assert not breaker.is_open("api.example")  # the trial succeeded: closed again


def test_the_breaker_stops_hammering_a_dead_host(httpserver):
    script = Script(Response("down", status=503))
    httpserver.expect_request("/data.csv").respond_with_handler(script)
    config = config_for(
        httpserver.url_for("/data.csv"),
        retry={"max_attempts": 2, "backoff_s": 0.01},
        breaker={"failures": 4, "cooldown_s": 60},
    )
    for _ in range(2):
        with pytest.raises(FetchError, match="gave up after 2 attempts"):
            fetch(config)
    with pytest.raises(FetchError, match="circuit open"):
        fetch(config)  # a third partition's run: refused without a request
    assert len(script.times) == 4


# --- pagination -------------------------------------------------------------------------------------


def _records(start: int, count: int) -> list[dict]:
    return [{"id": i, "value": i * 1.5} for i in range(start, start + count)]


def json_config(url: str, pagination: dict, records_path: str = "results"):
    return parse_config(
        {
            "dataset_id": "PAGED",
            "source": {
                "kind": "http",
                "url": url,
                "format": "json",
                "records_path": records_path,
                "pagination": pagination,
                "retry": FAST,
            },
            "normalize": {"primary_keys": ["id"]},
        },
        "paged.yaml",
    )


def run_to_normalized(runtime, config):
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    return stages.run_normalize(runtime, config, "all").table


def test_next_link_in_the_body(httpserver, runtime):
    base = httpserver.url_for("/people")
    # specific queries first: a handler with no query string matches any query
    httpserver.expect_request("/people", query_string="page=2").respond_with_json(
        {"results": _records(3, 3), "next": base + "?page=3"}
    )
    httpserver.expect_request("/people", query_string="page=3").respond_with_json(
        {"results": _records(6, 2), "next": None}
    )
    httpserver.expect_request("/people").respond_with_json(
        {"results": _records(0, 3), "next": base + "?page=2"}
    )
    table = run_to_normalized(
        runtime, json_config(base, {"kind": "next_link", "next_path": "next"})
    )
    assert sorted(table.column("id").to_pylist()) == list(range(8))


def test_next_link_in_the_link_header(httpserver, runtime):
    base = httpserver.url_for("/items")
    httpserver.expect_request("/items", query_string="cursor=b").respond_with_json(_records(2, 1))
    httpserver.expect_request("/items").respond_with_json(
        _records(0, 2), headers={"Link": f'<{base}?cursor=b>; rel="next"'}
    )
    table = run_to_normalized(runtime, json_config(base, {"kind": "next_link"}, records_path=None))
    assert sorted(table.column("id").to_pylist()) == [0, 1, 2]


def test_page_numbers_until_an_empty_page(httpserver, runtime):
    for page, records in ((1, _records(0, 2)), (2, _records(2, 2)), (3, [])):
        httpserver.expect_request("/p", query_string=f"page={page}").respond_with_json(
            {"results": records}
        )
    table = run_to_normalized(runtime, json_config(httpserver.url_for("/p"), {"kind": "page"}))
    assert sorted(table.column("id").to_pylist()) == [0, 1, 2, 3]


def test_offset_and_limit_until_a_short_page(httpserver, runtime):
    for offset, records in ((0, _records(0, 2)), (2, _records(2, 2)), (4, _records(4, 1))):
        httpserver.expect_request("/o", query_string=f"offset={offset}&limit=2").respond_with_json(
            {"results": records}
        )
    table = run_to_normalized(
        runtime, json_config(httpserver.url_for("/o"), {"kind": "offset", "limit": 2})
    )
    assert sorted(table.column("id").to_pylist()) == [0, 1, 2, 3, 4]


def test_more_pages_than_the_cap_is_an_error_not_a_truncation(httpserver):
    for page in range(1, 5):
        httpserver.expect_request("/p", query_string=f"page={page}").respond_with_json(
            {"results": _records(page, 1)}
        )
    config = json_config(httpserver.url_for("/p"), {"kind": "page", "max_pages": 3})
    with pytest.raises(FetchError, match="more than source.pagination.max_pages=3 pages"):
        fetch(config)


def test_pages_are_kept_in_the_raw_object(httpserver, runtime):
    httpserver.expect_request("/p", query_string="page=1").respond_with_json(
        {"results": _records(0, 1)}
    )
    httpserver.expect_request("/p", query_string="page=2").respond_with_json({"results": []})
    info = stages.run_raw(runtime, json_config(httpserver.url_for("/p"), {"kind": "page"}), "all")
    assert json.loads(runtime.store.get(info.key)) == {
        "pages": [{"results": _records(0, 1)}, {"results": []}]
    }
