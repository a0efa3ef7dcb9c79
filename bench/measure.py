"""What both benchmark commands share: timed fresh processes, medians, and the results file."""

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
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


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def save(out: Path, label: str, result: dict) -> None:
    """Keep every labelled run ("before", "after", ...) side by side in one JSON file."""
    runs = json.loads(out.read_text())["runs"] if out.exists() else {}
    runs[label] = {
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        **result,
    }
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"wrote {out} [{label}]")
