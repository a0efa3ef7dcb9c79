"""A token bucket per client address (INGEST_API_RATE requests a second, INGEST_API_BURST at
once), in memory: over it, a 429 with `Retry-After` (whole seconds) and a JSON body. The
address is the connection's (uvicorn takes it from X-Forwarded-For only for the proxies its
--forwarded-allow-ips trusts: 127.0.0.1 by default). The buckets of clients idle long enough
to have refilled are dropped when there are many."""

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BUCKETS = 10_000


class Buckets:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self.lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go; else the seconds until a token is there."""
        now = self.clock()
        with self.lock:
            tokens, when = self.buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens >= 1:
                self.buckets[client] = (tokens - 1, now)
                if len(self.buckets) > MAX_BUCKETS:
                    self._forget_idle(now)
                return 0.0
            self.buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full = self.burst / self.rate
        for client, (_, when) in list(self.buckets.items()):
            if now - when >= full:
                del self.buckets[client]


class RateLimit:
    """ASGI middleware: each HTTP request takes a token of its client's bucket."""

    def __init__(self, app: App, rate: float, burst: float) -> None:
        self.app = app
        self.buckets = Buckets(rate, burst) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if not wait:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        body = json.dumps(
            {"detail": f"too many requests from this address: retry in {retry} s"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
