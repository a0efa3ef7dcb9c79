"""Opaque, signed cursors: base64url of a small JSON object, then `.` and the first 16 bytes of
its HMAC-SHA256 (key: ApiSettings.cursor_key). A client can hand one back, never make one: the
dataset, the version the scan is pinned to, the filters it was made for and the position of the
next row are all in it, and a cursor altered by a single bit is refused (422)."""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from ingest_api.errors import BadParameter

MAC_BYTES = 16
MAX_CURSOR = 4096  # characters


class BadCursor(BadParameter):
    """A cursor that was not made by this server (or for another request)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Cursor:
    """Where a scan goes on: `dataset`, its pinned `version` (a warehouse scan: the ledger's
    newest version when it began), `filters` (a digest of the rows' filters), `part` (a month
    of the store, `unknown` for rows without a time; or the quarantine's fingerprint) and
    `offset` (rows of that part already returned), `last` (a digest prefix of the last row's
    key, checked when the scan goes on), `after` (a warehouse scan: the primary key of the last
    row)."""

    dataset: str
    version: str
    filters: str
    part: str = ""
    offset: int = 0
    last: str = ""
    after: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "d": self.dataset,
            "v": self.version,
            "f": self.filters,
            "p": self.part,
            "o": self.offset,
            "k": self.last,
        }
        if self.after is not None:
            data["a"] = self.after
        return data


def encode(cursor: Cursor, key: bytes) -> str:
    body = json.dumps(cursor.to_dict(), separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()[:MAC_BYTES]
    return f"{_b64(body)}.{_b64(mac)}"


def decode(text: str, key: bytes) -> Cursor:
    """The cursor, or BadCursor when it is malformed, altered or signed by another key."""
    if len(text) > MAX_CURSOR or text.count(".") != 1:
        raise BadCursor("cursor: not a cursor of this server (pass next_cursor back as it is)")
    body_text, mac_text = text.split(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise BadCursor(
            "cursor: not a cursor of this server (pass next_cursor back as it is)"
        ) from None
    wanted = hmac.new(key, body, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(mac, wanted):
        raise BadCursor(
            "cursor: its signature does not match (altered, or made by another server or key)"
        )
    try:
        data = json.loads(body)
        after = data.get("a")
        cursor = Cursor(
            dataset=str(data["d"]),
            version=str(data["v"]),
            filters=str(data["f"]),
            part=str(data["p"]),
            offset=int(data["o"]),
            last=str(data["k"]),
            after=list(after) if isinstance(after, list) else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadCursor("cursor: unreadable") from None
    if cursor.offset < 0:
        raise BadCursor("cursor: unreadable")
    return cursor


def digest(*parts: Any) -> str:
    """A short digest of what a cursor was made for (its filters), compared when it is used."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
