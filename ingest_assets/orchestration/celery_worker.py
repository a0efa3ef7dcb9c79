"""The Celery app of Ingest's workers: `celery -A ingest_assets.orchestration.celery_worker
worker -Q dagster --concurrency N` (docs/deploy.md). Its broker and backend are the run's
(`executors.celery_settings`, from INGEST_CELERY_BROKER and INGEST_CELERY_BACKEND), and it holds
the tasks of `dagster_celery.app`: a step sent by a run executes here against the run's
instance (DAGSTER_HOME: PostgreSQL, shared by every worker and the run)."""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from ingest_assets.orchestration.executors import celery_settings

app = make_app(CeleryExecutor.for_cli(**celery_settings()).app_args())
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
