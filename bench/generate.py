"""Generate the warehouse benchmark's CSV: 200 series x 5,000 days = 1,000,000 rows.

Columns: series_code, obs_time (a local date), value (about 2% blank), unit, source_agency,
comment. `--new-fraction 0.01` appends 1% new rows (later dates) for the incremental phase.
"""

import argparse
import datetime as dt
import random
from pathlib import Path


def write(path: Path, series: int, days: int, extra_days: int, seed: int = 7) -> int:
    start = dt.date(2010, 1, 1)
    rows = 0
    with path.open("w") as out:
        out.write("series_code,obs_time,value,unit,source_agency,comment\n")
        for s in range(series):
            rng = random.Random(seed * 1_000_003 + s)  # per series: extra days only append
            code = f"SER{s:04d}"
            level = rng.uniform(10, 1000)
            unit = ("ARS", "USD", "index", "%")[s % 4]
            for d in range(days + extra_days):
                level *= 1 + rng.gauss(0, 0.01)
                value = "" if rng.random() < 0.02 else f"{level:.4f}"
                out.write(
                    f"{code},{(start + dt.timedelta(days=d)).isoformat()},{value},{unit},BENCH,row {d}\n"
                )
                rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=5000)
    parser.add_argument(
        "--new-fraction", type=float, default=0.0, help="extra rows as a fraction (0.01 = 1%%)"
    )
    args = parser.parse_args()
    extra = round(args.days * args.new_fraction)
    rows = write(args.out, args.series, args.days, extra)
    print(f"wrote {rows:,} rows to {args.out}")


if __name__ == "__main__":
    main()
