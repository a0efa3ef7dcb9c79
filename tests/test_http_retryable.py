"""Which failures of the HTTP client a later run may fix (`FetchError.retryable`), against a
real server on 127.0.0.1: retries that ran out on 5xx, 429, timeouts or refused connections, an
open circuit, a Retry-After too long to wait and a passed deadline are retryable; a 4xx, a
refused redirect, a header HTTP cannot carry and a body over a cap or not what it claims to be
are not."""

import gzip
import socket
import time

import pytest
from werkzeug import Response

from ingest_resources.http import CircuitBreaker, FetchError, HttpClient, RetryPolicy

pytestmark = pytest.mark.timeout(30)

CSV = b"id,value\n1,10\n"
FAST = RetryPolicy(max_attempts=2, backoff_s=0.01, max_backoff_s=0.02)


def client(**options) -> HttpClient:
    defaults = {"timeout_s": 2.0, "max_bytes": 10_000, "retry": FAST, "breaker": CircuitBreaker()}
    return HttpClient(**{**defaults, **options})


def requests_to(server, path: str) -> int:
    """Requests the server got for `path` (a slow handler of an earlier test may log late)."""
    return sum(request.path == path for request, _ in server.log)


def failure(http: HttpClient, url: str, headers: dict[str, str] | None = None) -> FetchError:
    with pytest.raises(FetchError) as caught:
        http.get(url, headers=headers or {}, params={}, label=f"dataset API: GET {url}")
    return caught.value


# --- a later run may succeed ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retries_that_ran_out_on_a_server_error_or_429_are_retryable(httpserver, status):
    httpserver.expect_request("/data.csv").respond_with_data("busy", status=status)
    error = failure(client(), httpserver.url_for("/data.csv"))
    assert "gave up after 2 attempts" in str(error) and error.retryable
    assert requests_to(httpserver, "/data.csv") == 2


def test_retries_that_ran_out_on_timeouts_are_retryable(httpserver):
    def slow(_request):
        time.sleep(0.5)
        return Response(CSV)

    httpserver.expect_request("/slow.csv").respond_with_handler(slow)
    error = failure(client(timeout_s=0.1), httpserver.url_for("/slow.csv"))
    assert "timed out after source.timeout_s=0.1s" in str(error) and error.retryable


def test_retries_that_ran_out_on_a_refused_connection_are_retryable():
    with socket.socket() as unused:  # a port nothing listens on once it is closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    error = failure(client(), f"http://127.0.0.1:{port}/data.csv")
    assert "gave up after 2 attempts: ConnectError" in str(error) and error.retryable


def test_an_open_circuit_is_retryable(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data("down", status=503)
    http = client(retry=RetryPolicy(max_attempts=1), breaker=CircuitBreaker(failures=1))
    url = httpserver.url_for("/data.csv")
    assert failure(http, url).retryable  # the failure that opens the circuit
    error = failure(http, url)
    assert "circuit open for" in str(error) and error.retryable
    assert requests_to(httpserver, "/data.csv") == 1  # the open circuit did not call it


def test_a_retry_after_over_the_allowed_wait_is_retryable(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        "later", status=503, headers={"Retry-After": "400"}
    )
    error = failure(client(), httpserver.url_for("/data.csv"))
    assert "over source.retry.max_retry_after_s 300s" in str(error) and error.retryable


def test_a_retry_after_past_the_deadline_is_retryable(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        "later", status=503, headers={"Retry-After": "30"}
    )
    error = failure(client(deadline_s=5), httpserver.url_for("/data.csv"))
    assert "the server asks to wait 30.0s, more than the" in str(error) and error.retryable


def test_a_passed_deadline_is_retryable(httpserver):
    def slow(_request):
        time.sleep(1.0)
        return Response(CSV)

    httpserver.expect_request("/slow.csv").respond_with_handler(slow)
    error = failure(client(timeout_s=5, deadline_s=0.3), httpserver.url_for("/slow.csv"))
    assert "not done within source.deadline_s=0.3s" in str(error) and error.retryable


# --- nothing changes until someone acts -----------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_a_client_error_is_not_retryable(httpserver, status):
    httpserver.expect_request("/data.csv").respond_with_data("no", status=status)
    error = failure(client(), httpserver.url_for("/data.csv"))
    assert f"HTTP {status}" in str(error) and not error.retryable
    assert requests_to(httpserver, "/data.csv") == 1


def test_a_redirect_refused_by_follow_redirects_never_is_not_retryable(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        "", status=302, headers={"Location": "/elsewhere.csv"}
    )
    error = failure(client(follow_redirects="never"), httpserver.url_for("/data.csv"))
    assert "source.follow_redirects is never" in str(error) and not error.retryable


def test_a_redirect_to_another_scheme_is_not_retryable(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        "", status=301, headers={"Location": "ftp://example.com/data.csv"}
    )
    error = failure(client(), httpserver.url_for("/data.csv"))
    assert "only http and https are followed" in str(error) and not error.retryable


def test_endless_redirects_are_not_retryable(httpserver):
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    error = failure(client(), httpserver.url_for("/loop"))
    assert "more than 10 redirects" in str(error) and not error.retryable


def test_a_redirect_taking_a_secret_to_another_origin_is_not_retryable(httpserver):
    """localhost and 127.0.0.1 are two origins: the secret in the next URL would leave."""
    here = httpserver.url_for("/data.csv")
    other = "127.0.0.1" if "//localhost:" in here else "localhost"
    elsewhere = f"http://{other}:{httpserver.port}/data.csv?key=s3cret"
    httpserver.expect_request("/data.csv").respond_with_data(
        "", status=302, headers={"Location": elsewhere}
    )
    http = client(mask=lambda text: text.replace("s3cret", "***"))
    error = failure(http, here)
    assert "its URL holds a secret; refused" in str(error) and not error.retryable
    assert "s3cret" not in str(error)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Api-Key": "k3y\n"}, "cannot be sent"),
        ({"X Api Key": "k3y"}, "is not an HTTP token"),
    ],
)
def test_a_header_http_cannot_carry_is_not_retryable(httpserver, headers, expected):
    error = failure(client(), httpserver.url_for("/data.csv"), headers)
    assert expected in str(error) and not error.retryable
    assert requests_to(httpserver, "/data.csv") == 0  # nothing was sent


def test_a_declared_size_over_max_bytes_is_not_retryable(httpserver):
    httpserver.expect_request("/big.csv").respond_with_data(b"x" * 2000)
    error = failure(client(max_bytes=1000), httpserver.url_for("/big.csv"))
    assert "over source.max_bytes 1,000" in str(error) and not error.retryable


def test_a_streamed_body_over_max_bytes_is_not_retryable(httpserver):
    httpserver.expect_request("/big.csv").respond_with_response(
        Response(iter([b"x" * 500] * 4))  # chunked: no Content-Length to refuse it by
    )
    error = failure(client(max_bytes=1000), httpserver.url_for("/big.csv"))
    assert "exceeded source.max_bytes 1,000 bytes" in str(error) and not error.retryable


def test_a_body_that_inflates_past_the_limit_is_not_retryable(httpserver):
    bomb = gzip.compress(b"\x00" * 1_000_000)
    httpserver.expect_request("/bomb.csv").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}
    )
    error = failure(client(max_inflated_bytes=100_000), httpserver.url_for("/bomb.csv"))
    assert "likely decompression bomb" in str(error) and not error.retryable


def test_a_body_that_is_not_what_its_encoding_says_is_not_retryable(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    error = failure(client(), httpserver.url_for("/data.csv"))
    assert "the body is not valid gzip" in str(error) and not error.retryable


def test_an_encoding_the_client_cannot_inflate_is_not_retryable(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        b"\x28\xb5\x2f\xfd", headers={"Content-Encoding": "zstd"}
    )
    error = failure(client(), httpserver.url_for("/data.csv"))
    assert "zstd-encoded" in str(error) and not error.retryable


def test_a_url_httpx_cannot_parse_is_not_retryable():
    error = failure(client(), "http://[::1")
    assert "not a URL" in str(error) and not error.retryable
