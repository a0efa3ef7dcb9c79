"""Generate the warehouse benchmark's CSV: 200 series x 5,000 days = 1,000,000 rows.

Columns: series_code, obs_time (a local date), value (about 2% blank), unit, source_agency,
comment. The rows go series by series. `--new-fraction 0.01` adds 1% new rows (later dates) to
every series, each after its series' rows (the incremental phase); `--appended-fraction 0.01`
then adds 1% more at the end of the file, day by day for all series, as a daily export that
grows at its end would (the file without them is the start of the file with them).
"""

import argparse
import datetime as dt
import random
from pathlib import Path

HEADER = "series_code,obs_time,value,unit,source_agency,comment\n"
START = dt.date(2010, 1, 1)


class _Series:
    """One series' random walk: the same values whatever the file holds around them."""

    def __init__(self, index: int, seed: int):
        self.rng = random.Random(seed * 1_000_003 + index)
        self.code = f"SER{index:04d}"
        self.level = self.rng.uniform(10, 1000)
        self.unit = ("ARS", "USD", "index", "%")[index % 4]

    def row(self, day: int) -> str:
        self.level *= 1 + self.rng.gauss(0, 0.01)
        value = "" if self.rng.random() < 0.02 else f"{self.level:.4f}"
        when = (START + dt.timedelta(days=day)).isoformat()
        return f"{self.code},{when},{value},{self.unit},BENCH,row {day}\n"


def write(
    path: Path, series: int, days: int, extra_days: int, appended_days: int = 0, seed: int = 7
) -> int:
    rows = 0
    walks = [_Series(index, seed) for index in range(series)]
    with path.open("w") as out:
        out.write(HEADER)
        for walk in walks:
            for day in range(days + extra_days):
                out.write(walk.row(day))
                rows += 1
        for day in range(days + extra_days, days + extra_days + appended_days):
            for walk in walks:
                out.write(walk.row(day))
                rows += 1
    return rows


def workload(folder: Path, series: int, days: int = 5000) -> dict[str, Path]:
    """The benchmarks' files: "base"; "plus", 1% new rows after each series' rows; and
    "appended", those and 1% more rows appended at the end of the file."""
    files = {
        "base": (folder / "obs.csv", 0),
        "plus": (folder / "obs_plus1pct.csv", 0),
        "appended": (folder / "obs_plus1pct_appended1pct.csv", round(days * 0.01)),
    }
    for name, (path, appended) in files.items():
        extra = 0 if name == "base" else round(days * 0.01)
        rows = write(path, series, days, extra, appended)
        print(f"wrote {rows:,} rows to {path}", flush=True)
    return {name: path for name, (path, _) in files.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=5000)
    parser.add_argument(
        "--new-fraction", type=float, default=0.0, help="extra rows as a fraction (0.01 = 1%%)"
    )
    parser.add_argument(
        "--appended-fraction",
        type=float,
        default=0.0,
        help="rows added at the end of the file, as a fraction (0.01 = 1%%)",
    )
    args = parser.parse_args()
    extra = round(args.days * args.new_fraction)
    appended = round(args.days * args.appended_fraction)
    rows = write(args.out, args.series, args.days, extra, appended)
    print(f"wrote {rows:,} rows to {args.out}")


if __name__ == "__main__":
    main()
