"""How the client copes with a server that fails: retries with exponential backoff and jitter,
honouring Retry-After; a circuit breaker per host; a deadline for the whole fetch, and the
watchdog that cuts an attempt's sockets when it passes."""

import contextlib
import datetime as dt
import email.utils
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest_resources.http.errors import FetchError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter (50-150%) before retry number `attempt` (1-based)."""
        base = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
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
                    f"not calling it again for {self.cooldown_s - waited:.0f}s",
                    retryable=True,
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


class Deadline:
    """When a whole fetch must be done: one for all its pages, hops, retries and their waits."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        return self._end - self._clock()

    def passed(self, label: str, detail: str = "") -> FetchError:
        """The error for a fetch cut by the deadline: not retried within it, retryable by a
        later run."""
        return FetchError(
            f"{label}: not done within source.deadline_s={self.seconds:g}s (the whole download: "
            f"its pages, redirects, retries and their waits){detail}; not retried",
            retryable=True,
        )


class Watchdog:
    """Shuts the sockets of one attempt when the deadline passes, so that a server dripping a
    byte a second (each read well within the timeout) is cut at the deadline, in whatever
    phase: connecting, headers or body. The sockets are learnt from httpcore's `trace`."""

    def __init__(self, seconds: float):
        self.fired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._cut)
        self._timer.daemon = True

    def __enter__(self) -> "Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()
        self._timer.join()  # a cut under way ends before the client closes its sockets

    def trace(self, event: str, info: dict[str, Any]) -> None:
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
