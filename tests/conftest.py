"""Shared fixtures: an isolated store and Dagster home per test, and small dataset builders."""

import datetime as dt
import gc
import textwrap
from pathlib import Path

import pytest

from ingest_assets.contract import load_config_file
from ingest_resources.http import reset_breakers
from ingest_resources.runtime import Runtime, local_runtime

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def pytest_unconfigure(config: pytest.Config) -> None:
    """In-process `ingest run`s froze the garbage collector's view (`gc.freeze`), which a real
    process leaves so until it exits; give the objects back so the exit frees them (DuckDB's
    bindings report objects still alive at exit as leaks)."""
    gc.unfreeze()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store and Dagster home; the sample configs stay the default."""
    monkeypatch.setenv("INGEST_STORE_ROOT", str(tmp_path / "store"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(REPO / "dataset_configs"))
    monkeypatch.delenv("INGEST_PROJECT_ROOT", raising=False)
    (tmp_path / "dagster_home").mkdir()
    reset_breakers()
    return tmp_path


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return local_runtime(tmp_path / "store")


@pytest.fixture
def write_dataset(tmp_path: Path):
    """Write a dataset YAML (and optionally its CSV) under tmp_path; returns the loaded config."""

    def write(yaml_text: str, name: str = "dataset.yaml"):
        config_dir = tmp_path / "configs"
        config_dir.mkdir(exist_ok=True)
        path = config_dir / name
        path.write_text(textwrap.dedent(yaml_text))
        return load_config_file(path)

    return write


TODAY = dt.date(2026, 11, 22)


# --- production backends: an S3/DynamoDB/SNS API server (moto) and PostgreSQL -------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto in server mode on 127.0.0.1, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch, request):
    """AWS clients pointed at moto, with a fresh bucket, lock table and SNS topic per test."""
    import uuid

    from ingest_resources.locks import create_lock_table
    from ingest_resources.runtime import aws_client

    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    aws_client.cache_clear()
    suffix = uuid.uuid4().hex[:10]
    bucket, table = f"ingest-{suffix}", f"locks-{suffix}"
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    create_lock_table(aws_client("dynamodb", moto_endpoint), table)
    topic = aws_client("sns", moto_endpoint).create_topic(Name=f"datasets-{suffix}")["TopicArn"]
    monkeypatch.setenv("INGEST_STORE_URL", f"s3://{bucket}/prod")
    monkeypatch.setenv("INGEST_LOCK_TABLE", table)
    yield {"endpoint": moto_endpoint, "bucket": bucket, "table": table, "topic": topic, "s3": s3}
    aws_client.cache_clear()


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database on 127.0.0.1:5432 (user postgres), dropped afterwards."""
    import uuid

    import psycopg2

    name = f"ingest_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
