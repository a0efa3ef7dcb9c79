"""Sensors as tables of (cursor, source state) -> (run requests, new cursor), for every source
kind; the schedule's partition; incremental API windows driven by the published state."""

import datetime as dt
import json

import dagster as dg
import pytest
from werkzeug import Request, Response

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_assets.orchestration.automation import cron_schedule, source_sensor, tick
from ingest_assets.sources.probe import probe

FAST = {"max_attempts": 2, "backoff_s": 0.01}


def make(source: dict, **extra):
    return parse_config(
        {"dataset_id": "WATCHED", "source": source, "normalize": {"primary_keys": ["id"]}, **extra},
        "watched.yaml",
    )


def run_tick(config, cursor):
    requests, new_cursor, skip = tick(
        config, cursor, "2026-11-21", lambda prev: probe(config, prev)
    )
    return [r.run_key for r in requests], new_cursor, skip


def test_file_source(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id\n1\n")
    config = make({"kind": "file", "path": str(path), "format": "csv"})
    keys, cursor, skip = run_tick(config, None)  # never seen: run
    assert len(keys) == 1 and keys[0].startswith("WATCHED:sha256:") and skip is None
    assert run_tick(config, cursor) == (
        [],
        cursor,
        f"source unchanged ({json.loads(cursor)['version']})",
    )
    path.write_text("id\n1\n2\n")
    keys2, cursor2, _ = run_tick(config, cursor)  # changed: one new run, new cursor
    assert len(keys2) == 1 and keys2 != keys and cursor2 != cursor
    path.unlink()
    keys3, cursor3, skip3 = run_tick(
        config, cursor2
    )  # error: no run, cursor kept, retried next tick
    assert keys3 == [] and cursor3 == cursor2 and "source error, will retry next tick" in skip3


class EtagServer:
    def __init__(self, etag: str | None, body: bytes = b"id\n1\n", status: int = 200):
        self.etag, self.body, self.status = etag, body, status
        self.seen: list[dict] = []

    def __call__(self, request: Request) -> Response:
        self.seen.append({"if_none_match": request.headers.get("If-None-Match")})
        if self.status != 200:
            return Response("down", status=self.status)
        if self.etag and request.headers.get("If-None-Match") == self.etag:
            return Response(status=304)
        return Response(self.body, headers={"ETag": self.etag} if self.etag else {})


def test_http_source_with_etag(httpserver):
    server = EtagServer('"v1"')
    httpserver.expect_request("/data.csv").respond_with_handler(server)
    config = make(
        {"kind": "http", "url": httpserver.url_for("/data.csv"), "format": "csv", "retry": FAST}
    )
    keys, cursor, _ = run_tick(config, None)
    assert keys == ['WATCHED:etag:"v1"']
    assert run_tick(config, cursor)[0] == []  # conditional request answered 304
    assert server.seen[-1] == {"if_none_match": '"v1"'}
    server.etag = '"v2"'
    assert run_tick(config, cursor)[0] == ['WATCHED:etag:"v2"']
    server.status = 500
    keys, same, skip = run_tick(config, cursor)
    assert keys == [] and same == cursor and "HTTP 500" in skip


def test_http_source_without_validators_falls_back_to_a_content_hash(httpserver):
    server = EtagServer(None)
    httpserver.expect_request("/data.csv").respond_with_handler(server)
    config = make(
        {"kind": "http", "url": httpserver.url_for("/data.csv"), "format": "csv", "retry": FAST}
    )
    keys, cursor, _ = run_tick(config, None)
    assert keys[0].startswith("WATCHED:sha256:")
    assert run_tick(config, cursor)[0] == []
    server.body = b"id\n2\n"
    assert run_tick(config, cursor)[0] not in ([], keys)


def test_s3_source(aws):
    s3 = aws["s3"]
    s3.put_object(Bucket=aws["bucket"], Key="in/data.csv", Body=b"id\n1\n")
    config = make({"kind": "s3", "bucket": aws["bucket"], "key": "in/data.csv", "format": "csv"})
    keys, cursor, _ = run_tick(config, None)
    assert keys[0].startswith('WATCHED:etag:"')
    assert run_tick(config, cursor)[0] == []
    s3.put_object(Bucket=aws["bucket"], Key="in/data.csv", Body=b"id\n1\n2\n")
    assert run_tick(config, cursor)[0] not in ([], keys)
    missing = make({"kind": "s3", "bucket": aws["bucket"], "key": "in/nope.csv", "format": "csv"})
    keys, same, skip = run_tick(missing, cursor)
    assert keys == [] and same == cursor and "404" in skip


def test_the_sensor_definition_requests_the_dataset_for_the_latest_partition(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id\n1\n")
    config = make(
        {"kind": "file", "path": str(path), "format": "csv"},
        sensor={"enabled": True, "interval_s": 60},
        partitions={"kind": "daily", "start": "2025-01-01", "snapshot": True},
    )
    sensor = source_sensor(config)
    assert sensor.name == "WATCHED__source_changed" and sensor.minimum_interval_seconds == 60
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    result = sensor(dg.build_sensor_context(cursor=None))
    [request] = result.run_requests
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    assert request.partition_key == yesterday
    assert {k.to_user_string() for k in request.asset_selection} == {
        "WATCHED/raw",
        "WATCHED/parsed",
        "WATCHED/normalized",
        "WATCHED/published",
    }
    again = sensor(dg.build_sensor_context(cursor=result.cursor))
    assert not again.run_requests and "unchanged" in again.skip_reason.skip_message


def test_the_schedule_requests_the_partition_of_its_tick(tmp_path):
    config = make(
        {"kind": "file", "path": str(tmp_path / "x.csv"), "format": "csv"},
        schedule="0 6 * * *",
        partitions={"kind": "daily", "start": "2025-01-01", "snapshot": True},
    )
    schedule = cron_schedule(config)
    assert schedule.cron_schedule == "0 6 * * *"
    when = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.partition_key == "2026-03-09"  # the latest complete day at the tick


def test_a_scheduled_tick_in_the_code_location_runs_only_its_dataset():
    """Schedules target Dagster's implicit asset job and select their dataset per run request
    (no job per schedule); the tick resolves the partition against that job."""
    from ingest_assets.definitions import build_definitions

    repository = build_definitions().get_repository_def()
    assert [job.name for job in repository.get_all_jobs()] == ["__ASSET_JOB"]
    schedule = repository.get_schedule_def("INDEC_IPC_DIVISIONES__schedule")
    when = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=repository)
    [request] = schedule.evaluate_tick(context).run_requests
    # (the INDEC sample is a snapshot source, unpartitioned since issue 18)
    assert request.partition_key is None and "dagster/partition" not in request.tags
    # (the run queue's one-run-per-dataset limit keys on this tag: dagster.sqlite.yaml)
    assert request.tags["ingest/dataset"] == "INDEC_IPC_DIVISIONES"
    assert {k.to_user_string() for k in request.asset_selection} == {
        f"INDEC_IPC_DIVISIONES/{stage}"
        for stage in ("raw", "parsed", "normalized", "published", "warehouse")
    }


def test_automation_runs_the_warehouse_too(tmp_path):
    from ingest_assets.orchestration.automation import dataset_keys

    config = make(
        {"kind": "file", "path": str(tmp_path / "x.csv"), "format": "csv"},
        publish={"postgres": {"table": "obs"}},
    )
    assert [k.to_user_string() for k in dataset_keys(config)][-1] == "WATCHED/warehouse"


def test_sample_automation_is_in_the_definitions():
    from ingest_assets.definitions import build_definitions

    defs = build_definitions()
    assert defs.get_sensor_def("REDDIT_HOMELAB_FEED__source_changed")
    assert defs.get_schedule_def("INDEC_IPC_DIVISIONES__schedule").cron_schedule == "0 6 * * *"


# --- incremental API windows ---------------------------------------------------------------------


class DatedApi:
    """An API that filters by ?since=YYYY-MM-DD and records what it was asked."""

    def __init__(self, rows: dict[str, float]):
        self.rows = rows
        self.asked: list[dict] = []

    def __call__(self, request: Request) -> Response:
        self.asked.append(dict(request.args))
        since = request.args["since"]
        data = [{"day": d, "value": v} for d, v in sorted(self.rows.items()) if d >= since]
        return Response(json.dumps({"data": data}), content_type="application/json")


def test_the_second_run_asks_only_for_what_is_new(httpserver, runtime):
    api = DatedApi({"2024-01-02": 1.0, "2024-01-05": 2.0, "2024-01-10": 3.0})
    httpserver.expect_request("/obs").respond_with_handler(api)
    config = parse_config(
        {
            "dataset_id": "DATED",
            "lag_days": 2,
            "source": {
                "kind": "http",
                "url": httpserver.url_for("/obs"),
                "format": "json",
                "records_path": "data",
                "params": {
                    "since": "{since}",
                    "from": "{partition_start}",
                    "to": "{partition_end}",
                },
            },
            "normalize": {"primary_keys": ["day"], "time_column": "day"},
            "partitions": {"kind": "daily", "start": "2024-01-01"},
        },
        "dated.yaml",
    )

    def run(partition):
        stages.run_raw(runtime, config, partition)
        stages.run_parse(runtime, config, partition)
        stages.run_normalize(runtime, config, partition)
        return stages.run_publish(runtime, config, partition)

    assert run("2024-01-10").rows_added == 3
    assert api.asked[0] == {"since": "2024-01-01", "from": "2024-01-10", "to": "2024-01-11"}
    api.rows["2024-01-11"] = 4.0
    api.rows["2024-01-09"] = 2.5  # a late value inside lag_days is still asked for
    second = run("2024-01-11")
    assert api.asked[1] == {"since": "2024-01-08", "from": "2024-01-11", "to": "2024-01-12"}
    assert (second.rows_added, second.rows_repeated) == (2, 1)  # 01-09 and 01-11 new; 01-10 again


def test_a_window_on_an_unpartitioned_dataset_is_a_clear_error(runtime, httpserver):
    config = parse_config(
        {
            "dataset_id": "NOWINDOW",
            "source": {
                "kind": "http",
                "url": httpserver.url_for("/x"),
                "format": "csv",
                "params": {"from": "{partition_start}"},
            },
            "normalize": {"primary_keys": ["id"]},
        },
        "nowindow.yaml",
    )
    with pytest.raises(
        ValueError,
        match=r"NOWINDOW: source.params.from uses \{partition_start\}, which needs a time-partitioned dataset",
    ):
        stages.run_raw(runtime, config, "all")
