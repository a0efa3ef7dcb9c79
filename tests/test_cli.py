"""`ingest list | run | history | export` on a sample dataset, through the real CLI entry point."""

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

from ingest_assets.cli import main

DATASET = "REDDIT_HOMELAB_FEED"


def test_list_names_every_sample(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for dataset_id in (
        "BCRA_INFOMONDIA",
        "INDEC_IPC_DIVISIONES",
        "BCRA_MONETARIAS_CATALOG",
        DATASET,
    ):
        assert f"{dataset_id}\t" in out
    assert f"{DATASET}/raw,{DATASET}/parsed,{DATASET}/normalized,{DATASET}/published" in out


def test_run_history_export(capsys, tmp_path):
    assert main(["run", DATASET]) == 0
    out = capsys.readouterr().out
    assert f"{DATASET}/published" in out and '"rows_added": 25' in out
    assert main(["run", DATASET]) == 0
    assert '"rows_added": 0' in capsys.readouterr().out

    assert main(["history", DATASET]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("* ") and "partition=all" in lines[0]
    assert "added=25 revised=0" in lines[0]

    assert main(["export", DATASET]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 25 and len({r["id"] for r in rows}) == 25
    assert {"id", "title", "published", "key_hash", "version"} <= set(rows[0])

    out = tmp_path / "feed.parquet"
    assert main(["export", DATASET, "--format", "parquet", "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 25
    assert main(["export", DATASET, "--format", "jsonl"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[0]["id"].startswith("t3_")
    by_id = {r["id"]: r for r in rows}  # times are ISO 8601, the same in CSV and JSON lines
    assert all(r["published"] == by_id[r["id"]]["published"] for r in records)
    assert records[0]["published"].endswith("Z") and "T" in records[0]["published"]


def daily_files(tmp_path, monkeypatch) -> str:
    """A dataset of a file per day (the samples are snapshot sources, unpartitioned)."""
    configs, landing = tmp_path / "configs", tmp_path / "landing"
    configs.mkdir()
    landing.mkdir()
    for day, rows in {
        "2026-11-18": "1,a\n2,b\n",
        "2026-11-19": "3,c\n",
        "2026-11-20": "1,a\n",
    }.items():
        (landing / f"{day}.csv").write_text("id,name\n" + rows)
    (configs / "daily.yaml").write_text(
        "dataset_id: DAILY\n"
        f"source: {{kind: file, path: '{landing}/{{partition_start}}.csv', format: csv}}\n"
        "normalize: {primary_keys: [id]}\npartitions: {kind: daily, start: 2026-11-01}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    return "DAILY"


def test_run_rejects_a_partition_outside_the_definition(capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="REDDIT_HOMELAB_FEED is not partitioned"):
        main(["run", DATASET, "--partition", "2026-11-20"])
    daily = daily_files(tmp_path, monkeypatch)
    with pytest.raises(SystemExit, match="not a partition of DAILY"):
        main(["run", daily, "--partition", "1999-01-01"])


def test_unknown_dataset_and_version(capsys):
    with pytest.raises(SystemExit, match="no dataset 'NOPE'"):
        main(["history", "NOPE"])
    with pytest.raises(SystemExit, match="nothing published yet"):
        main(["export", DATASET])
    assert main(["run", DATASET]) == 0
    with pytest.raises(SystemExit, match="^ingest: dataset REDDIT_HOMELAB_FEED: no version '123'"):
        main(["export", DATASET, "--version", "123"])


def test_run_failure_exits_1_with_the_reason(capsys, tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "bad.yaml").write_text(
        "dataset_id: BAD\nsource: {kind: file, path: /nonexistent/x.csv, format: csv}\n"
        "normalize: {primary_keys: [id]}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    assert main(["run", "BAD"]) == 1
    assert "dataset BAD: source.path /nonexistent/x.csv: file not found" in capsys.readouterr().err


def test_backfill_runs_each_partition_once(capsys, tmp_path, monkeypatch):
    """A backfill over a range: each day reads its own file (2026-11-20 repeats a row of 18)."""
    with pytest.raises(SystemExit, match="REDDIT_HOMELAB_FEED is not partitioned"):
        main(["backfill", DATASET, "--start", "2026-11-18", "--end", "2026-11-20"])
    daily = daily_files(tmp_path, monkeypatch)
    assert main(["backfill", daily, "--start", "2026-11-18", "--end", "2026-11-20"]) == 0
    captured = capsys.readouterr()
    assert "3 of 3 partitions succeeded" in captured.err
    assert '[2026-11-18] DAILY/published: {"rows_added": 2' in captured.out
    assert '[2026-11-19] DAILY/published: {"rows_added": 1' in captured.out
    assert '[2026-11-20] DAILY/published: {"rows_added": 0' in captured.out
    assert main(["history", daily]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # the 20th repeated a row
    with pytest.raises(SystemExit, match="'2026-11-20' is after|is after --end"):
        main(["backfill", daily, "--start", "2026-11-20", "--end", "2026-11-18"])
    with pytest.raises(SystemExit, match="not a partition of DAILY"):
        main(["backfill", daily, "--start", "1990-01-01", "--end", "2026-11-18"])


def test_the_console_command_exits_with_mains_code_without_the_interpreters_teardown(tmp_path):
    """`ingest` ends with os._exit once its output is flushed (native pools torn down at exit
    aborted some runs after they had printed their result): the code and the output stand."""
    import subprocess
    import sys

    code = "import sys; from ingest_assets.cli import console; sys.argv = ['ingest', *sys.argv[1:]]; console()"
    missing = subprocess.run(
        [sys.executable, "-c", code, "history", "NOPE"], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and "ingest: no dataset 'NOPE'" in missing.stderr
    listed = subprocess.run(
        [sys.executable, "-c", code, "list"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and listed.stdout.strip(), listed.stderr
