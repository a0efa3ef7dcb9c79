"""Headers and credentials, and where they may go: a header HTTP cannot carry is refused
before anything is sent; the request's headers and the URL's user:password belong to the
origin of the URL asked for, and go to another origin only as `follow_redirects` allows."""

import re
from dataclasses import dataclass

import httpx

from ingest_resources.http.errors import FetchError

DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 9110: a field name is a token; a value is visible ASCII, spaces and tabs (httpx sends
# ASCII only; a line break would end the header, so h11 refuses it)
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


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
class Credentials:
    """What belongs to the origin of `home`: the request's headers and the URL's user:password."""

    home: httpx.URL
    headers: dict[str, str]
    auth: httpx.BasicAuth | None


def without_userinfo(url: httpx.URL) -> tuple[httpx.URL, httpx.BasicAuth | None]:
    """The URL's user:password, taken out to be sent as basic auth only where it belongs (httpx
    would send it to any URL that carries it)."""
    if not url.userinfo:
        return url, None
    return url.copy_with(username=None, password=None), httpx.BasicAuth(url.username, url.password)
