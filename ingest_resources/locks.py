"""One writer per dataset: a lock with a TTL around publish.

The local lock is an OS file lock (released by the kernel if the holder dies, so the TTL is
only how long a waiter waits). A DynamoDB lock with the same interface serves production.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


class LockBusy(Exception):
    """Another writer holds the dataset lock."""


class LocalLocks:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    @contextmanager
    def hold(self, key: str, ttl_s: float, wait_s: float | None = None) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        lock = FileLock(str(self.directory / f"{name}.lock"))
        try:
            lock.acquire(timeout=ttl_s if wait_s is None else wait_s)
        except Timeout:
            raise LockBusy(f"lock {key!r} is held by another writer") from None
        try:
            yield
        finally:
            lock.release()
