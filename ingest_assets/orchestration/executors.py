"""The executor of the code location's runs, chosen by the environment (docs/deploy.md).

INGEST_EXECUTOR:
- `in_process` (default): every step of a run in the run's process; the quickest for small
  datasets (a step process costs 4-5 s to start on 2 cores: DAGSTER_NOTES.md).
- `multiprocess`: a process per step, up to INGEST_MAX_CONCURRENT at once (default: the CPUs).
- `celery`: steps sent to Celery workers over INGEST_CELERY_BROKER, results over
  INGEST_CELERY_BACKEND (default redis://127.0.0.1:6379/0 and /1); needs the `celery` extra.
  Start workers with `celery -A ingest_assets.orchestration.celery_worker worker -Q dagster`:
  they build their Celery app from the same variables (`celery_settings`).
On Kubernetes, Dagster's K8sRunLauncher gives each run a pod of its own (deploy/helm/values.yaml);
its steps run in that pod with the executor chosen here.
"""

import os
from typing import Any

import dagster as dg

from ingest_resources.errors import ConfigError

EXECUTORS = ("in_process", "multiprocess", "celery")
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_BACKEND = "redis://127.0.0.1:6379/1"


class ExecutorConfigError(ConfigError):
    """INGEST_EXECUTOR (or a setting it reads) names something that cannot run."""


def executor_name() -> str:
    name = os.environ.get("INGEST_EXECUTOR", "in_process").strip().lower().replace("-", "_")
    if name not in EXECUTORS:
        raise ExecutorConfigError(
            [f"INGEST_EXECUTOR={name!r}: expected one of {', '.join(EXECUTORS)}"]
        )
    return name


def celery_settings() -> dict[str, Any]:
    """The Celery executor's config, as the run process and the workers both read it."""
    return {
        "broker": os.environ.get("INGEST_CELERY_BROKER", DEFAULT_BROKER),
        "backend": os.environ.get("INGEST_CELERY_BACKEND", DEFAULT_BACKEND),
        "config_source": CELERY_CONFIG,
    }


# A step's task is acknowledged when it ends, and given back to the queue if the worker process
# running it dies (SIGKILL, out of memory): another worker runs the step again, which our steps
# allow (a publish is exactly-once whoever repeats it). With Celery's default (acknowledged on
# receipt) dagster-celery gets a WorkerLostError, stops submitting steps and the run never ends
# (tests/test_celery_workers.py). A worker whose main process dies leaves its task unacknowledged
# in Redis until `visibility_timeout` (1 h): it must exceed the longest step, or a step still
# running is sent to a second worker.
CELERY_CONFIG: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_transport_options": {  # dagster-celery's defaults, and the visibility timeout
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
        "visibility_timeout": 3600,
    },
}


def _max_concurrent() -> int:
    raw = os.environ.get("INGEST_MAX_CONCURRENT", "0")
    if not raw.isdigit():
        raise ExecutorConfigError([f"INGEST_MAX_CONCURRENT={raw!r}: expected a whole number"])
    return int(raw) or (os.cpu_count() or 1)


def executor_from_env() -> dg.ExecutorDefinition:
    name = executor_name()
    if name == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": _max_concurrent()})
    if name == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as exc:
            raise ExecutorConfigError(
                ["INGEST_EXECUTOR=celery needs the celery extra: pip install 'ingest[celery]'"]
            ) from exc
        return celery_executor.configured(celery_settings())
    return dg.in_process_executor
