"""Hostile HTTP servers and source paths (issue 16), against real servers on 127.0.0.1:
redirects that would take a key to another origin, a header value with a line break, a server
dripping a byte a second, gzip bombs and corrupt bodies, and file sources outside
INGEST_SOURCE_ROOTS. The attacks that could exhaust the machine run in a child process under an
address-space and a time limit (tests/bounded.py); the others are bounded by pytest-timeout."""

import gzip
import json
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingest_assets.contract import Secrets, parse_config
from ingest_assets.sources.fetch import fetch
from ingest_assets.sources.probe import probe
from ingest_resources.http import FetchError
from tests.bounded import python_bounded

CSV = b"id,value\n1,10\n"
KEY = "k3y-s3cret"
FAST = {"max_attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.05}

pytestmark = pytest.mark.timeout(30)


def config_for(source: dict, dataset_id: str = "HOSTILE"):
    return parse_config(
        {
            "dataset_id": dataset_id,
            "source": {"kind": "http", "format": "csv", "retry": FAST, **source},
            "normalize": {"primary_keys": ["id"]},
        },
        "hostile.yaml",
    )


@pytest.fixture
def other_origin() -> Iterator[HTTPServer]:
    """A second server: another port on 127.0.0.1 is another origin (scheme, host, port)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def received(server: HTTPServer, header: str) -> list[str | None]:
    """The value of `header` in each request the server got, in order."""
    return [request.headers.get(header) for request, _ in server.log]


def keyed(url: str, **source) -> dict:
    return {"url": url, "headers": {"X-Api-Key": "${API_KEY}"}, **source}


# --- redirects ----------------------------------------------------------------------------------


def test_a_redirect_to_another_origin_goes_without_the_headers_and_credentials(
    httpserver, other_origin
):
    """The CDN case: the download works, and neither the key header nor the URL's
    user:password reach the CDN."""
    httpserver.expect_request("/data.csv").respond_with_data(
        "", status=302, headers={"Location": other_origin.url_for("/cdn/data.csv")}
    )
    other_origin.expect_request("/cdn/data.csv").respond_with_data(CSV)
    home = httpserver.url_for("/data.csv").replace("http://", "http://reader:${API_KEY}@")
    fetched = fetch(config_for(keyed(home)), Secrets({"API_KEY": KEY}))
    assert fetched.content == CSV
    assert received(httpserver, "X-Api-Key") == [KEY]
    assert received(httpserver, "Authorization")[0].startswith("Basic ")
    assert received(other_origin, "X-Api-Key") == [None]
    assert received(other_origin, "Authorization") == [None]
    assert KEY not in fetched.source


def test_a_redirect_within_the_origin_keeps_them(httpserver):
    httpserver.expect_request("/old.csv").respond_with_data(
        "", status=301, headers={"Location": "/new.csv"}
    )
    httpserver.expect_request("/new.csv").respond_with_data(CSV)
    fetched = fetch(config_for(keyed(httpserver.url_for("/old.csv"))), Secrets({"API_KEY": KEY}))
    assert fetched.content == CSV
    assert received(httpserver, "X-Api-Key") == [KEY, KEY]


def test_follow_redirects_never_refuses_naming_both_urls_masked(httpserver, other_origin):
    httpserver.expect_request("/data.csv").respond_with_data(
        "", status=307, headers={"Location": other_origin.url_for("/cdn.csv")}
    )
    config = config_for(
        keyed(httpserver.url_for("/data.csv") + "?token=${API_KEY}", follow_redirects="never")
    )
    with pytest.raises(FetchError) as caught:
        fetch(config, Secrets({"API_KEY": KEY}))
    message = str(caught.value)
    assert "dataset HOSTILE" in message and "source.follow_redirects is never" in message
    assert httpserver.url_for("/data.csv") + "?token=***" in message
    assert other_origin.url_for("/cdn.csv") in message
    assert KEY not in message
    assert len(httpserver.log) == 1 and other_origin.log == []  # refused, not retried


def test_follow_redirects_any_sends_them_along(httpserver, other_origin):
    httpserver.expect_request("/data.csv").respond_with_data(
        "", status=302, headers={"Location": other_origin.url_for("/mirror.csv")}
    )
    other_origin.expect_request("/mirror.csv").respond_with_data(CSV)
    config = config_for(keyed(httpserver.url_for("/data.csv"), follow_redirects="any"))
    assert fetch(config, Secrets({"API_KEY": KEY})).content == CSV
    assert received(other_origin, "X-Api-Key") == [KEY]


def test_a_redirect_elsewhere_with_the_secret_in_its_url_is_refused(httpserver, other_origin):
    """The API echoes the key into the Location: following it would hand the key over."""
    httpserver.expect_request("/data.csv").respond_with_data(
        "", status=302, headers={"Location": other_origin.url_for("/x.csv") + f"?key={KEY}"}
    )
    config = config_for({"url": httpserver.url_for("/data.csv") + "?key=${API_KEY}"})
    with pytest.raises(FetchError, match="another origin .* holds a secret; refused") as caught:
        fetch(config, Secrets({"API_KEY": KEY}))
    assert KEY not in str(caught.value) and other_origin.log == []


def test_redirect_loops_stop(httpserver):
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    with pytest.raises(FetchError, match=r"more than 10 redirects"):
        fetch(config_for({"url": httpserver.url_for("/loop")}))
    assert len(httpserver.log) == 11


def test_a_next_link_to_another_origin_goes_without_the_headers(httpserver, other_origin):
    """Pagination is a redirect by other means: the key stays with source.url's origin."""
    httpserver.expect_request("/people").respond_with_json(
        {"results": [{"id": 1}], "next": other_origin.url_for("/people2")}
    )
    other_origin.expect_request("/people2").respond_with_json({"results": [{"id": 2}]})
    config = parse_config(
        {
            "dataset_id": "PAGED",
            "source": {
                **keyed(httpserver.url_for("/people")),
                "kind": "http",
                "format": "json",
                "records_path": "results",
                "pagination": {"kind": "next_link", "next_path": "next"},
            },
            "normalize": {"primary_keys": ["id"]},
        },
        "paged.yaml",
    )
    pages = json.loads(fetch(config, Secrets({"API_KEY": KEY})).content)["pages"]
    assert [page["results"][0]["id"] for page in pages] == [1, 2]
    assert received(httpserver, "X-Api-Key") == [KEY]
    assert received(other_origin, "X-Api-Key") == [None]


# --- header values ------------------------------------------------------------------------------


def test_a_header_value_with_a_line_break_is_one_clear_error(httpserver):
    """Refused before anything is sent (it cannot succeed: no retry, no backoff), naming the
    header and never its value."""
    httpserver.expect_request("/data.csv").respond_with_data(CSV)
    source = {
        "url": httpserver.url_for("/data.csv"),
        "headers": {"Authorization": "Bearer ${API_TOKEN}"},
        "retry": {"max_attempts": 5, "backoff_s": 2},
    }
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(config_for(source), Secrets({"API_TOKEN": "tok-s3cret\r\nX-Injected: 1"}))
    message = str(caught.value)
    assert time.monotonic() - started < 1 and httpserver.log == []
    assert "dataset HOSTILE" in message and "header 'Authorization' cannot be sent" in message
    assert "not retried" in message
    assert "s3cret" not in message and "Injected" not in message and "tok" not in message


# --- the deadline -------------------------------------------------------------------------------


def drip_server(head: bytes, body: bytes, every_s: float) -> str:
    """A raw TCP server that sends `head` at once, then `body` one byte every `every_s`."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def serve() -> None:
        connection, _ = server.accept()
        with connection, server:
            connection.recv(65536)
            try:
                connection.sendall(head)
                for byte in body:
                    connection.sendall(bytes([byte]))
                    time.sleep(every_s)
            except OSError:
                pass  # the client cut it

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/drip.csv"


FETCH_IN_CHILD = """
import json, sys, time
from ingest_assets.contract import parse_config
from ingest_assets.sources.fetch import fetch
from ingest_resources.http import FetchError
config = parse_config(json.loads(sys.argv[1]), "hostile.yaml")
started = time.monotonic()
try:
    print("FETCHED", len(fetch(config).content))
except FetchError as exc:
    print("REFUSED", exc)
print("SECONDS", round(time.monotonic() - started, 2))
# its own peak (VmHWM): the rusage peak of a forked child counts the parent's pages before exec
status = open("/proc/self/status").read()
print("PEAK_MB", int(status.split("VmHWM:")[1].split()[0]) / 1024)
"""


def fetch_in_child(source: dict, memory_mb: int = 1024, timeout_s: float = 20):
    """fetch() in a child under an address-space and a time limit: (outcome, the seconds
    fetch took, the child's own peak RSS in MB)."""
    config = {
        "dataset_id": "HOSTILE",
        "source": {"kind": "http", "format": "csv", **source},
        "normalize": {"primary_keys": ["id"]},
    }
    outcome = python_bounded(
        FETCH_IN_CHILD.replace("sys.argv[1]", repr(json.dumps(config))),
        memory_mb=memory_mb,
        timeout_s=timeout_s,
    )
    assert outcome.returncode == 0, outcome.output
    seconds = float(outcome.stdout.split("SECONDS ")[1].split()[0])
    return outcome, seconds, float(outcome.stdout.split("PEAK_MB ")[1])


def test_a_body_dripped_a_byte_a_second_is_cut_at_the_deadline():
    """Every read is well within timeout_s=5: only the deadline ends it (unbounded before: a
    30-byte body took 30 s)."""
    url = drip_server(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n", b"x" * 30, 1.0)
    outcome, seconds, _ = fetch_in_child(
        {"url": url, "timeout_s": 5, "deadline_s": 2, "retry": {"max_attempts": 3}}
    )
    assert "REFUSED dataset HOSTILE: GET " + url in outcome.stdout
    assert "not done within source.deadline_s=2s" in outcome.stdout
    assert 1.9 <= seconds < 3, seconds


def test_headers_dripped_slowly_are_cut_at_the_deadline_too():
    url = drip_server(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0.25)
    config = config_for({"url": url, "timeout_s": 5, "deadline_s": 1})
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"not done within source.deadline_s=1s"):
        fetch(config)
    assert 0.9 <= time.monotonic() - started < 2


def test_a_retry_after_longer_than_the_time_left_fails_at_once(httpserver):
    httpserver.expect_request("/data.csv").respond_with_data(
        "later", status=503, headers={"Retry-After": "30"}
    )
    config = config_for({"url": httpserver.url_for("/data.csv"), "deadline_s": 5})
    started = time.monotonic()
    with pytest.raises(
        FetchError,
        match=r"the server asks to wait 30.0s, more than the .*s left of "
        r"source.deadline_s=5s",
    ):
        fetch(config)
    assert time.monotonic() - started < 1 and len(httpserver.log) == 1


def test_the_deadline_spans_every_page(httpserver):
    """Each page is quick (0.4 s, timeout_s 30), but fifty of them are not: the fetch ends at
    the deadline, in the third page."""
    started: list[float] = []

    def slow_page(request: Request) -> Response:
        started.append(time.monotonic())
        time.sleep(0.4)
        page = int(request.args["page"])
        return Response(json.dumps({"results": [{"id": page}]}), content_type="application/json")

    httpserver.expect_request("/p").respond_with_handler(slow_page)
    config = parse_config(
        {
            "dataset_id": "PAGED",
            "source": {
                "kind": "http",
                "url": httpserver.url_for("/p"),
                "format": "json",
                "records_path": "results",
                "pagination": {"kind": "page", "max_pages": 50},
                "deadline_s": 1,
            },
            "normalize": {"primary_keys": ["id"]},
        },
        "paged.yaml",
    )
    begun = time.monotonic()
    with pytest.raises(FetchError, match=r"dataset PAGED: .*source.deadline_s=1s"):
        fetch(config)
    assert 0.9 <= time.monotonic() - begun < 1.5
    assert 2 <= len(started) <= 3


# --- compressed bodies --------------------------------------------------------------------------


def zeros_gzipped(megabytes: int) -> bytes:
    """A valid gzip of `megabytes` MB of zeros, about 1 KB a MB, built without compressing it
    all: after a full flush the deflate output of each MB of zeros is the same bytes."""
    zeros = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    unit = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    end = compressor.flush()[:-8]  # the last block, without the trailer of 2 MB
    trailer = struct.pack("<II", crc, (megabytes << 20) & 0xFFFFFFFF)
    return first + unit * (megabytes - 1) + end + trailer


def test_a_gzip_bomb_is_refused_as_it_inflates_in_bounded_memory(httpserver):
    """1 GB of zeros in 1 MB of gzip, in a child limited to 1 GB of address space: refused at
    the inflated limit, without ever holding much more than it."""
    bomb = zeros_gzipped(1024)
    httpserver.expect_request("/bomb.csv").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}
    )
    url = httpserver.url_for("/bomb.csv")
    outcome, seconds, peak_mb = fetch_in_child(
        {"url": url, "max_bytes": 2 << 20, "max_inflated_bytes": 1 << 20}
    )
    assert f"REFUSED dataset HOSTILE: GET {url}: the gzip body inflates past " in outcome.stdout
    assert "source.max_inflated_bytes 1,048,576 bytes" in outcome.stdout
    assert "(source.max_bytes 2,097,152)" in outcome.stdout
    assert peak_mb < 200 and seconds < 3, (peak_mb, seconds)  # the child alone is ~130 MB


def test_a_compressed_body_within_the_limits_is_inflated(httpserver):
    rows = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(20_000))
    httpserver.expect_request("/gz.csv").respond_with_data(
        gzip.compress(rows), headers={"Content-Encoding": "gzip"}
    )
    httpserver.expect_request("/two.csv").respond_with_data(  # two gzip members (RFC 1952)
        gzip.compress(rows[:1000]) + gzip.compress(rows[1000:]),
        headers={"Content-Encoding": "gzip"},
    )
    httpserver.expect_request("/raw.csv").respond_with_data(  # raw deflate, as some servers
        zlib.compress(rows)[2:-4], headers={"Content-Encoding": "deflate"}
    )
    for path in ("/gz.csv", "/two.csv", "/raw.csv"):
        source = {"url": httpserver.url_for(path), "max_inflated_bytes": len(rows)}
        assert fetch(config_for(source)).content == rows


def test_a_corrupt_gzip_body_names_the_dataset_and_url(httpserver):
    httpserver.expect_request("/bad.csv").respond_with_data(
        b"id,value\n1,10\n", headers={"Content-Encoding": "gzip"}
    )
    httpserver.expect_request("/cut.csv").respond_with_data(
        gzip.compress(CSV * 100)[:40], headers={"Content-Encoding": "gzip"}
    )
    for path, reason in (("/bad.csv", "incorrect header check"), ("/cut.csv", "cut short")):
        url = httpserver.url_for(path)
        with pytest.raises(FetchError) as caught:
            fetch(config_for({"url": url}))
        message = str(caught.value)
        assert message.startswith(f"dataset HOSTILE: GET {url}: the body is not valid gzip: ")
        assert reason in message and "not retried" in message
    assert len(httpserver.log) == 2


def test_an_encoding_it_cannot_inflate_is_refused_not_parsed(httpserver):
    httpserver.expect_request("/z.csv").respond_with_data(
        b"\x28\xb5\x2f\xfd...", headers={"Content-Encoding": "zstd"}
    )
    with pytest.raises(FetchError, match=r"the body is zstd-encoded, which this client does not"):
        fetch(config_for({"url": httpserver.url_for("/z.csv")}))


# --- file sources and INGEST_SOURCE_ROOTS -------------------------------------------------------


def file_config(path: Path | str):
    return parse_config(
        {
            "dataset_id": "LOCAL",
            "source": {"kind": "file", "path": str(path), "format": "csv"},
            "normalize": {"primary_keys": ["id"]},
        },
        "local.yaml",
    )


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    """A root with a data file, a symlink in it to a secret outside, and another root."""
    inbox, other, outside = tmp_path / "inbox", tmp_path / "other", tmp_path / "outside"
    for folder in (inbox, other, outside):
        folder.mkdir()
    (inbox / "rates.csv").write_bytes(CSV)
    (other / "more.csv").write_bytes(CSV)
    (outside / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (inbox / "innocent.csv").symlink_to(outside / "id_rsa")
    (inbox / "alias.csv").symlink_to(other / "more.csv")
    return {"inbox": inbox, "other": other, "outside": outside}


def test_without_source_roots_any_file_is_read_as_before(roots, monkeypatch):
    monkeypatch.delenv("INGEST_SOURCE_ROOTS", raising=False)
    assert (
        fetch(file_config(roots["inbox"] / "innocent.csv")).path == roots["inbox"] / "innocent.csv"
    )


def test_source_roots_refuse_a_symlink_or_dotdot_leading_out(roots, monkeypatch):
    inbox, other = roots["inbox"], roots["other"]
    monkeypatch.setenv("INGEST_SOURCE_ROOTS", f"{inbox}{os.pathsep}{other}")
    secret = (roots["outside"] / "id_rsa").resolve()
    for path in (inbox / "innocent.csv", inbox / ".." / "outside" / "id_rsa"):
        for ask in (fetch, lambda config: probe(config, None)):
            with pytest.raises(FetchError) as caught:
                ask(file_config(path))
            message = str(caught.value)
            assert message.startswith(f"dataset LOCAL: source.path {path} resolves to {secret}")
            assert f"outside INGEST_SOURCE_ROOTS ({inbox.resolve()}{os.pathsep}" in message


def test_source_roots_let_in_what_resolves_inside_one(roots, monkeypatch):
    inbox, other = roots["inbox"], roots["other"]
    monkeypatch.setenv("INGEST_SOURCE_ROOTS", f"{inbox}{os.pathsep}{other}")
    assert fetch(file_config(inbox / "rates.csv")).path == (inbox / "rates.csv").resolve()
    fetched = fetch(file_config(inbox / "alias.csv"))  # a symlink into the other root
    assert fetched.path == (other / "more.csv").resolve()
    assert fetched.source == str(inbox / "alias.csv")  # the manifest names what was configured
    assert probe(file_config(inbox / "rates.csv"), None)["version"].startswith("sha256:")
