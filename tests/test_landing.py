"""Landing zones: many files, each ingested once. Local folders and S3 (moto); `files` partitions
(through `ingest run` and Dagster) and time partitions with placeholders in the glob; a new,
changed, renamed and deleted file; a crash mid-run; two sensor ticks. Published rows are checked
against the source files read with the `csv` module."""

import csv
import gzip
import io
import os
from pathlib import Path

import dagster as dg
import pytest

from ingest_assets import eventstore, stages
from ingest_assets.cli import main
from ingest_assets.contract import parse_config
from ingest_assets.eventstore.files import published_ledger
from ingest_assets.orchestration.landing_sensor import landing_sensor
from ingest_assets.orchestration.partitions import files_partitions_name
from ingest_assets.stages import landing
from ingest_resources.http import FetchError, SourceMissing


def make(source: dict, **extra):
    return parse_config(
        {
            "dataset_id": "LANDING",
            "source": {"format": "csv", **source},
            "normalize": {"primary_keys": ["id"], "schema": {"id": "int64", "value": "float64"}},
            **extra,
        },
        "landing.yaml",
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def expected(files) -> dict[int, float]:
    """The latest value per id over `files` (paths or (name, text)), in order, read with csv."""
    latest: dict[int, float] = {}
    for item in files:
        text = item.read_text() if isinstance(item, Path) else item
        for row in csv.DictReader(io.StringIO(text)):
            latest[int(row["id"])] = float(row["value"])
    return latest


def published(runtime, config) -> dict[int, float]:
    table = eventstore.published_table(runtime.store, config)
    if table is None:
        return {}
    return dict(zip(table["id"].to_pylist(), table["value"].to_pylist(), strict=True))


def run(runtime, config, partition="all", files=None):
    info = stages.run_raw(runtime, config, partition, files=files)
    if info.missing:
        return None
    stages.run_parse(runtime, config, partition)
    stages.run_normalize(runtime, config, partition)
    return stages.run_publish(runtime, config, partition)


def test_new_changed_renamed_and_deleted_files(runtime, tmp_path):
    zone = tmp_path / "landing"
    a = write(zone, "2026/12/a.csv", "id,value\n1,10\n2,20\n")
    b = write(zone, "b.csv", "id,value\n3,30\n")
    write(zone, "notes.txt", "not matched by the glob")
    config = make({"kind": "file", "glob": str(zone / "**/*.csv")})
    first = run(runtime, config)
    assert first.rows_added == 3 and first.manifest.inputs["files"]["count"] == 2
    assert published(runtime, config) == expected([a, b])
    assert run(runtime, config) is None  # nothing new: recorded as an empty partition
    assert "no new file" in stages.skipped(runtime.store, config, "all")

    c = write(zone, "c.csv", "id,value\n4,40\n")  # a new file: only it is read
    assert run(runtime, config).rows_added == 1
    write(zone, "copy/of-a.csv", a.read_text())  # a renamed copy adds nothing, read or not
    assert run(runtime, config) is None
    a.write_text("id,value\n1,11\n2,20\n")  # changed: read again, its rows through the anti-join
    os.utime(a, ns=(1, 1))
    changed = run(runtime, config)
    assert (changed.rows_added, changed.rows_revised, changed.rows_repeated) == (0, 1, 1)
    b.unlink()  # deleted: nothing unpublished
    assert run(runtime, config) is None
    assert published(runtime, config) == expected(["id,value\n3,30\n", c, a])
    ledger = published_ledger(runtime.store, "LANDING")
    assert sorted(ledger.entries) == ["2026/12/a.csv", "b.csv", "c.csv"]
    # the manifest holds a pointer, not the files: the same size whatever their number
    assert set(changed.manifest.inputs["files"]) == {"key", "sha256", "count"}
    assert eventstore.verify(runtime.store, config).problems == []
    runtime.store.delete_prefix(changed.manifest.inputs["files"]["key"])
    [problem] = eventstore.verify(runtime.store, config).problems
    assert "files ledger" in problem and "is missing" in problem


def test_a_local_zone_of_zip_and_gzip_files_is_read_as_it_lands(runtime, tmp_path):
    import zipfile

    zone = tmp_path / "drops"
    texts = {"a.csv.zip": "id,value\n1,1.5\n", "b.csv.gz": "id,value\n2,2.5\n"}
    zone.mkdir()
    with zipfile.ZipFile(zone / "a.csv.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/a.csv", texts["a.csv.zip"])
    (zone / "b.csv.gz").write_bytes(gzip.compress(texts["b.csv.gz"].encode()))
    config = make({"kind": "file", "glob": str(zone / "*.csv.*")})
    assert run(runtime, config).rows_added == 2
    assert published(runtime, config) == expected(texts.values())


def test_quarantined_rows_name_their_file_and_a_column_can(runtime, tmp_path):
    zone = tmp_path / "in"
    write(zone, "a.csv", "id,value\n1,10\n")
    write(zone, "b.csv", "id,value\n2,20\nx,30\n")
    config = make(
        {"kind": "file", "glob": str(zone / "*.csv")},
        transform={"source_file_column": "source_file"},
        checks={"max_rejected_ratio": 0.5},
    )
    run(runtime, config)
    [rejected] = stages.read_quarantine(runtime, config).to_pylist()
    assert rejected["source_ref"] == f"{zone / 'b.csv'}: row 3" and rejected["id"] == "x"
    table = eventstore.published_table(runtime.store, config)
    files = dict(zip(table["id"].to_pylist(), table["source_file"].to_pylist(), strict=True))
    assert files == {1: str(zone / "a.csv"), 2: str(zone / "b.csv")}


def test_time_partitions_read_all_their_files_and_a_backfill_covers_a_range(runtime, tmp_path):
    zone = tmp_path / "exports"
    texts = {
        "dt=2026-12-01/part-0.csv": "id,value\n1,1\n",
        "dt=2026-12-01/part-1.csv": "id,value\n2,2\n",
        "dt=2026-12-02/part-0.csv": "id,value\n3,3\n",
        "dt=2026-12-03/part-0.csv": "id,value\n1,5\n",
    }
    for name, text in texts.items():
        write(zone, name, text)
    config = make(
        {"kind": "file", "glob": str(zone) + "/dt={partition_start}/*.csv"},
        partitions={"kind": "daily", "start": "2026-12-01"},
    )
    assert run(runtime, config, "2026-12-01").rows_added == 2
    assert published(runtime, config) == expected(list(texts.values())[:2])
    for day in ("2026-12-02", "2026-12-03"):  # a backfill over the range
        run(runtime, config, day)
    assert published(runtime, config) == expected(texts.values())
    assert run(runtime, config, "2026-12-02") is None  # its file is in: nothing to read
    # names are paths below the glob's part before any placeholder: one per file, whatever its day
    assert sorted(published_ledger(runtime.store, "LANDING").entries) == sorted(texts)


def test_a_crash_mid_run_keeps_what_was_published_and_takes_the_rest_next(
    runtime, tmp_path, monkeypatch
):
    zone = tmp_path / "landing"
    paths = [write(zone, f"f{i}.csv", f"id,value\n{i},{i * 10}\n") for i in range(5)]
    config = make({"kind": "file", "glob": str(zone / "*.csv"), "max_files_per_run": 2})
    assert run(runtime, config).rows_added == 2  # f0, f1
    fetched = []
    real = landing.store_fetched

    def crash_after_one(*args, **kwargs):
        if fetched:
            raise OSError("simulated crash after one file")
        fetched.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(landing, "store_fetched", crash_after_one)
    with pytest.raises(OSError, match="simulated crash"):
        run(runtime, config)
    monkeypatch.undo()
    assert published(runtime, config) == expected(paths[:2])  # the files done stay done
    assert run(runtime, config).rows_added == 2  # f2, f3
    assert run(runtime, config).rows_added == 1  # f4
    assert run(runtime, config) is None
    assert published(runtime, config) == expected(paths)


def test_an_s3_landing_zone_of_gzip_files(aws, runtime, monkeypatch):
    from ingest_assets.sources import listing

    calls = []
    real_client = listing.s3_client

    def counting_client():
        client = real_client()
        client.meta.events.register("before-call.s3.ListObjectsV2", lambda **kw: calls.append(1))
        return client

    monkeypatch.setattr(listing, "LIST_PAGE_SIZE", 2)  # 6 keys: listed in 3 pages
    monkeypatch.setattr(listing, "s3_client", counting_client)
    s3, bucket = aws["s3"], aws["bucket"]
    texts = {f"exports/2026/12/{i:02d}.csv.gz": f"id,value\n{i},{i}.5\n" for i in range(1, 6)}
    for key, text in texts.items():
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.encode()))
    s3.put_object(Bucket=bucket, Key="exports/readme.md", Body=b"not data")
    config = make({"kind": "s3", "url": f"s3://{bucket}/exports/**/*.csv.gz"})
    assert run(runtime, config).rows_added == 5
    assert len(calls) == 3
    assert published(runtime, config) == expected(texts.values())
    s3.copy_object(  # a renamed copy: its ETag was ingested, it is not even read
        Bucket=bucket,
        Key="exports/2026/12/copy.csv.gz",
        CopySource=f"{bucket}/exports/2026/12/01.csv.gz",
    )
    assert run(runtime, config) is None
    changed = "id,value\n2,9.5\n"
    s3.put_object(
        Bucket=bucket, Key="exports/2026/12/02.csv.gz", Body=gzip.compress(changed.encode())
    )
    assert run(runtime, config).rows_revised == 1
    assert published(runtime, config) == expected([*texts.values(), changed])


def files_config(zone: Path, **extra):
    return make(
        {"kind": "file", "glob": str(zone / "**/*.csv")},
        partitions={"kind": "files"},
        sensor={"enabled": True, "interval_s": 30},
        **extra,
    )


def files_dataset(tmp_path: Path, monkeypatch, zone: Path, source_extra: str = "") -> Path:
    """A `files` dataset LANDING over `zone` in a config folder of its own, which the CLI reads."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "landing.yaml").write_text(
        "dataset_id: LANDING\n"
        f"source: {{kind: file, glob: '{zone}/**/*.csv', format: csv{source_extra}}}\n"
        "normalize: {primary_keys: [id], schema: {id: int64, value: float64}}\n"
        "partitions: {kind: files}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    return configs


def test_files_partitions_sensor_ticks_request_each_file_once(tmp_path, runtime):
    zone = tmp_path / "landing"
    write(zone, "2026-12-01.csv", "id,value\n1,1\n")
    write(zone, "sub/2026-12-02.csv", "id,value\n2,2\n")
    config = files_config(zone)
    sensor = landing_sensor(config)
    assert sensor.name == "LANDING__new_files"
    with dg.instance_for_test() as instance:
        first = sensor(dg.build_sensor_context(instance=instance))
        second = sensor(dg.build_sensor_context(instance=instance))
        keys = [r.run_key for r in first.run_requests]
        assert [r.partition_key for r in first.run_requests] == [
            "2026-12-01.csv",
            "sub/2026-12-02.csv",
        ]
        assert keys == [r.run_key for r in second.run_requests]  # same keys: one run each
        assert {r.tags["ingest/dataset"] for r in first.run_requests} == {"LANDING"}
        [added] = first.dynamic_partitions_requests
        assert added.partitions_def_name == files_partitions_name("LANDING")
        assert list(added.partition_keys) == ["2026-12-01.csv", "sub/2026-12-02.csv"]
        instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
        for request in first.run_requests:  # each file's run, as the sensor asked
            run(runtime, config, request.partition_key, files=[request.partition_key])
        after = sensor(dg.build_sensor_context(instance=instance))
        assert not after.run_requests and "no new file" in after.skip_reason.skip_message
        write(zone, "2026-12-03.csv", "id,value\n3,3\n")
        [request] = sensor(dg.build_sensor_context(instance=instance)).run_requests
        assert request.partition_key == "2026-12-03.csv"


def test_ingest_run_takes_every_file_not_yet_ingested(tmp_path, monkeypatch, capsys):
    zone = tmp_path / "landing"
    files = [write(zone, f"d/{i}.csv", f"id,value\n{i},{i}\n") for i in range(3)]
    configs = files_dataset(tmp_path, monkeypatch, zone, ", max_files_per_run: 2")
    assert main(["run", "LANDING"]) == 0
    out = capsys.readouterr().out
    assert "[2 files: d/0.csv .. d/1.csv] LANDING/published" in out
    assert "[1 files: d/2.csv .. d/2.csv] LANDING/published" in out
    assert main(["run", "LANDING"]) == 0
    assert "no new file" in capsys.readouterr().out
    files[1].write_text("id,value\n1,100\n")  # changed: run it alone, as its partition
    os.utime(files[1], ns=(9, 9))
    assert main(["run", "LANDING", "--partition", "d/1.csv"]) == 0
    assert (
        '[1 files: d/1.csv .. d/1.csv] LANDING/published: {"rows_added": 0, "rows_revised": 1'
        in (capsys.readouterr().out)
    )
    from ingest_resources.resource import IngestResource

    runtime = IngestResource.from_env().runtime()
    assert published(runtime, parse_config_file(configs / "landing.yaml")) == expected(files)
    with dg.DagsterInstance.get() as instance:
        keys = instance.get_dynamic_partitions(files_partitions_name("LANDING"))
        runs = instance.get_runs()
    assert keys == ["d/0.csv", "d/1.csv", "d/2.csv"]
    # the dataset's own job, tagged for the run queue's one-run-per-dataset limit
    assert {(r.job_name, r.tags["ingest/dataset"]) for r in runs} == {
        ("LANDING__ingest", "LANDING")
    }


def parse_config_file(path: Path):
    from ingest_assets.contract import load_config_file

    return load_config_file(path)


def test_files_partitions_a_changed_file_is_a_revision_whatever_its_name(runtime, tmp_path):
    zone = tmp_path / "landing"
    a = write(zone, "a.csv", "id,value\n1,1\n")
    b = write(zone, "b.csv", "id,value\n2,2\n")
    config = files_config(zone)
    assert run(runtime, config, "b.csv", files=["a.csv", "b.csv"]).rows_added == 2  # a range
    a.write_text("id,value\n1,7\n")
    os.utime(a, ns=(5, 5))
    assert run(runtime, config, "a.csv", files=["a.csv"]).rows_revised == 1
    assert published(runtime, config) == expected([b, a])
    assert eventstore.read_current(runtime.store, "LANDING")[0].partition == "files"


def test_a_files_dataset_loads_in_the_code_location_with_its_sensor(tmp_path):
    from ingest_assets.definitions import build_definitions

    config = files_config(tmp_path / "landing")
    defs = build_definitions([config])
    repository = defs.get_repository_def()
    assert repository.get_sensor_def("LANDING__new_files")
    graph = defs.resolve_asset_graph()
    partitions = graph.get(dg.AssetKey(["LANDING", "raw"])).partitions_def
    assert isinstance(partitions, dg.DynamicPartitionsDefinition)
    assert partitions.name == files_partitions_name("LANDING")


def test_a_time_partitioned_zone_sensor_asks_for_each_partition_with_new_files(tmp_path, runtime):
    import datetime as dt

    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    today = yesterday + dt.timedelta(days=1)
    zone = tmp_path / "exports"
    config = make(
        {
            "kind": "file",
            "glob": str(zone) + "/{partition_start:%Y/%m}/day-{partition_start:%d}*.csv",
        },
        partitions={"kind": "daily", "start": "2026-01-01"},
        sensor={"enabled": True},
    )
    sensor = landing_sensor(config)
    with dg.instance_for_test() as instance:
        empty = sensor(dg.build_sensor_context(instance=instance))
        assert not empty.run_requests and "no new file" in empty.skip_reason.skip_message
        write(zone, f"{yesterday:%Y/%m}/day-{yesterday:%d}.csv", "id,value\n1,1\n")
        write(zone, "2026/01/day-05-late.csv", "id,value\n2,2\n")  # a late file of a past day
        write(zone, f"{today:%Y/%m}/day-{today:%d}.csv", "id,value\n3,3\n")  # not complete yet
        write(zone, "2026/01/notes.csv", "id,value\n4,4\n")  # not a day's file
        first = sensor(dg.build_sensor_context(instance=instance))
        second = sensor(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in first.run_requests] == [
            "2026-01-05",
            yesterday.isoformat(),
        ]
        assert [r.run_key for r in second.run_requests] == [r.run_key for r in first.run_requests]
        for request in first.run_requests:
            run(runtime, config, request.partition_key)
        assert not sensor(dg.build_sensor_context(instance=instance)).run_requests
    assert published(runtime, config) == {1: 1.0, 2: 2.0}


def test_an_s3_zone_of_files_partitions_reads_each_named_object(aws, runtime):
    s3, bucket = aws["s3"], aws["bucket"]
    texts = {"in/2026/a.csv": "id,value\n1,1\n", "in/2026/b.csv": "id,value\n2,2\n"}
    for key, text in texts.items():
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    config = make(
        {"kind": "s3", "bucket": bucket, "glob": "in/**/*.csv"}, partitions={"kind": "files"}
    )
    assert run(runtime, config, "2026/a.csv", files=["2026/a.csv"]).rows_added == 1
    assert run(runtime, config, "2026/a.csv", files=["2026/a.csv"]) is None  # done already
    assert run(runtime, config, "2026/b.csv", files=["2026/b.csv"]).rows_added == 1
    assert published(runtime, config) == expected(texts.values())
    with pytest.raises(SourceMissing, match=r"s3://.*/in/2026/gone.csv: 404"):
        run(runtime, config, "2026/gone.csv", files=["2026/gone.csv"])
    skipping = make(
        {"kind": "s3", "bucket": bucket, "glob": "in/**/*.csv", "missing": "skip"},
        partitions={"kind": "files"},
    )
    assert run(runtime, skipping, "2026/gone.csv", files=["2026/gone.csv"]) is None
    assert "404" in stages.skipped(runtime.store, skipping, "2026/gone.csv")
    with pytest.raises(FetchError, match="'../x.csv' is not a file of"):
        run(runtime, config, "x", files=["../x.csv"])


def test_ingest_run_never_reaches_back_over_files_already_ingested(tmp_path, monkeypatch, capsys):
    """A changed old file and a new one are run as two ranges, not one from the old to the new:
    the files between (ingested, one deleted since) are neither read again nor missed."""
    from ingest_assets.cli.landing import _ranges

    order = {name: index for index, name in enumerate("abcdefg")}
    assert _ranges(["a", "b", "c", "e", "f", "g"], order, 2) == [
        ["a", "b"],
        ["c"],
        ["e", "f"],
        ["g"],
    ]

    zone = tmp_path / "landing"
    files = [write(zone, f"d/{i}.csv", f"id,value\n{i},{i}\n") for i in range(3)]
    configs = files_dataset(tmp_path, monkeypatch, zone)
    assert main(["run", "LANDING"]) == 0
    files[0].write_text("id,value\n0,100\n")  # changed
    os.utime(files[0], ns=(9, 9))
    files[1].unlink()  # deleted: between the changed file and the new one
    new = write(zone, "d/3.csv", "id,value\n3,3\n")
    capsys.readouterr()
    assert main(["run", "LANDING"]) == 0
    out = capsys.readouterr().out
    assert "[1 files: d/0.csv .. d/0.csv] LANDING/published" in out
    assert "[1 files: d/3.csv .. d/3.csv] LANDING/published" in out
    from ingest_resources.resource import IngestResource

    runtime = IngestResource.from_env().runtime()
    kept = ["id,value\n1,1\n"]  # the deleted file's rows stay published
    assert published(runtime, parse_config_file(configs / "landing.yaml")) == expected(
        [files[0], *kept, files[2], new]
    )


def test_an_s3_file_is_recorded_with_the_etag_of_the_bytes_read(aws, runtime, monkeypatch):
    """An object overwritten between the listing and its GET: the ledger records the ETag of
    what was read, so the listed (never read) content is not taken as ingested."""
    from ingest_assets.eventstore.files import published_ledger
    from ingest_assets.stages import landing

    s3, bucket = aws["s3"], aws["bucket"]
    s3.put_object(Bucket=bucket, Key="race/a.csv", Body=b"id,value\n1,1\n")
    real_listing = landing.list_files

    def listed_then_overwritten(*args, **kwargs):
        files = list(real_listing(*args, **kwargs))
        s3.put_object(Bucket=bucket, Key="race/a.csv", Body=b"id,value\n1,2\n")
        return files

    monkeypatch.setattr(landing, "list_files", listed_then_overwritten)
    config = make({"kind": "s3", "bucket": bucket, "glob": "race/*.csv"})
    listed = s3.head_object(Bucket=bucket, Key="race/a.csv")["ETag"].strip('"')
    assert run(runtime, config).rows_added == 1
    read = s3.head_object(Bucket=bucket, Key="race/a.csv")["ETag"].strip('"')
    assert listed != read and published(runtime, config) == {1: 2.0}
    ledger = published_ledger(runtime.store, config.dataset_id)
    assert ledger.entries["a.csv"].stamp == f"etag:{read}"
    assert f"etag:{listed}" not in ledger.contents


def test_ingest_run_of_files_says_which_check_blocked_the_publish(tmp_path, monkeypatch, capsys):
    """A `files` dataset's run is reported as any other: a check that blocks is named."""
    zone = tmp_path / "landing"
    write(zone, "d/0.csv", "id,value\n1,1\n2,not a number\n")
    files_dataset(tmp_path, monkeypatch, zone)
    assert main(["run", "LANDING"]) == 1
    err = capsys.readouterr().err
    assert (
        "[1 files: d/0.csv .. d/0.csv] check LANDING/normalized:rejected_ratio failed and " in err
    )
    assert "blocked the publish: 1 of 2 rows rejected" in err


def test_the_ledger_read_again_takes_only_the_parts_of_newer_versions(runtime, tmp_path):
    """A process that reads the ledger again (a sensor's ticks) reads the parts of the versions
    published since, and gets what a read of the whole chain gives."""
    from ingest_assets.eventstore import read_current, version_chain
    from ingest_assets.eventstore.files import published_ledger, read_ledger

    zone = tmp_path / "landing"
    config = make({"kind": "file", "glob": str(zone / "*.csv")})
    for day in range(1, 4):
        write(zone, f"{day}.csv", f"id,value\n{day},{day}\n")
        run(runtime, config)
    store = runtime.store
    published_ledger(store, config.dataset_id)  # (read once: cached)
    write(zone, "4.csv", "id,value\n4,4\n")
    write(zone, "1.csv", "id,value\n1,10\n")  # changed
    run(runtime, config)
    read: list[str] = []
    real_get = store.get

    def counted(key: str) -> bytes:
        read.append(key)
        return real_get(key)

    store.get = counted  # type: ignore[method-assign]
    ledger = published_ledger(store, config.dataset_id)
    store.get = real_get  # type: ignore[method-assign]
    assert [key for key in read if key.endswith("files.parquet")] == [
        f"{read_current(store, config.dataset_id)[0].inputs['files']['key']}"
    ]
    current, _ = read_current(store, config.dataset_id)
    whole = read_ledger(store, version_chain(store, config.dataset_id, current))
    assert ledger == whole and sorted(ledger.entries) == ["1.csv", "2.csv", "3.csv", "4.csv"]
