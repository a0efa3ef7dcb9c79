"""dlt's filesystem source on a landing zone, for bench/landing_bench.py: `filesystem(bucket_url,
file_glob) | read_csv()`, incremental on `modification_date`, into DuckDB; one run, printed as
JSON (wall time, rows loaded, peak memory). Run with a Python that has dlt[filesystem,duckdb]
1.31 (the `bench` extra):

    python bench/landing_dlt.py LANDING_FOLDER WORK_FOLDER
"""

import json
import os
import resource
import sys
import time


def main() -> None:
    landing, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    os.environ["DLT_DATA_DIR"] = os.path.join(work, "data")
    os.environ["DLT_PROJECT_DIR"] = work
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    import dlt
    from dlt.sources.filesystem import filesystem, read_csv

    started = time.perf_counter()
    files = filesystem(bucket_url=f"file://{landing}", file_glob="**/*.csv")
    files.apply_hints(incremental=dlt.sources.incremental("modification_date"))
    pipeline = dlt.pipeline(
        pipeline_name="landing_bench",
        destination=dlt.destinations.duckdb(os.path.join(work, "bench.duckdb")),
        dataset_name="landed",
        pipelines_dir=os.path.join(work, "pipelines"),
    )
    info = pipeline.run((files | read_csv()).with_name("rows"), write_disposition="append")
    seconds = time.perf_counter() - started
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "rows_loaded": int(counts.get("rows", 0)),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "loads": len(info.loads_ids),
            }
        )
    )


if __name__ == "__main__":
    main()
