"""What both benchmark commands share: timed fresh processes, medians, and the results file."""

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent


def timed(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one fresh process and its standard output; fails loudly on an error."""
    started = time.perf_counter()
    done = subprocess.run(
        list(command), env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return wall, done.stdout


def python_path() -> str:
    """bench/ first (the floor modules), then any PYTHONPATH given (e.g. another checkout)."""
    return os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(s[key] for s in samples), 3) for key in samples[0]}


def ratio(value: float, floor: float) -> float:
    return round(value / floor, 2) if floor else float("nan")


def code_version(env: Mapping[str, str]) -> str:
    """The commit of the Ingest code the measured processes import (PYTHONPATH may point them
    at another checkout), with "+changes" if its code differs from that commit."""
    _, out = timed(  # not from REPO: `python -c` puts its working directory first on sys.path
        [str(BIN / "python"), "-c", "import ingest_assets; print(ingest_assets.__file__)"],
        env,
        Path(tempfile.gettempdir()),
    )
    checkout = Path(out.strip()).parent.parent
    return f"{commit_of(checkout)} ({checkout})"


def commit_of(checkout: Path = REPO) -> str:
    """The short commit of a checkout, with "+changes" if its Ingest code differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True).stdout

    dirty = git("status", "--porcelain", "--", "ingest_assets", "ingest_resources").strip()
    return f"{git('rev-parse', '--short', 'HEAD').strip()}{'+changes' if dirty else ''}"


def save(out: Path, label: str, result: dict, env: Mapping[str, str]) -> None:
    """Keep every labelled run ("before", "after", ...) side by side in one JSON file."""
    runs = json.loads(out.read_text())["runs"] if out.exists() else {}
    runs[label] = {
        "date": dt.date.today().isoformat(),
        "code": code_version(env),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        **result,
    }
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"wrote {out} [{label}]")
