"""The HTTP client: one GET, its attempts and their redirects, followed hop by hop here (not by
httpx, which would carry `X-Api-Key` to another origin); see the package's docstring."""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlparse

import httpx

from ingest_resources.http.body import ACCEPT_ENCODING, read_body
from ingest_resources.http.credentials import (
    DEFAULT_PORTS,
    Credentials,
    check_headers,
    may_carry_credentials,
    without_userinfo,
)
from ingest_resources.http.errors import FetchError, SourceMissing
from ingest_resources.http.resilience import (
    CircuitBreaker,
    Deadline,
    RetryPolicy,
    Watchdog,
    retry_after_seconds,
)

MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
FollowRedirects = Literal["same_origin", "any", "never"]
Params = Mapping[str, str | int | float | bool]  # a query's parameters, as the contract has them


@dataclass(frozen=True)
class Download:
    content: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None
    status: int = 200
    link_next: str | None = None  # the `Link: <...>; rel="next"` header, for pagination


class _Retryable(Exception):
    """A failure the next attempt may not meet (a 5xx, a 429, a timeout, a lost connection)."""

    def __init__(self, reason: str, wait_s: float | None = None):
        super().__init__(reason)
        self.wait_s = wait_s


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
        params: Params,
        label: str,
        deadline: Deadline | None = None,
        home: str | None = None,
    ) -> Download:
        """GET `url`; `headers`, and the user:password of `home`'s URL (default `url`), go to the
        origin of `home` only (see the module's docstring)."""
        deadline = deadline or self.deadline()
        check_headers(headers, label)
        try:
            target, auth = without_userinfo(httpx.URL(url))
            credentials = Credentials(
                without_userinfo(httpx.URL(home or url))[0], dict(headers), auth
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
                f"source.retry.max_retry_after_s {self.retry.max_retry_after_s:.0f}s",
                retryable=True,
            )
        left = deadline.left()
        if wait >= left:
            who = "the server asks to wait" if asked else "the next retry is due in"
            raise FetchError(
                f"{label}: {last}; {who} {wait:.1f}s, more than the {max(left, 0):.1f}s left of "
                f"source.deadline_s={deadline.seconds:g}s; not retried",
                retryable=True,
            )

    def _once(
        self,
        url: httpx.URL,
        params: Params,
        credentials: Credentials,
        label: str,
        deadline: Deadline,
    ) -> Download:
        """One attempt: the request and its redirects, on one connection pool, under a watchdog."""
        with (
            httpx.Client(
                follow_redirects=False, headers={"Accept-Encoding": ACCEPT_ENCODING}
            ) as client,
            Watchdog(deadline.left()) as watchdog,
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
        params: Params,
        credentials: Credentials,
        label: str,
        deadline: Deadline,
        watchdog: Watchdog,
    ) -> Download:
        """The request, then each redirect's, until an answer; the params go with the first
        only (a redirect's Location is the whole next URL)."""
        # None, not {}: httpx would drop the URL's own query (e.g. a next link's)
        query: Params | None = params or None
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
        credentials: Credentials,
        url: httpx.URL,
        query: Params | None,
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
            raise (SourceMissing if status in (404, 410) else FetchError)(
                f"{label}: HTTP {status} {response.reason_phrase} (not retried: check the "
                "URL, parameters and credentials)"
            )
        content = (
            b""
            if status == 304
            else read_body(
                response,
                max_bytes=self.max_bytes,
                inflated_limit=self.inflated_limit,
                label=label,
                deadline=deadline,
            )
        )
        return Download(
            content=content,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            content_type=response.headers.get("content-type"),
            status=status,
            link_next=response.links.get("next", {}).get("url"),
        )
