"""GET /health (no key needed) and GET /stats: the platform's state, from the store, the
warehouse (when INGEST_POSTGRES_URL is set) and the Dagster instance (`dagster_runs`, imported
here on first use only)."""

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ingest_api.auth import require_key
from ingest_api.models import Check, DatasetHealth, DatasetStats, Health, Stats
from ingest_api.routers.common import State, errors
from ingest_api.state import ApiState

if TYPE_CHECKING:
    from ingest_api.dagster_runs import DatasetRuns

router = APIRouter()
DETAIL_CHARS = 300


def _runs(state: ApiState) -> tuple[Check, dict[str, "DatasetRuns"]]:
    from ingest_api.dagster_runs import Runs

    if state.runs is None:
        state.runs = Runs()
    try:
        found = state.runs.by_dataset(state.catalog.ids())
    except Exception as exc:  # noqa: BLE001 - reported as the check's failure
        return Check(ok=False, detail=f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS]), {}
    return Check(ok=True, detail=f"{sum(len(r.runs) for r in found.values())} run(s) read"), found


def _store_check(state: ApiState) -> tuple[Check, dict[str, str | None]]:
    versions: dict[str, str | None] = {}
    problems = []
    for dataset_id in state.catalog.ids():
        try:
            head = state.catalog.current(dataset_id)
            versions[dataset_id] = head.version if head else None
        except Exception as exc:  # noqa: BLE001 - one dataset's problem, named
            versions[dataset_id] = None
            problems.append(f"{dataset_id}: {exc}"[:DETAIL_CHARS])
    if problems:
        return Check(ok=False, detail="; ".join(problems)), versions
    return Check(
        ok=True, detail=f"{state.runtime.store.describe()}: {len(versions)} dataset(s)"
    ), versions


def _warehouse_check(state: ApiState) -> Check:
    warehouse = state.runtime.warehouse
    assert warehouse is not None
    try:
        connection = warehouse.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            connection.close()
    except Exception as exc:  # noqa: BLE001 - reported as the check's failure
        return Check(
            ok=False, detail=f"cannot connect: {type(exc).__name__}: {exc}"[:DETAIL_CHARS].strip()
        )
    return Check(ok=True, detail="SELECT 1 answered")


@router.get(
    "/health",
    response_model=Health,
    responses={
        503: {"model": Health, "description": "something failed: its check says what"},
        **errors(429),
    },
    summary="store, warehouse and Dagster instance reachable; last run per dataset",
)
def health(state: State) -> Any:
    checks: dict[str, Check] = {}
    checks["store"], versions = _store_check(state)
    if state.runtime.warehouse is not None:
        checks["warehouse"] = _warehouse_check(state)
    checks["dagster"], runs = _runs(state)
    datasets = {}
    for dataset_id in state.catalog.ids():
        status, at = runs[dataset_id].last() if dataset_id in runs else (None, None)
        datasets[dataset_id] = DatasetHealth(
            last_run_status=status, last_run_at=at, version=versions.get(dataset_id)
        )
    ok = all(check.ok for check in checks.values())
    body = Health(status="ok" if ok else "failing", checks=checks, datasets=datasets)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get(
    "/stats",
    response_model=Stats,
    dependencies=[Depends(require_key)],
    responses=errors(401, 429, 503),
    summary="per dataset: runs, failures, durations (Dagster) and rows published (manifests)",
)
def stats(state: State) -> Stats:
    check, runs = _runs(state)
    datasets = {}
    for dataset_id in state.catalog.ids():
        head = state.catalog.current(dataset_id)
        chain = state.catalog.chain(dataset_id, head) if head else ()
        summary = runs[dataset_id].summary() if dataset_id in runs else _no_runs()
        totals = {
            name: sum(int(m.counts.get(name, 0)) for m in chain)
            for name in ("added", "revised", "rejected")
        }
        datasets[dataset_id] = DatasetStats(
            **summary,
            versions=len(chain),
            rows_published=head.rows_total if head else 0,
            rows_added=totals["added"],
            rows_revised=totals["revised"],
            rows_rejected=totals["rejected"],
        )
    return Stats(dagster=check, datasets=datasets)


def _no_runs() -> dict[str, Any]:
    return {
        "runs": 0,
        "successes": 0,
        "failures": 0,
        "last_failure": None,
        "durations": {"count": 0, "mean_s": None, "p50_s": None, "max_s": None, "last_s": None},
    }
