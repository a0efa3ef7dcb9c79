"""Run an attack in a child process under an address-space limit and a time limit, so that a
regression fails the test instead of taking the machine: what it printed, its exit code, how
long it took and its peak RSS."""

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A child program's own peak RSS in MB, as an expression to write into its code: the VmHWM of
# its address space. (ru_maxrss would also count the pages of the pytest process it was forked
# from, which grow through a long session: a child's peak then reads as the parent's.)
OWN_PEAK_RSS_MB = (
    "int(next(line.split()[1] for line in open('/proc/self/status') "
    "if line.startswith('VmHWM:'))) / 1024"
)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _limit(memory_mb: int):
    def apply() -> None:
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_bounded(
    args: list[str],
    memory_mb: int = 2048,
    timeout_s: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Outcome:
    """`args` run with this interpreter's venv first on PATH (`ingest ...`, or
    `python -c ...`), the repository first on PYTHONPATH. A child over `timeout_s` is killed
    and the test fails."""
    environment = {**os.environ, **(env or {})}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [environment.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        # prlimit execs the command in the same process (spawned, not forked from this one:
        # a fork would count the parent's pages in the child's peak RSS)
        limited = shutil.which("prlimit")
        process = subprocess.Popen(
            [limited, f"--as={memory_mb << 20}", "--", *args] if limited else args,
            stdout=out,
            stderr=err,
            env=environment,
            cwd=cwd,
            preexec_fn=None if limited else _limit(memory_mb),
        )
        timer = threading.Timer(timeout_s, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # (reaped here: its own peak RSS)
        finally:
            timer.cancel()
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if seconds >= timeout_s:
        raise AssertionError(f"{args[:3]} still running after {timeout_s} s: {stderr[-2000:]}")
    return Outcome(process.returncode, stdout, stderr, seconds, usage.ru_maxrss / 1024)


def python_bounded(code: str, **kwargs) -> Outcome:
    return run_bounded([sys.executable, "-c", code], **kwargs)
