"""INGEST_EXECUTOR chooses the code location's executor (orchestration/executors.py); the
workers' Celery app is built from the same settings as the run's (no workers started here:
tests/test_celery_workers.py does that, under `make test-deploy`)."""

import pytest

from ingest_assets.orchestration import executors
from ingest_resources.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "in_process"),
        ("in_process", "in_process"),
        ("multiprocess", "multiprocess"),
        ("Celery", "celery"),
    ],
)
def test_the_environment_chooses_the_executor(monkeypatch, value: str | None, name: str) -> None:
    if value is None:
        monkeypatch.delenv("INGEST_EXECUTOR", raising=False)
    else:
        monkeypatch.setenv("INGEST_EXECUTOR", value)
    assert executors.executor_from_env().name == name


def test_an_unknown_executor_or_limit_is_refused_by_name(monkeypatch) -> None:
    monkeypatch.setenv("INGEST_EXECUTOR", "dask")
    with pytest.raises(
        ConfigError,
        match="INGEST_EXECUTOR='dask': expected one of in_process, multiprocess, celery",
    ):
        executors.executor_from_env()
    monkeypatch.setenv("INGEST_EXECUTOR", "multiprocess")
    monkeypatch.setenv("INGEST_MAX_CONCURRENT", "two")
    with pytest.raises(ConfigError, match="INGEST_MAX_CONCURRENT='two'"):
        executors.executor_from_env()


@pytest.mark.filterwarnings(
    "ignore::UserWarning"
)  # (the reload registers dagster-celery's tasks again)
def test_the_run_and_the_workers_share_one_celery_configuration(monkeypatch) -> None:
    monkeypatch.setenv("INGEST_CELERY_BROKER", "redis://broker.internal:6379/3")
    monkeypatch.delenv("INGEST_CELERY_BACKEND", raising=False)
    settings = executors.celery_settings()
    assert settings["broker"] == "redis://broker.internal:6379/3"
    assert settings["backend"] == executors.DEFAULT_BACKEND
    import importlib

    from ingest_assets.orchestration import celery_worker

    app = importlib.reload(celery_worker).app
    assert app.conf.broker_url == "redis://broker.internal:6379/3"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] == 3600
    assert "execute_plan" in " ".join(app.tasks)  # dagster-celery's step task is registered


def test_the_code_location_runs_on_the_chosen_executor(monkeypatch) -> None:
    from ingest_assets.contract import load_config_dir
    from ingest_assets.definitions import build_definitions
    from ingest_assets.settings import config_dir

    monkeypatch.setenv("INGEST_EXECUTOR", "celery")
    configs, _ = load_config_dir(config_dir())
    defs = build_definitions(configs[:1])
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "celery"
