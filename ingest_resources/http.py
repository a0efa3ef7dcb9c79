"""HTTP downloads with httpx: timeouts, retries with backoff, a circuit breaker, a size cap.

- Retried: connection errors and resets, timeouts, 429 (honouring Retry-After, in seconds or as
  an HTTP date) and 5xx, with exponential backoff and jitter.
- Not retried: other 4xx (400, 401, 403, 404, ...): the error names the status and the request.
- A circuit breaker per host opens after N failures in a row and half-opens after a cool-down,
  so a dead API is not hammered by every partition run in the same process.
Error messages carry only `label` (dataset and masked URL), never a credential.
"""

import datetime as dt
import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx


class FetchError(Exception):
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


@dataclass
class HttpClient:
    timeout_s: float
    max_bytes: int
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    sleep: Callable[[float], None] = time.sleep

    def get(
        self, url: str, *, headers: dict[str, str], params: dict[str, object], label: str
    ) -> Download:
        host = urlparse(url).netloc
        last = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            self.breaker.before(host, label)
            try:
                result = self._once(url, headers, params, label)
            except _Retryable as exc:
                self.breaker.failure(host)
                last = str(exc)
                if attempt == self.retry.max_attempts:
                    break
                wait = exc.wait_s if exc.wait_s is not None else self.retry.backoff(attempt)
                if wait > self.retry.max_retry_after_s:
                    raise FetchError(
                        f"{label}: {last}; the server asks to wait {wait:.0f}s, over "
                        f"source.retry.max_retry_after_s {self.retry.max_retry_after_s:.0f}s"
                    ) from None
                self.sleep(wait)
                continue
            self.breaker.success(host)
            return result
        raise FetchError(f"{label}: gave up after {self.retry.max_attempts} attempts: {last}")

    def _once(
        self, url: str, headers: dict[str, str], params: dict[str, object], label: str
    ) -> Download:
        try:
            with (
                httpx.Client(timeout=self.timeout_s, follow_redirects=True) as client,
                # params=None, not {}: httpx would drop the URL's own query (e.g. a next link's)
                client.stream("GET", url, headers=headers, params=params or None) as response,
            ):
                status = response.status_code
                if status == 429 or status >= 500:
                    wait = retry_after_seconds(response.headers.get("retry-after"))
                    raise _Retryable(f"HTTP {status} {response.reason_phrase}", wait)
                if status >= 400:
                    raise FetchError(
                        f"{label}: HTTP {status} {response.reason_phrase} (not retried: check the "
                        "URL, parameters and credentials)"
                    )
                content = b"" if status == 304 else self._read(response, label)
                return Download(
                    content=content,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    content_type=response.headers.get("content-type"),
                    status=status,
                    link_next=response.links.get("next", {}).get("url"),
                )
        except httpx.TimeoutException:
            raise _Retryable(f"timed out after source.timeout_s={self.timeout_s}s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None

    def _read(self, response: httpx.Response, label: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"{label}: response is {int(declared):,} bytes, over source.max_bytes {self.max_bytes:,}"
            )
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(
                    f"{label}: response exceeded source.max_bytes {self.max_bytes:,} bytes; refused"
                )
            chunks.append(chunk)
        return b"".join(chunks)


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
) -> Download:
    client = HttpClient(timeout_s, max_bytes, retry or RetryPolicy(), breaker or CircuitBreaker())
    return client.get(url, headers=headers, params=params, label=label)
