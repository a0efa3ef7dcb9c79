"""Progress of a long stage: the rows and bytes it has handled so far, as it goes.

A stage's loops call `add(rows=..., bytes_=...)` (a no-op when nothing is tracking). The asset
that runs the stage tracks it (`tracking`): every INTERVAL_S seconds one line goes to its
report (the run's log, which the UI shows), and to the `ingest` command's terminal, where it
is a bar redrawn in place (a counter when the size is unknown); on a terminal that is not one
(a pipe, CI) the lines are plain. Pure: no Dagster.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TextIO

INTERVAL_S = 5.0  # between two progress lines of one stage
BAR_WIDTH = 24

Report = Callable[[str], None]


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@dataclass
class Console:
    """Where the `ingest` command shows progress: a stream, redrawn in place when it is a
    terminal; `plain` lines otherwise (None: none, the log lines already show)."""

    stream: TextIO
    plain: bool = True

    @property
    def tty(self) -> bool:
        return self.stream.isatty()


_console: Console | None = None


@contextmanager
def shown_on(console: Console) -> Iterator[None]:
    """Progress on `console` as well as in the run's log: the `ingest` command, while it runs
    (a Dagster run worker shows progress in the run's log only)."""
    global _console
    before, _console = _console, console
    try:
        yield
    finally:
        _console = before


@dataclass
class Progress:
    label: str
    report: Report
    total_bytes: int | None = None
    rows: int = 0
    bytes_: int = 0
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    drawn: bool = False

    def add(self, rows: int = 0, bytes_: int = 0) -> None:
        self.rows += rows
        self.bytes_ += bytes_
        now = time.monotonic()
        if now - self.last >= INTERVAL_S:
            self.last = now
            self._show(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-9)
        parts = []
        if self.bytes_:
            size = human_bytes(self.bytes_)
            of = f" of {human_bytes(self.total_bytes)}" if self.total_bytes else ""
            parts.append(f"{size}{of} ({human_bytes(self.bytes_ / elapsed)}/s)")
        if self.rows:
            parts.append(f"{self.rows:,} rows ({self.rows / elapsed:,.0f}/s)")
        return f"{self.label}: {', '.join(parts) or 'working'} after {elapsed:.0f} s"

    def _show(self, line: str) -> None:
        self.report(line)
        console = _console
        if console is None:
            return
        if console.tty:
            console.stream.write(f"\r{self._bar()} {line}\x1b[K")
            console.stream.flush()
            self.drawn = True
        elif console.plain:
            console.stream.write(line + "\n")
            console.stream.flush()

    def _bar(self) -> str:
        if not self.total_bytes:
            return "[" + "." * (int(time.monotonic() - self.started) % BAR_WIDTH + 1) + "]"
        done = min(BAR_WIDTH, BAR_WIDTH * self.bytes_ // self.total_bytes)
        return "[" + "#" * done + " " * (BAR_WIDTH - done) + "]"

    def close(self) -> None:
        if self.drawn and _console is not None:  # the bar's line is left for the summary
            _console.stream.write("\r\x1b[K")
            _console.stream.flush()


_current: ContextVar[Progress | None] = ContextVar("ingest_progress", default=None)


def add(rows: int = 0, bytes_: int = 0) -> None:
    """Count rows or bytes for the stage being tracked, if any."""
    progress = _current.get()
    if progress is not None:
        progress.add(rows, bytes_)


def expect_bytes(total: int | None) -> None:
    """The size of what is being read, when it is known (a Content-Length, a file's size)."""
    progress = _current.get()
    if progress is not None and total:
        progress.total_bytes = total


@contextmanager
def tracking(label: str, report: Report) -> Iterator[Progress]:
    progress = Progress(label, report)
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
        progress.close()
