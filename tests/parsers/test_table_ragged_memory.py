"""A large CSV with rows that do not fit the header still streams in bounded memory and time:
the short and long rows are handled block by block, as Arrow reports them (issue 17). Runs in
a fresh process so the peaks measured are this read's alone."""

import json
import subprocess
import sys
import textwrap

from tests.bounded import OWN_PEAK_RSS_MB

ROWS = 400_000  # ~80 MB of text

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import pyarrow as pa
    from ingest_assets.contract import parse_config
    from ingest_assets.parsers import ParseContext
    from ingest_assets.parsers.base import parse_batches
    path, trailing, rows = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
    pad = "x" * 200
    with path.open("w") as out:
        out.write("id,day,value,note\\n")
        for i in range(rows):
            line = f"{i},2024-01-{i % 28 + 1:02d},{i * 0.5},{pad}{i}"
            if i % 10 == 3:
                line = line.rsplit(",", 1)[0]  # a field short
            elif i % 20 == 7:
                line += ",extra"  # a field too many
            out.write(line + ("," if trailing else "") + "\\n")
    config = parse_config(
        {"dataset_id": "BIG", "source": {"kind": "file", "path": str(path), "format": "csv",
         "max_bytes": 10**9}, "normalize": {"primary_keys": ["id"]}}, "big.yaml")
    started = time.monotonic()
    read = rejected = short = 0
    for batch in parse_batches(path, ParseContext(config, str(path))):
        read += batch.num_rows
        rejected += batch.num_rows - batch.column("_rejected").null_count
        short += batch.column("note").null_count
    print(json.dumps({
        "rows": read, "rejected": rejected, "short": short,
        "seconds": time.monotonic() - started, "mb": path.stat().st_size / 2**20,
        "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
        "rss_peak_mb": OWN_PEAK_RSS_MB,
    }))
    """
).replace("OWN_PEAK_RSS_MB", OWN_PEAK_RSS_MB)


def _run(tmp_path, trailing: bool) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(tmp_path / "big.csv"),
            "1" if trailing else "0",
            str(ROWS),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_ragged_rows_stream_in_bounded_memory_and_time(tmp_path):
    for trailing in (False, True):
        measured = _run(tmp_path, trailing)
        assert measured["rows"] == ROWS, measured
        # a field too many (i % 20 == 7): rejected, data null; a field short (i % 10 == 3):
        # rejected too, but where every row ends with an empty field: there it reads as a row
        # without that field, its `note` empty
        short, extra = ROWS // 10, ROWS // 20
        assert measured["rejected"] == (extra if trailing else short + extra), measured
        assert measured["short"] == short + extra, measured
        # a whole read would hold the file's text and more; in batches Arrow holds a few
        assert measured["arrow_peak_mb"] < min(measured["mb"], 100), measured
        assert measured["rss_peak_mb"] < 600, measured
        assert measured["seconds"] < 60, measured
