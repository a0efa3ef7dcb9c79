"""The Dagster instance's runs, per dataset: the one module of the API that imports Dagster,
lazily, for /health and /stats only (the data routes never load it).

The instance is DAGSTER_HOME's (as `ingest run` and `dagster dev` use it), opened read-only in
spirit: a home without `dagster.yaml` or storage is reported, never set up. A run belongs to a
dataset when it materialized one of its assets (`<dataset_id>/...`); the newest RUNS_READ runs
are read, and each finished run's assets and failure are kept (they never change)."""

import datetime as dt
import os
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest_assets import settings

RUNS_READ = 1000
REASON_CHARS = 500


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str  # SUCCESS, FAILURE, STARTED, ...
    datasets: frozenset[str]
    start: float | None
    end: float | None
    failure: str | None


@dataclass
class DatasetRuns:
    runs: list[RunInfo] = field(default_factory=list)  # newest first

    def summary(self) -> dict[str, Any]:
        finished = [r for r in self.runs if r.status in ("SUCCESS", "FAILURE")]
        failures = [r for r in self.runs if r.status == "FAILURE"]
        durations = [r.end - r.start for r in finished if r.start and r.end]
        last_failure = None
        if failures:
            newest = failures[0]
            last_failure = {
                "run_id": newest.run_id,
                "at": _iso(newest.end or newest.start),
                "reason": newest.failure or "(no failure event recorded)",
            }
        return {
            "runs": len(self.runs),
            "successes": sum(r.status == "SUCCESS" for r in self.runs),
            "failures": len(failures),
            "last_failure": last_failure,
            "durations": {
                "count": len(durations),
                "mean_s": round(statistics.fmean(durations), 3) if durations else None,
                "p50_s": round(statistics.median(durations), 3) if durations else None,
                "max_s": round(max(durations), 3) if durations else None,
                "last_s": round(durations[0], 3) if durations else None,
            },
        }

    def last(self) -> tuple[str | None, str | None]:
        if not self.runs:
            return None, None
        newest = self.runs[0]
        return newest.status, _iso(newest.end or newest.start)


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or settings.project_root() / ".dagster_home")


class Runs:
    """The instance, opened on first use, and what its runs say about each dataset."""

    def __init__(self) -> None:
        self.instance: Any = None
        self.known: dict[str, RunInfo] = {}  # finished runs
        self.lock = threading.Lock()

    def _open(self) -> Any:
        if self.instance is None:
            home = dagster_home()
            if not (home / "dagster.yaml").exists() and not (home / "history").exists():
                raise FileNotFoundError(
                    f"DAGSTER_HOME={home} is not set up (no dagster.yaml, no runs): run "
                    "`ingest instance`, or `ingest run` once"
                )
            import dagster as dg

            self.instance = dg.DagsterInstance.from_config(str(home))
        return self.instance

    def by_dataset(self, dataset_ids: list[str]) -> dict[str, DatasetRuns]:
        """Each dataset's runs, newest first. Raises what opening or reading the instance
        raised (the caller reports it)."""
        with self.lock:
            instance = self._open()
            found = {dataset_id: DatasetRuns() for dataset_id in dataset_ids}
            for record in instance.get_run_records(limit=RUNS_READ):
                info = self._info(instance, record)
                for dataset_id in info.datasets:
                    if dataset_id in found:
                        found[dataset_id].runs.append(info)
            return found

    def _info(self, instance: Any, record: Any) -> RunInfo:
        run = record.dagster_run
        known = self.known.get(run.run_id)
        if known is not None:
            return known
        status = run.status.value
        keys = run.asset_selection or instance.get_asset_keys_for_run(run.run_id)
        datasets = frozenset(key.path[0] for key in keys if key.path)
        failure = self._failure(instance, run.run_id) if status == "FAILURE" else None
        info = RunInfo(run.run_id, status, datasets, record.start_time, record.end_time, failure)
        if run.is_finished:
            self.known[run.run_id] = info
        return info

    @staticmethod
    def _failure(instance: Any, run_id: str) -> str | None:
        """The first step failure's message (else the run failure's)."""
        from dagster import DagsterEventType

        for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
            records = instance.get_records_for_run(run_id, of_type=kind, limit=1).records
            for found in records:
                event = found.event_log_entry.dagster_event
                error = getattr(event.event_specific_data, "error", None) if event else None
                message = error.message if error is not None else found.event_log_entry.message
                if message:
                    step = f"{event.step_key}: " if event and event.step_key else ""
                    return (step + str(message).strip())[:REASON_CHARS]
        return None
