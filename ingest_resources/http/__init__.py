"""HTTP downloads with httpx: timeouts and a deadline, retries with backoff, a circuit breaker,
redirects that keep credentials at home, and caps on what arrives and what it inflates to.

- Retried: connection errors and resets, timeouts, 429 (honouring Retry-After, in seconds or as
  an HTTP date) and 5xx, with exponential backoff and jitter.
- Not retried: other 4xx (400, 401, 403, 404, ...): the error names the status and the request;
  a header that cannot be sent (a line break in a secret), a refused redirect, a body that is
  not what its Content-Encoding says, a size cap: none can succeed later (`retryable` False).
  Retries that ran out, an open circuit, a Retry-After too long to wait and the deadline passed
  end the fetch too, but a later run may succeed (`FetchError.retryable`).
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

Modules: `client` (HttpClient.get: attempts, redirects, Download), `resilience` (RetryPolicy,
Retry-After, CircuitBreaker, Deadline and its watchdog), `credentials` (header checks, origins,
user:password), `body` (bounded reading and inflating), `errors` (FetchError, and which
failures are `retryable`).
"""

from ingest_resources.http.client import Download, FollowRedirects, HttpClient, Params
from ingest_resources.http.credentials import check_headers, may_carry_credentials
from ingest_resources.http.errors import FetchError, SourceMissing
from ingest_resources.http.resilience import (
    CircuitBreaker,
    Deadline,
    RetryPolicy,
    reset_breakers,
    retry_after_seconds,
    shared_breaker,
)

__all__ = [
    "CircuitBreaker",
    "Deadline",
    "Download",
    "FetchError",
    "SourceMissing",
    "FollowRedirects",
    "HttpClient",
    "Params",
    "RetryPolicy",
    "check_headers",
    "may_carry_credentials",
    "reset_breakers",
    "retry_after_seconds",
    "shared_breaker",
]
