"""The API's settings, read from the environment once, when the app is made:

- INGEST_API_KEY: when set, every endpoint but /health (and the docs) needs
  `Authorization: Bearer <key>` or `X-API-Key: <key>`; it also signs the cursors;
- INGEST_API_RATE (requests a second per client address, default 50; 0: no limit) and
  INGEST_API_BURST (the bucket's size, default 100);
- INGEST_API_CACHE_MB: the replayed months kept in memory (default 256);
- INGEST_API_VERIFY: `chain` (default: every event file's size and sha256, checked in the
  background once per published version), `full` (the derived files too, as `ingest verify`),
  or `off`.

The store, the warehouse and the configs come from the same variables as every command
(INGEST_STORE_ROOT, INGEST_STORE_URL, INGEST_POSTGRES_URL, INGEST_CONFIG_DIR)."""

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ingest_resources.errors import ConfigError

VerifyMode = Literal["chain", "full", "off"]
VERIFY_MODES: tuple[VerifyMode, ...] = ("chain", "full", "off")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError([f"{name}={text!r}: expected a number"]) from None
    if value < 0:
        raise ConfigError([f"{name}={text!r}: expected a number >= 0"])
    return value


@dataclass(frozen=True)
class ApiSettings:
    api_key: str | None = None
    rate: float = 50.0  # requests a second per client address; 0: no limit
    burst: float = 100.0
    cache_bytes: int = 256 << 20
    verify: VerifyMode = "chain"
    # signs cursors: the API key when there is one (cursors outlive a restart), else random
    cursor_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ApiSettings":
        env = os.environ if environ is None else environ
        key = env.get("INGEST_API_KEY", "").strip() or None
        text = env.get("INGEST_API_VERIFY", "chain").strip() or "chain"
        found = [mode for mode in VERIFY_MODES if mode == text]
        if not found:
            raise ConfigError([f"INGEST_API_VERIFY={text!r}: expected one of {VERIFY_MODES}"])
        verify = found[0]
        return cls(
            api_key=key,
            rate=_number(env, "INGEST_API_RATE", 50.0),
            burst=max(1.0, _number(env, "INGEST_API_BURST", 100.0)),
            cache_bytes=int(_number(env, "INGEST_API_CACHE_MB", 256) * (1 << 20)),
            verify=verify,
            cursor_key=(b"ingest-cursor:" + key.encode()) if key else secrets.token_bytes(32),
        )
