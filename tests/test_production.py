"""Every sample dataset on production backends: S3 store, DynamoDB locks, Dagster on PostgreSQL,
SNS notifications; against moto in server mode and the machine's PostgreSQL."""

import json

import dagster as dg
import psycopg2
import pytest

from ingest_assets import layout, stages
from ingest_assets.cli import main
from ingest_assets.cli.instance import ensure_dagster_home
from ingest_assets.contract import parse_config
from ingest_resources.runtime import aws_client, runtime_from_env
from tests.test_dagster_e2e import SAMPLES, _materialize


def test_samples_run_twice_on_s3_dynamodb_and_postgres_instance(
    aws, pg_database, monkeypatch, capsys
):
    monkeypatch.setenv("INGEST_DAGSTER_PG_URL", pg_database)
    home, storage = ensure_dagster_home()
    assert storage == "postgres"
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        for config in SAMPLES:
            first = _materialize(config, instance)["published"]
            second = _materialize(config, instance)["published"]
            assert first["rows_added"] > 0 and first["new_version"] is True
            assert second["rows_added"] == second["rows_revised"] == 0
            assert second["version"] == first["version"]
    # the data is in the bucket, in the DESIGN layout
    keys = runtime_from_env().store.list("datasets")
    for config in SAMPLES:
        assert f"datasets/{config.dataset_id}/current/manifest.json" in keys
        assert f"datasets/{config.dataset_id}/index/keys.parquet" in keys
    listed = aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix="prod/datasets/")
    assert listed["KeyCount"] > 0
    # the runs are in PostgreSQL
    with psycopg2.connect(pg_database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")
        assert cursor.fetchone()[0] == 2 * len(SAMPLES)
    # the CLI reads the same store
    assert main(["history", "REDDIT_HOMELAB_FEED"]) == 0
    assert "added=25" in capsys.readouterr().out


def test_instance_command_switches_storage(tmp_path, monkeypatch, capsys, pg_database):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["instance"]) == 0
    assert "instance storage: sqlite" in capsys.readouterr().out
    assert "storage:" not in (tmp_path / "home" / "dagster.yaml").read_text()
    monkeypatch.setenv("INGEST_DAGSTER_PG_URL", pg_database)
    assert main(["instance"]) == 0
    assert "instance storage: postgres" in capsys.readouterr().out
    assert "postgres_url" in (tmp_path / "home" / "dagster.yaml").read_text()
    import os

    assert os.environ["INGEST_DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")


def test_a_users_own_dagster_yaml_is_left_alone(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == "telemetry: {enabled: false}\n"


def _csv_dataset(tmp_path, topic: str | None, source: dict | None = None):
    csv = tmp_path / "rates.csv"
    csv.write_text("id,value\n1,10\n2,11\n")
    return parse_config(
        {
            "dataset_id": "NOTIFIED",
            "source": source or {"kind": "file", "path": str(csv), "format": "csv"},
            "normalize": {"primary_keys": ["id"], "schema": {"value": "float64"}},
            "notify": {"sns_topic_arn": topic} if topic else {},
        },
        "notified.yaml",
    )


def _run_stages(config, partition="all"):
    runtime = runtime_from_env()
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    stages.run_normalize(runtime, config, partition)
    return stages.run_publish(runtime, config, partition)


def test_publish_sends_one_sns_message(aws, tmp_path):
    sqs = aws_client("sqs", aws["endpoint"])
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws_client("sns", aws["endpoint"]).subscribe(
        TopicArn=aws["topic"], Protocol="sqs", Endpoint=queue_arn
    )
    config = _csv_dataset(tmp_path, aws["topic"])
    result = _run_stages(config)
    assert result.committed and result.follow_up_errors == ()
    assert _run_stages(config).committed is False  # nothing new: no version, no message
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)[
        "Messages"
    ]
    assert len(messages) == 1
    body = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert body["dataset_id"] == "NOTIFIED" and body["version"] == result.version
    assert body["rows_added"] == 2 and body["rows_total"] == 2
    assert body["dedup_id"] == f"NOTIFIED:{result.version}"


def test_a_fifo_topic_gets_the_deduplication_id(aws, tmp_path):
    """A FIFO topic refuses a message without a group and deduplication id: it gets both, and
    sending the same version twice (a retried follow-up) is one message."""
    sns, sqs = aws_client("sns", aws["endpoint"]), aws_client("sqs", aws["endpoint"])
    topic = sns.create_topic(
        Name="versions.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "false"}
    )["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    config = _csv_dataset(tmp_path, topic)
    result = _run_stages(config)
    assert result.committed and result.follow_up_errors == ()
    notifier = runtime_from_env().notifier
    assert notifier.notify(topic, result.manifest.to_dict()) is None  # the same version again
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)[
        "Messages"
    ]
    assert len(messages) == 1
    body = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert body["dedup_id"] == f"NOTIFIED:{result.version}"


def test_failed_notification_is_reported_and_publish_stands(aws, tmp_path):
    config = _csv_dataset(tmp_path, "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    result = _run_stages(config)
    assert result.committed and result.rows_added == 2
    (error,) = result.follow_up_errors  # the notification failed, nothing else
    assert "follow-up notify failed" in error
    assert "notification to arn:aws:sns:us-east-1:123456789012:no-such-topic failed" in error
    current = json.loads(runtime_from_env().store.get(layout.current("NOTIFIED")))
    assert current["version"] == result.version


def test_s3_source_records_its_etag(aws, tmp_path):
    put = aws["s3"].put_object(
        Bucket=aws["bucket"], Key="inbox/rates.csv", Body=b"id,value\n1,10\n2,11\n3,12\n"
    )
    for source in (
        {"kind": "s3", "bucket": aws["bucket"], "key": "inbox/rates.csv", "format": "csv"},
        {"kind": "s3", "url": f"s3://{aws['bucket']}/inbox/rates.csv", "format": "csv"},
    ):
        config = _csv_dataset(tmp_path, None, source)
        info = stages.run_raw(runtime_from_env(), config, "all")
        assert info.etag == put["ETag"] and info.bytes == 24
        assert info.source == f"s3://{aws['bucket']}/inbox/rates.csv"
    result = _run_stages(config)
    assert result.rows_added == 3 and result.manifest.inputs["etag"] == put["ETag"]


def test_missing_s3_object_is_a_clear_error(aws, tmp_path):
    from ingest_resources.http import FetchError

    config = _csv_dataset(
        tmp_path, None, {"kind": "s3", "bucket": aws["bucket"], "key": "nope.csv", "format": "csv"}
    )
    with pytest.raises(
        FetchError, match=rf"dataset NOTIFIED: s3://{aws['bucket']}/nope.csv: NoSuchKey"
    ):
        stages.run_raw(runtime_from_env(), config, "all")
