"""Threads for the event store's I/O and encoding, and the fault points tests kill it at."""

import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

FAULT_ENV = "INGEST_FAULT_INJECT"

# Parquet encodings at once: each holds a month of rows (up to EventWriter.GROUP_BYTES, twice
# when it is sorted), so more cores do not mean more memory past four
CPU_THREADS = min(4, max(2, os.cpu_count() or 2))

Item = TypeVar("Item")


def in_parallel(function: Callable[[Item], None], items: list[Item], workers: int) -> None:
    """Run `function` over `items` on `workers` threads; the first error is raised."""
    if len(items) <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(function, item) for item in items]:
            future.result()


def failpoint(name: str) -> None:
    """Crash here if INGEST_FAULT_INJECT names this point (tests kill a publisher mid-way), or
    freeze (SIGSTOP) if it names it with `:pause` (tests freeze a writer past its lease)."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted == name:
        os._exit(137)
    if wanted == f"{name}:pause":
        os.kill(os.getpid(), signal.SIGSTOP)
