"""Bounded memory: a partition far larger than a batch goes raw -> published without any stage
holding it whole. Runs in a fresh process so the peaks measured are this pipeline's alone."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.bounded import OWN_PEAK_RSS_MB

SMALL, LARGE = 100_000, 400_000  # rows; the large file is ~160 MB of text
PADDING = "x" * 380  # a wide text column

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pyarrow as pa
    from ingest_assets import stages
    from ingest_resources.runtime import local_runtime
    from ingest_assets.contract import load_configs
    config = load_configs([sys.argv[1]])[0]
    rt = local_runtime(sys.argv[2])
    stages.run_raw(rt, config, "all")
    stages.run_parse(rt, config, "all")
    outcome = stages.run_normalize(rt, config, "all")
    result = stages.run_publish(rt, config, "all")
    print(json.dumps({
        "normalized": outcome.counts.normalized,
        "added": result.rows_added,
        "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
        "rss_peak_mb": OWN_PEAK_RSS_MB,
    }))
    """
).replace("OWN_PEAK_RSS_MB", OWN_PEAK_RSS_MB)


def _write_csv(path: Path, rows: int) -> int:
    with path.open("w") as out:
        out.write("series_code,obs_time,value,note\n")
        for row in range(rows):
            series, day = divmod(row, 4000)
            year, rest = divmod(day, 336)  # 12 months of 28 days: every date exists
            out.write(
                f"S{series:03d},{2000 + year}-{rest // 28 + 1:02d}-{rest % 28 + 1:02d},"
                f"{row * 0.5},{PADDING}{row}\n"
            )
    return path.stat().st_size


def _run(folder: Path, rows: int) -> tuple[dict, int]:
    folder.mkdir()
    csv_bytes = _write_csv(folder / "wide.csv", rows)
    config = folder / "wide.yaml"
    config.write_text(
        "dataset_id: WIDE\n"
        f"source: {{kind: file, path: {folder / 'wide.csv'}, format: csv, max_bytes: 1000000000}}\n"
        "normalize:\n"
        "  primary_keys: [series_code, obs_time]\n"
        "  time_column: obs_time\n"
        "  schema: {value: float64, obs_time: date}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(config), str(folder / "store")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["normalized"] == measured["added"] == rows
    return measured, csv_bytes


def test_memory_does_not_grow_with_the_partition(tmp_path):
    small, _ = _run(tmp_path / "small", SMALL)
    large, csv_bytes = _run(tmp_path / "large", LARGE)
    # 4x the rows: a stage holding the partition whole would need 4x the Arrow memory (and at
    # least the whole text); in batches the peak stays where it was.
    assert large["arrow_peak_mb"] < 1.5 * small["arrow_peak_mb"], (small, large)
    assert large["arrow_peak_mb"] < csv_bytes / 2**20, (large, csv_bytes)
    assert large["rss_peak_mb"] < 700, large
