"""The real-file corpus (tests/fixtures/real/, issue 17) as a report: each file -> published
exactly | refused clearly | wrong (the first difference) | crashed, and the totals.

    .venv/bin/python bench/real_files.py              # a table, one line per file
    .venv/bin/python bench/real_files.py --markdown   # the same as a Markdown table
    .venv/bin/python bench/real_files.py FILE ...     # only these files

The cases and the comparison are those of tests/test_real_files.py; each file runs in a store
of its own, bounded to 60 s (a case that hangs is reported as crashed)."""

import argparse
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_real_files import CRASHED, EXACT, REFUSED, WRONG, case_files, check  # noqa: E402

LIMIT_S = 60


class CaseTimeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise CaseTimeout(f"no outcome within {LIMIT_S} s")


def run(file: str) -> tuple[str, str, float]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="real_files_") as workdir:
        os.environ["INGEST_STORE_ROOT"] = str(Path(workdir) / "store")
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(LIMIT_S)
        try:
            status, detail = check(file, Path(workdir))
        except CaseTimeout as exc:
            status, detail = CRASHED, str(exc)
        finally:
            signal.alarm(0)
    return status, detail.replace(f"{REPO}/", ""), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="only these files of the corpus")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    os.environ["INGEST_PROJECT_ROOT"] = str(REPO)
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="real_files_dagster_"))
    files = args.files or case_files()
    results = []
    started = time.monotonic()
    for file in files:
        status, detail, seconds = run(file)
        results.append((file, status, detail, seconds))
        if not args.markdown:
            print(f"{file:58} {status:18} {seconds:5.1f}s  {detail}", flush=True)
    totals = Counter(status for _, status, _, _ in results)
    if args.markdown:
        print("| file | outcome | detail |\n|---|---|---|")
        for file, status, detail, _ in results:
            print(f"| `{file}` | {status} | {detail.replace('|', '/')} |")
        print()
    summary = ", ".join(f"{totals[s]} {s}" for s in (EXACT, REFUSED, WRONG, CRASHED))
    print(f"{len(results)} files: {summary} ({time.monotonic() - started:.0f} s)")
    return 0 if totals[WRONG] + totals[CRASHED] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
