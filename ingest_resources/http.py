"""HTTP downloads with httpx: timeouts and a deadline, retries with backoff, a circuit breaker,
redirects that keep credentials at home, and caps on what arrives and what it inflates to.

- Retried: connection errors and resets, timeouts, 429 (honouring Retry-After, in seconds or as
  an HTTP date) and 5xx, with exponential backoff and jitter.
- Not retried: other 4xx (400, 401, 403, 404, ...): the error names the status and the request;
  a header that cannot be sent (a line break in a secret), a refused redirect, a body that is
  not what its Content-Encoding says, a size cap or the deadline passed: none can succeed later.
- A circuit breaker per host opens after N failures in a row and half-opens after a cool-down,
  so a dead API is not hammered by every partition run in the same process.
- Redirects are followed here, hop by hop (at most MAX_REDIRECTS), not by httpx, which drops only
  `Authorization` when a redirect leaves the origin and would carry `X-Api-Key` along. The
  request's headers and the URL's user:password belong to the origin of the URL asked for
  (`home`): a hop to another origin (scheme, host, port; an upgrade from http to https on the
  same host and default ports stays home) goes without them, as browsers do with
  `Authorization`, unless `follow_redirects="any"`; `"never"` refuses any redirect. A hop to
  another origin whose URL holds a secret is refused: the secret would travel in the URL.
- A deadline bounds the whole fetch, pages, retries and their waits included. httpx's timeout
  bounds each read, so a server sending a byte a second never trips it: a watchdog shuts the
  request's sockets when the deadline passes.
- Bodies are read raw and inflated here (gzip, deflate; br when the installed brotli can bound
  its output), at most PIECE bytes a step, counted against the inflated limit as they come:
  httpx inflates each network chunk whole, and 64 KB of gzip can inflate to 64 MB.
Error messages carry only `label` (dataset and masked URL) and URLs passed through `mask`,
never a credential nor a header's value.
"""

import contextlib
import datetime as dt
import email.utils
import functools
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Literal, Protocol
from urllib.parse import urlparse

import httpx

from ingest_resources.errors import SourceError

MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
PIECE = 1 << 16  # the most one inflating step produces, whatever the compression ratio
# RFC 9110: a field name is a token; a value is visible ASCII, spaces and tabs (httpx sends
# ASCII only; a line break would end the header, so h11 refuses it)
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
FollowRedirects = Literal["same_origin", "any", "never"]


class FetchError(SourceError):
    """A download failed; the message names the dataset and the (masked) URL."""


@dataclass(frozen=True)
class Download:
    content: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None
    status: int = 200
    link_next: str | None = None  # the `Link: <...>; rel="next"` header, for pagination


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter (50-150%) before retry number `attempt` (1-based)."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.5)


@dataclass
class _HostState:
    failures: int = 0
    opened_at: float | None = None


@dataclass
class CircuitBreaker:
    failures: int = 5
    cooldown_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _hosts: dict[str, _HostState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, host: str, label: str) -> None:
        """Refuse a request to an open circuit; after the cool-down let one trial through."""
        with self._lock:
            state = self._hosts.get(host)
            if state is None or state.opened_at is None:
                return
            waited = self.clock() - state.opened_at
            if waited < self.cooldown_s:
                raise FetchError(
                    f"{label}: circuit open for {host} after {state.failures} failures in a row; "
                    f"not calling it again for {self.cooldown_s - waited:.0f}s"
                )
            state.opened_at = None  # half-open: this request is the trial
            state.failures = self.failures - 1  # one more failure re-opens it

    def success(self, host: str) -> None:
        with self._lock:
            self._hosts.pop(host, None)

    def failure(self, host: str) -> None:
        with self._lock:
            state = self._hosts.setdefault(host, _HostState())
            state.failures += 1
            if state.failures >= self.failures:
                state.opened_at = self.clock()

    def is_open(self, host: str) -> bool:
        state = self._hosts.get(host)
        return bool(state and state.opened_at is not None)


_BREAKERS: dict[tuple[int, float], CircuitBreaker] = {}


def shared_breaker(failures: int, cooldown_s: float) -> CircuitBreaker:
    """One breaker per setting in this process, shared by every dataset calling the same host."""
    return _BREAKERS.setdefault((failures, cooldown_s), CircuitBreaker(failures, cooldown_s))


def reset_breakers() -> None:
    """Forget every host's failures (tests; a long-lived process could call it from an admin hook)."""
    _BREAKERS.clear()


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


class _Retryable(Exception):
    def __init__(self, reason: str, wait_s: float | None = None):
        super().__init__(reason)
        self.wait_s = wait_s


class Deadline:
    """When a whole fetch must be done: one for all its pages, hops, retries and their waits."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        return self._end - self._clock()

    def passed(self, label: str, detail: str = "") -> "FetchError":
        return FetchError(
            f"{label}: not done within source.deadline_s={self.seconds:g}s (the whole download: "
            f"its pages, redirects, retries and their waits){detail}; not retried"
        )


class _Watchdog:
    """Shuts the sockets of one attempt when the deadline passes, so that a server dripping a
    byte a second (each read well within the timeout) is cut at the deadline, in whatever
    phase: connecting, headers or body. The sockets are learnt from httpcore's `trace`."""

    def __init__(self, seconds: float):
        self.fired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._cut)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()
        self._timer.join()  # a cut under way ends before the client closes its sockets

    def trace(self, event: str, info: dict) -> None:
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        with self._lock:
            self._sockets.append(sock)
            late = self.fired.is_set()
        if late:
            _shut(sock)

    def _cut(self) -> None:
        with self._lock:
            self.fired.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """End both directions: a read blocked in another thread returns at once."""
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


# --- inflating Content-Encoding, a bounded step at a time ------------------------------------------


class _BadBody(Exception):
    """The body is not what its Content-Encoding says."""


class _Undecodable(Exception):
    """A Content-Encoding this client cannot inflate (the exception's text is its name)."""


class _Inflater(Protocol):
    name: str

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class _ZlibInflater:
    """gzip (several members allowed, RFC 1952) or deflate (zlib-wrapped, or raw as some servers
    send it, told apart by the first two bytes), never more than PIECE bytes from one call."""

    def __init__(self, name: Literal["gzip", "deflate"]):
        self.name = name
        self._wbits = 16 + zlib.MAX_WBITS if name == "gzip" else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(self._wbits)
        self._fed = False
        self._start: bytes | None = b"" if name == "deflate" else None  # until the flavour is known

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        if self._start is not None:
            data = self._start + data
            if len(data) < 2:
                self._start = data
                return
            self._start = None
            if not _zlib_header(data[:2]):
                self._wbits = -zlib.MAX_WBITS  # raw deflate, without the zlib wrapper
                self._zlib = zlib.decompressobj(self._wbits)
        try:
            yield from self._inflate(data)
        except zlib.error as exc:
            raise _BadBody(str(exc)) from None

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while True:
            piece = self._zlib.decompress(data, PIECE)
            if piece:
                yield piece
            if self._zlib.eof:
                data = self._zlib.unused_data
                if not (self.name == "gzip" and data.startswith(b"\x1f\x8b")):
                    return  # the end; trailing bytes that start no member are ignored, as gzip(1)
                self._zlib = zlib.decompressobj(self._wbits)  # the next gzip member
                continue
            data = self._zlib.unconsumed_tail
            if not data and len(piece) < PIECE:
                return  # all input taken, no output pending: wait for more input

    def finish(self) -> Iterator[bytes]:
        if self._fed and not self._zlib.eof:
            raise _BadBody("the body ends before its compressed stream does (cut short)")
        return iter(())


def _zlib_header(first: bytes) -> bool:
    """RFC 1950: deflate method, and the two bytes a multiple of 31."""
    return first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0


class _BrotliInflater:
    """br through brotli >= 1.2, whose Decompressor can bound the output of each call (to the
    limit rounded up to its buffer's block: about 96 KB for PIECE)."""

    def __init__(self, brotli: ModuleType, limit_keyword: str):
        self.name = "br"
        self._error = brotli.error
        self._brotli = brotli.Decompressor()
        self._limit = {limit_keyword: PIECE}
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        try:
            piece = self._brotli.process(data, **self._limit)
            while piece:  # the limit may have held output back: ask until none comes
                yield piece
                piece = self._brotli.process(b"", **self._limit)
        except self._error as exc:
            raise _BadBody(str(exc)) from None

    def finish(self) -> Iterator[bytes]:
        if self._fed and not self._brotli.is_finished():
            raise _BadBody("the body ends before its compressed stream does (cut short)")
        return iter(())


@functools.cache
def _bounded_brotli() -> tuple[ModuleType, str] | None:
    """brotli and the name of its output limit, if installed in a version that bounds each
    step's output (1.2+: `output_buffer_limit`; later sources name it `max_output_length`);
    else br is neither asked for nor accepted."""
    try:
        import brotli
    except ImportError:
        return None
    for keyword in ("output_buffer_limit", "max_output_length"):
        try:
            brotli.Decompressor().process(b"", **{keyword: PIECE})
        except TypeError:
            continue
        if hasattr(brotli.Decompressor, "can_accept_more_data"):
            return brotli, keyword
    return None


ACCEPT_ENCODING = "gzip, deflate" + (", br" if _bounded_brotli() else "")
# compressions this client cannot inflate: refused rather than handed on as if they were data
UNDECODED = frozenset({"br", "zstd", "compress", "x-compress"})


class _Inflation:
    """The inflaters for a Content-Encoding list, the last applied first (RFC 9110 8.4)."""

    def __init__(self, header: str):
        self.header = header
        self.stages: list[_Inflater] = []
        for token in reversed([t.strip().lower() for t in header.split(",")]):
            if token in ("gzip", "x-gzip", "deflate"):
                self.stages.append(_ZlibInflater("deflate" if token == "deflate" else "gzip"))
            elif token == "br" and (brotli := _bounded_brotli()) is not None:
                self.stages.append(_BrotliInflater(*brotli))
            elif token in UNDECODED:
                raise _Undecodable(token)
            # identity, or a misconfigured server's `utf-8`: the bytes are read as they are,
            # as httpx does

    @property
    def inflates(self) -> bool:
        return bool(self.stages)

    @property
    def name(self) -> str:
        return "/".join(stage.name for stage in reversed(self.stages)) or "identity"

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, [data])

    def finish(self) -> Iterator[bytes]:
        for index, stage in enumerate(self.stages):
            yield from self._through(index + 1, stage.finish())

    def _through(self, index: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if index == len(self.stages):
            yield from pieces
            return
        for piece in pieces:
            yield from self._through(index + 1, self.stages[index].feed(piece))


# --- headers, credentials and where they may go -----------------------------------------------------


def check_headers(headers: dict[str, str], label: str) -> None:
    """Refuse, before anything is sent, a header HTTP cannot carry, naming the header and never
    its value (typically a secret read from a file with its trailing newline)."""
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise FetchError(
                f"{label}: header name {name!r} is not an HTTP token (letters, digits and "
                "!#$%&'*+-.^_`|~); not sent, not retried"
            )
        if not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
            raise FetchError(
                f"{label}: header {name!r} cannot be sent: its value holds a line break, a "
                "control character or a character outside ASCII (a secret read with its "
                "trailing newline?); the value is not shown; not sent, not retried"
            )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


def may_carry_credentials(home: httpx.URL, target: httpx.URL) -> bool:
    """Whether a request to `target` may carry what was written for `home`: the same origin,
    or the same host moved from http to https on the default ports (the same server, and a
    safer channel: requests allows it too)."""
    if _origin(home) == _origin(target):
        return True
    return (
        home.host == target.host
        and _origin(home) == ("http", home.host, 80)
        and _origin(target) == ("https", target.host, 443)
    )


@dataclass(frozen=True)
class _Credentials:
    """What belongs to the origin of `home`: the request's headers and the URL's user:password."""

    home: httpx.URL
    headers: dict[str, str]
    auth: httpx.BasicAuth | None


def _without_userinfo(url: httpx.URL) -> tuple[httpx.URL, httpx.BasicAuth | None]:
    """The URL's user:password, taken out to be sent as basic auth only where it belongs (httpx
    would send it to any URL that carries it)."""
    if not url.userinfo:
        return url, None
    return url.copy_with(username=None, password=None), httpx.BasicAuth(url.username, url.password)


def _unmasked(text: str) -> str:
    return text


@dataclass
class HttpClient:
    timeout_s: float
    max_bytes: int
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    sleep: Callable[[float], None] = time.sleep
    deadline_s: float | None = None  # the whole fetch; default 12 x timeout_s, as the contract
    max_inflated_bytes: int | None = None  # a compressed body's bytes; default 20 x max_bytes
    follow_redirects: FollowRedirects = "same_origin"
    mask: Callable[[str], str] = _unmasked  # hides secrets in URLs that messages name

    @property
    def inflated_limit(self) -> int:
        return (
            self.max_inflated_bytes if self.max_inflated_bytes is not None else 20 * self.max_bytes
        )

    def deadline(self) -> Deadline:
        """A deadline for one fetch: share it between the requests of a fetch (its pages)."""
        return Deadline(self.deadline_s if self.deadline_s is not None else 12 * self.timeout_s)

    def get(
        self,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, object],
        label: str,
        deadline: Deadline | None = None,
        home: str | None = None,
    ) -> Download:
        """GET `url`; `headers`, and the user:password of `home`'s URL (default `url`), go to the
        origin of `home` only (see the module's docstring)."""
        deadline = deadline or self.deadline()
        check_headers(headers, label)
        try:
            target, auth = _without_userinfo(httpx.URL(url))
            credentials = _Credentials(
                _without_userinfo(httpx.URL(home or url))[0], dict(headers), auth
            )
        except httpx.InvalidURL as exc:
            raise FetchError(f"{label}: not a URL: {self.mask(str(exc))}") from None
        host = urlparse(url).netloc
        last = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            if deadline.left() <= 0:
                raise deadline.passed(label, f"; the last attempt: {last}")
            self.breaker.before(host, label)
            try:
                result = self._once(target, params, credentials, label, deadline)
            except _Retryable as exc:
                self.breaker.failure(host)
                last = str(exc)
                if attempt == self.retry.max_attempts:
                    break
                wait = exc.wait_s if exc.wait_s is not None else self.retry.backoff(attempt)
                self._may_wait(wait, exc.wait_s is not None, last, label, deadline)
                self.sleep(wait)
                continue
            self.breaker.success(host)
            return result
        raise FetchError(
            f"{label}: gave up after {self.retry.max_attempts} attempts: {last}", retryable=True
        )

    def _may_wait(
        self, wait: float, asked: bool, last: str, label: str, deadline: Deadline
    ) -> None:
        """Refuse at once a wait the server's Retry-After or the deadline leaves no room for."""
        if wait > self.retry.max_retry_after_s:
            raise FetchError(
                f"{label}: {last}; the server asks to wait {wait:.0f}s, over "
                f"source.retry.max_retry_after_s {self.retry.max_retry_after_s:.0f}s"
            )
        left = deadline.left()
        if wait >= left:
            who = "the server asks to wait" if asked else "the next retry is due in"
            raise FetchError(
                f"{label}: {last}; {who} {wait:.1f}s, more than the {max(left, 0):.1f}s left of "
                f"source.deadline_s={deadline.seconds:g}s; not retried"
            )

    def _once(
        self,
        url: httpx.URL,
        params: dict[str, object],
        credentials: _Credentials,
        label: str,
        deadline: Deadline,
    ) -> Download:
        """One attempt: the request and its redirects, on one connection pool, under a watchdog."""
        with (
            httpx.Client(
                follow_redirects=False, headers={"Accept-Encoding": ACCEPT_ENCODING}
            ) as client,
            _Watchdog(deadline.left()) as watchdog,
        ):
            try:
                return self._follow(client, url, params, credentials, label, deadline, watchdog)
            except httpx.TimeoutException:
                if watchdog.fired.is_set() or deadline.left() <= 0:
                    raise deadline.passed(label) from None
                raise _Retryable(f"timed out after source.timeout_s={self.timeout_s}s") from None
            except httpx.LocalProtocolError as exc:  # what we would send is not HTTP: its text
                raise FetchError(  # may hold a header's value, so only its kind is named
                    f"{label}: the request could not be sent ({type(exc).__name__}); not retried"
                ) from None
            except httpx.TransportError as exc:
                if watchdog.fired.is_set():
                    raise deadline.passed(label) from None
                raise _Retryable(f"{type(exc).__name__}: {self.mask(str(exc))}") from None

    def _follow(
        self,
        client: httpx.Client,
        url: httpx.URL,
        params: dict[str, object],
        credentials: _Credentials,
        label: str,
        deadline: Deadline,
        watchdog: _Watchdog,
    ) -> Download:
        """The request, then each redirect's, until an answer; the params go with the first
        only (a redirect's Location is the whole next URL)."""
        # None, not {}: httpx would drop the URL's own query (e.g. a next link's)
        query: dict[str, object] | None = params or None
        for _hop in range(MAX_REDIRECTS + 1):
            carry = self._may_carry(credentials, url, query, label)
            with client.stream(
                "GET",
                url,
                headers=credentials.headers if carry else None,
                params=query,
                auth=credentials.auth if carry else None,
                timeout=min(self.timeout_s, max(deadline.left(), 0.001)),
                extensions={"trace": watchdog.trace},
            ) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    url, query = self._redirect(response, label), None
                    continue
                download = self._answer(response, label, deadline)
            if watchdog.fired.is_set():  # the body may look whole after the cut
                raise deadline.passed(label)
            return download
        raise FetchError(
            f"{label}: more than {MAX_REDIRECTS} redirects (the last to {self.mask(str(url))}); "
            "refused"
        )

    def _may_carry(
        self,
        credentials: _Credentials,
        url: httpx.URL,
        query: dict[str, object] | None,
        label: str,
    ) -> bool:
        """Whether this request gets the headers and user:password; a request to another origin
        whose URL holds a secret is refused (unless `any`): the URL would take it there."""
        if self.follow_redirects == "any" or may_carry_credentials(credentials.home, url):
            return True
        full = str(url.copy_merge_params(query)) if query else str(url)
        if self.mask(full) != full:
            raise FetchError(
                f"{label}: {self.mask(full)} is on another origin than "
                f"{self.mask(str(credentials.home))} and its URL holds a secret; refused "
                "(source.follow_redirects: any would send it)"
            )
        return False

    def _redirect(self, response: httpx.Response, label: str) -> httpx.URL:
        """Where a redirect leads, if this client may go there."""
        status = response.status_code
        try:
            target = response.url.join(response.headers["location"])
        except httpx.InvalidURL:
            raise FetchError(f"{label}: HTTP {status} redirects to an invalid Location") from None
        hop = f"HTTP {status} redirects {self.mask(str(response.url))} to {self.mask(str(target))}"
        if self.follow_redirects == "never":
            raise FetchError(
                f"{label}: {hop}; source.follow_redirects is never (same_origin follows it "
                "without the headers and credentials if it leaves the origin); not retried"
            )
        if target.scheme not in DEFAULT_PORTS:
            raise FetchError(f"{label}: {hop}; only http and https are followed")
        return target

    def _answer(self, response: httpx.Response, label: str, deadline: Deadline) -> Download:
        status = response.status_code
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            raise _Retryable(f"HTTP {status} {response.reason_phrase}", wait)
        if status >= 400:
            raise FetchError(
                f"{label}: HTTP {status} {response.reason_phrase} (not retried: check the "
                "URL, parameters and credentials)"
            )
        content = b"" if status == 304 else self._read(response, label, deadline)
        return Download(
            content=content,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            content_type=response.headers.get("content-type"),
            status=status,
            link_next=response.links.get("next", {}).get("url"),
        )

    def _read(self, response: httpx.Response, label: str, deadline: Deadline) -> bytes:
        """The body, raw bytes counted against max_bytes, inflated bytes against the inflated
        limit as each bounded piece comes out; the deadline checked after every chunk."""
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"{label}: response is {int(declared):,} bytes, over source.max_bytes {self.max_bytes:,}"
            )
        encoding = response.headers.get("content-encoding", "")
        try:
            inflation = _Inflation(encoding)
        except _Undecodable as exc:
            raise FetchError(
                f"{label}: the body is {exc}-encoded, which this client does not inflate (it "
                f"asks for {ACCEPT_ENCODING}); not retried"
            ) from None
        pieces: list[bytes] = []
        received = inflated = 0
        try:
            for chunk in response.iter_raw():
                received += len(chunk)
                if received > self.max_bytes:
                    raise FetchError(
                        f"{label}: response exceeded source.max_bytes {self.max_bytes:,} bytes; refused"
                    )
                for piece in inflation.feed(chunk):
                    inflated += len(piece)
                    self._within_inflated_limit(inflation, inflated, received, label)
                    pieces.append(piece)
                if deadline.left() <= 0:
                    raise deadline.passed(label, f"; {received:,} bytes had arrived")
            for piece in inflation.finish():
                inflated += len(piece)
                self._within_inflated_limit(inflation, inflated, received, label)
                pieces.append(piece)
        except _BadBody as exc:
            raise FetchError(
                f"{label}: the body is not valid {inflation.name}: {exc} (Content-Encoding: "
                f"{encoding}); not retried"
            ) from None
        return b"".join(pieces)

    def _within_inflated_limit(
        self, inflation: _Inflation, inflated: int, received: int, label: str
    ) -> None:
        if inflation.inflates and inflated > self.inflated_limit:
            raise FetchError(
                f"{label}: the {inflation.name} body inflates past source.max_inflated_bytes "
                f"{self.inflated_limit:,} bytes from {received:,} bytes received "
                f"(source.max_bytes {self.max_bytes:,}); refused as a likely decompression bomb"
            )


def download(
    url: str,
    *,
    headers: dict[str, str],
    params: dict[str, object],
    timeout_s: float,
    max_bytes: int,
    label: str,
    retry: RetryPolicy | None = None,
    breaker: CircuitBreaker | None = None,
    deadline_s: float | None = None,
    max_inflated_bytes: int | None = None,
    follow_redirects: FollowRedirects = "same_origin",
) -> Download:
    client = HttpClient(
        timeout_s,
        max_bytes,
        retry or RetryPolicy(),
        breaker or CircuitBreaker(),
        deadline_s=deadline_s,
        max_inflated_bytes=max_inflated_bytes,
        follow_redirects=follow_redirects,
    )
    return client.get(url, headers=headers, params=params, label=label)
