"""A partition reads its own data: `{partition_start}` / `{partition_end}` (with a strftime spec)
in source.path, key and url, on local files, S3 (moto) and HTTP; a missing file is a clear error,
or with `source.missing: skip` an empty partition; placeholders checked by validate; the snapshot
rule for time partitions. Published rows are checked against the source files, read with `csv`."""

import csv
import io

import dagster as dg
import pytest

from ingest_assets import eventstore, stages
from ingest_assets.contract import ConfigProblems, parse_config
from ingest_assets.orchestration.factory import dataset_assets
from ingest_resources.http import SourceMissing
from ingest_resources.resource import IngestResource

DAYS = {
    "2026-03-01": "id,value\n1,10\n2,20\n",
    "2026-03-02": "id,value\n3,30\n",
    "2026-03-03": "id,value\n1,11\n4,40\n",  # id 1 revised
}


def config_of(source: dict, **extra):
    return parse_config(
        {
            "dataset_id": "DAILY_FILES",
            "source": {"format": "csv", **source},
            "normalize": {"primary_keys": ["id"], "schema": {"id": "int64", "value": "float64"}},
            "partitions": {"kind": "daily", "start": "2026-03-01"},
            **extra,
        },
        "daily.yaml",
    )


def run(runtime, config, partition):
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    stages.run_normalize(runtime, config, partition)
    return stages.run_publish(runtime, config, partition)


def expected(days) -> dict[int, float]:
    """The latest value per id, read from the source texts with the csv module."""
    latest: dict[int, float] = {}
    for day in sorted(days):
        for row in csv.DictReader(io.StringIO(DAYS[day])):
            latest[int(row["id"])] = float(row["value"])
    return latest


def published(runtime, config) -> dict[int, float]:
    table = eventstore.published_table(runtime.store, config)
    return dict(zip(table["id"].to_pylist(), table["value"].to_pylist(), strict=True))


def test_each_partition_reads_its_own_local_file(runtime, tmp_path):
    for day, text in DAYS.items():
        folder = tmp_path / "landing" / day.replace("-", "/")
        folder.mkdir(parents=True)
        (folder / "data.csv").write_text(text)
    template = str(tmp_path / "landing" / "{partition_start:%Y/%m/%d}" / "data.csv")
    config = config_of({"kind": "file", "path": template})
    first = run(runtime, config, "2026-03-01")
    assert first.rows_added == 2 and first.manifest.inputs["source"].endswith("2026/03/01/data.csv")
    assert published(runtime, config) == expected(["2026-03-01"])
    run(runtime, config, "2026-03-03")
    run(runtime, config, "2026-03-02")
    assert published(runtime, config) == expected(DAYS)
    again = run(runtime, config, "2026-03-02")  # a re-run adds nothing
    assert not again.committed and again.rows_added == 0


def test_a_missing_file_is_a_clear_error_or_an_empty_partition(runtime, tmp_path):
    (tmp_path / "2026-03-01.csv").write_text(DAYS["2026-03-01"])
    template = str(tmp_path / "{partition_start}.csv")
    config = config_of({"kind": "file", "path": template})
    with pytest.raises(SourceMissing, match=r"DAILY_FILES: source.path .*2026-03-02.csv: file not"):
        stages.run_raw(runtime, config, "2026-03-02")
    skipping = config_of({"kind": "file", "path": template, "missing": "skip"})
    run(runtime, skipping, "2026-03-01")
    info = stages.run_raw(runtime, skipping, "2026-03-02")
    assert info.missing and "2026-03-02.csv" in info.source
    assert "partition skipped" in stages.skipped(runtime.store, skipping, "2026-03-02")
    assert published(runtime, config) == expected(["2026-03-01"])  # nothing unpublished


def test_a_skipped_partition_through_dagster_records_no_version(tmp_path):
    (tmp_path / "2026-03-01.csv").write_text(DAYS["2026-03-01"])
    config = config_of(
        {"kind": "file", "path": str(tmp_path / "{partition_start}.csv"), "missing": "skip"}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            dataset_assets(config),
            instance=instance,
            partition_key="2026-03-02",
            resources={"ingest": IngestResource.from_env()},
        )
    assert result.success
    metadata = {
        e.event_specific_data.materialization.asset_key.path[-1]: {
            k: v.value for k, v in e.event_specific_data.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }
    assert set(metadata) == {"raw", "parsed", "normalized", "published"}
    assert "2026-03-02.csv: file not found" in metadata["published"]["skipped"]
    assert metadata["published"]["new_version"] is False
    runtime = IngestResource.from_env().runtime()
    assert eventstore.read_current(runtime.store, "DAILY_FILES")[0] is None


def test_each_partition_reads_its_own_s3_object(aws, runtime):
    s3 = aws["s3"]
    for day, text in DAYS.items():
        s3.put_object(Bucket=aws["bucket"], Key=f"exports/dt={day}/part-0.csv", Body=text.encode())
    config = config_of(
        {"kind": "s3", "bucket": aws["bucket"], "key": "exports/dt={partition_start}/part-0.csv"}
    )
    for day in ("2026-03-01", "2026-03-02"):
        run(runtime, config, day)
    assert published(runtime, config) == expected(["2026-03-01", "2026-03-02"])
    as_url = config_of(
        {"kind": "s3", "url": f"s3://{aws['bucket']}/exports/dt={{partition_start}}/part-0.csv"}
    )
    run(runtime, as_url, "2026-03-03")
    assert published(runtime, config) == expected(DAYS)
    with pytest.raises(SourceMissing, match=r"dt=2026-03-04/part-0.csv: NoSuchKey"):
        stages.run_raw(runtime, config, "2026-03-04")


def test_each_partition_reads_its_own_url(httpserver, runtime):
    for day, text in DAYS.items():
        httpserver.expect_request(f"/daily/{day.replace('-', '')}.csv").respond_with_data(text)
    url = httpserver.url_for("/daily/") + "{partition_start:%Y%m%d}.csv"
    config = config_of({"kind": "http", "url": url})
    for day in DAYS:
        run(runtime, config, day)
    assert published(runtime, config) == expected(DAYS)
    httpserver.expect_request("/daily/20260309.csv").respond_with_data("gone", status=404)
    skipping = config_of({"kind": "http", "url": url, "missing": "skip"})
    assert stages.run_raw(runtime, skipping, "2026-03-09").missing  # 404 -> skipped


@pytest.mark.parametrize(
    ("source", "partitions", "field", "message"),
    [
        (
            {"kind": "file", "path": "d/{partition_day}.csv"},
            None,
            "source.path",
            "unknown placeholder '{partition_day}'",
        ),
        (
            {"kind": "file", "path": "d/{partition_start:%Q}.csv"},
            None,
            "source.path",
            "'%Q' is not a strftime spec",
        ),
        (
            {"kind": "file", "path": "d/{partition_start:day}.csv"},
            None,
            "source.path",
            "not a strftime spec",
        ),
        (
            {"kind": "s3", "bucket": "b", "key": "d/{since}.csv"},
            None,
            "source.key",
            "unknown placeholder '{since}'",
        ),
        (
            {"kind": "file", "path": "d/{partition_start}.csv"},
            {"kind": "none"},
            "partitions.kind",
            "need time partitions",
        ),
        (
            {"kind": "file", "path": "d/whole.csv"},
            {"kind": "daily", "start": "2026-01-01"},
            "partitions.kind",
            "each would read the same whole source",
        ),
        (
            {"kind": "file", "path": "d/{partition_start}.csv"},
            {"kind": "daily", "start": "2026-01-01", "snapshot": True},
            "partitions.snapshot",
            "it is not a snapshot",
        ),
        (
            {"kind": "file", "glob": "landing/{partition_start:%Y-W%W}/*.csv"},
            {"kind": "weekly", "start": "2026-01-05"},
            "source.glob",
            "week numbers (%U %W %V %G) do not give",
        ),
        (
            {"kind": "file", "glob": "landing/*.csv"},
            {"kind": "daily", "start": "2026-01-01", "snapshot": True},
            "partitions.kind",
            "partitions of a landing zone, but its glob names no {partition_start}",
        ),
        (
            {"kind": "s3", "url": "s3://b/prefix/", "glob": "*.csv"},
            {"kind": "none"},
            "source.url",
            "source.glob and source.url both name files",
        ),
    ],
    ids=[
        "unknown-name",
        "unknown-directive",
        "no-directive",
        "since-in-key",
        "unpartitioned",
        "no-placeholder",
        "snapshot-with-placeholder",
        "landing-weeks",
        "landing-snapshot",
        "s3-url-and-glob",
    ],
)
def test_validate_refuses_bad_placeholders_naming_the_field(source, partitions, field, message):
    data = {
        "dataset_id": "BAD",
        "source": {"format": "csv", **source},
        "normalize": {"primary_keys": ["id"]},
        "partitions": partitions or {"kind": "daily", "start": "2026-01-01"},
    }
    with pytest.raises(ConfigProblems) as info:
        parse_config(data, "bad.yaml")
    [problem] = info.value.problems
    assert problem.field == field and message in problem.message


def test_a_snapshot_source_is_accepted_when_declared():
    config = config_of(
        {"kind": "file", "path": "d/whole.csv"},
        partitions={"kind": "daily", "start": "2026-01-01", "snapshot": True},
    )
    assert config.partitions.snapshot and not config.source.partitioned_location


def test_a_files_dataset_takes_no_schedule_and_needs_a_glob():
    base = {
        "dataset_id": "FILES",
        "normalize": {"primary_keys": ["id"]},
        "partitions": {"kind": "files"},
    }
    cases = [
        (
            {
                "source": {"kind": "file", "glob": "in/*.csv", "format": "csv"},
                "schedule": "0 6 * * *",
            },
            "schedule",
            "sensor.enabled",
        ),
        (
            {"source": {"kind": "file", "path": "in/a.csv", "format": "csv"}},
            "partitions.kind",
            "set source.glob",
        ),
    ]
    for extra, field, message in cases:
        with pytest.raises(ConfigProblems) as info:
            parse_config({**base, **extra}, "files.yaml")
        [problem] = info.value.config_problems
        assert problem.field == field and message in problem.message
