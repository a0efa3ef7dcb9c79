"""The stores' settings are read from the environment in one place (StoreEnvironment), and the
runtime and the Dagster resource both take them from there."""

from pathlib import Path

from ingest_resources.environment import StoreEnvironment
from ingest_resources.resource import IngestResource

VARIABLES = (
    "INGEST_STORE_ROOT",
    "INGEST_STORE_URL",
    "INGEST_LOCK_TABLE",
    "AWS_ENDPOINT_URL",
    "INGEST_POSTGRES_URL",
)


def test_defaults_a_local_store_in_the_working_folder(monkeypatch, tmp_path):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert StoreEnvironment.from_env() == StoreEnvironment(store_root=tmp_path / ".ingest_store")


def test_reads_every_setting_and_takes_an_empty_one_as_unset(tmp_path):
    env = StoreEnvironment.from_env(
        {
            "INGEST_STORE_ROOT": str(tmp_path / "store"),
            "INGEST_STORE_URL": "s3://bucket/prod",
            "INGEST_LOCK_TABLE": "",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "INGEST_POSTGRES_URL": "",
        }
    )
    assert env == StoreEnvironment(
        store_root=(tmp_path / "store").resolve(),
        store_url="s3://bucket/prod",
        endpoint_url="http://127.0.0.1:5000",
    )


def test_the_dagster_resource_takes_the_same_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("INGEST_STORE_ROOT", str(tmp_path / "store"))
    monkeypatch.setenv("INGEST_LOCK_TABLE", "locks")
    monkeypatch.setenv("INGEST_POSTGRES_URL", "postgresql://warehouse")
    monkeypatch.delenv("INGEST_STORE_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    resource = IngestResource.from_env()
    env = StoreEnvironment.from_env()
    assert (
        Path(resource.store_root),
        resource.store_url,
        resource.lock_table,
        resource.endpoint_url,
        resource.warehouse_url,
    ) == (env.store_root, None, "locks", None, "postgresql://warehouse")
