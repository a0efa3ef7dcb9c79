"""The read API's small parts on their own: signed cursors, the byte-bounded cache, the token
bucket, the settings read from the environment."""

import pytest

from ingest_api.cache import ByteLru
from ingest_api.cursor import BadCursor, Cursor, decode, encode
from ingest_api.ratelimit import Buckets
from ingest_api.settings import ApiSettings
from ingest_resources.errors import ConfigError, IngestError

KEY = b"k" * 32


def test_a_cursor_round_trips_and_refuses_any_change():
    cursor = Cursor("DS", "20260101T000000000000Z", "f", "2024-01", 7, "ab", None)
    text = encode(cursor, KEY)
    assert decode(text, KEY) == cursor
    body, mac = text.split(".")
    for forged in (
        f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{mac}",
        f"{body}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{body}",
        "",
        "x" * 5000,
        "%%%.%%%",
    ):
        with pytest.raises(BadCursor):
            decode(forged, KEY)
    with pytest.raises(BadCursor, match="signature"):
        decode(text, b"another key")
    assert issubclass(BadCursor, IngestError)


def test_the_cache_keeps_what_fits_its_bytes_least_recently_used_first():
    cache: ByteLru[str] = ByteLru(10)
    made = []

    def get(key: str, size: int) -> str:
        return cache.get(key, lambda: made.append(key) or key, lambda _: size)

    get("a", 4), get("b", 4), get("a", 4)  # a is the most recently used
    get("c", 4)  # 12 > 10: b goes
    assert list(cache.items) == ["a", "c"] and cache.bytes == 8
    get("b", 4)
    assert made == ["a", "b", "c", "b"]
    get("huge", 11)  # larger than the whole cache: returned, not kept
    assert "huge" not in cache.items and cache.bytes <= 10


def test_the_token_bucket_refills_at_its_rate():
    now = [0.0]
    buckets = Buckets(rate=2, burst=3, clock=lambda: now[0])
    assert [buckets.take("x") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("x") == pytest.approx(0.5)
    assert buckets.take("y") == 0  # per client
    now[0] = 0.5
    assert buckets.take("x") == 0
    assert buckets.take("x") > 0


def test_settings_from_the_environment():
    found = ApiSettings.from_env(
        {"INGEST_API_KEY": " k ", "INGEST_API_RATE": "5", "INGEST_API_CACHE_MB": "1"}
    )
    assert (found.api_key, found.rate, found.cache_bytes, found.verify) == (
        "k",
        5,
        1 << 20,
        "chain",
    )
    assert ApiSettings.from_env({}).api_key is None
    assert ApiSettings.from_env({"INGEST_API_KEY": "k"}).cursor_key == (
        ApiSettings.from_env({"INGEST_API_KEY": "k"}).cursor_key
    )  # cursors outlive a restart when a key is set
    with pytest.raises(ConfigError, match="INGEST_API_RATE='fast': expected a number"):
        ApiSettings.from_env({"INGEST_API_RATE": "fast"})
    with pytest.raises(ConfigError, match="INGEST_API_VERIFY"):
        ApiSettings.from_env({"INGEST_API_VERIFY": "sometimes"})
