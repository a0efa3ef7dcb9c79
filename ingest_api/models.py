"""The responses' shapes, for the OpenAPI document (and the schemathesis run that checks the
server keeps to it)."""

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, naming the dataset, version or parameter")


class VerifyState(BaseModel):
    state: Literal["ok", "problems", "pending", "off", "nothing published"]
    mode: Literal["chain", "full", "off"]
    version: str | None = Field(None, description="the version checked")
    checked_at: str | None = None
    problems: list[str] = Field(default_factory=list, description="the first problems found")


class WarehouseTable(BaseModel):
    schema_: str = Field(alias="schema")
    table: str


class DatasetSummary(BaseModel):
    dataset_id: str
    description: str
    version: str | None = Field(None, description="the current version (null: none yet)")
    rows: int | None = Field(None, description="keys published: rows of the latest table")
    high_water_marks: dict[str, str] = Field(default_factory=dict)
    last_published: str | None = Field(None, description="when the current version was made")
    latest_partition: str | None = None
    time_column: str | None = None
    primary_keys: list[str] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict)
    verify: VerifyState
    warehouse: WarehouseTable | None = None


class DatasetList(BaseModel):
    datasets: list[DatasetSummary]


class DataPage(BaseModel):
    dataset_id: str
    version: str = Field(description="the version every row of this scan is from")
    source: Literal["store", "warehouse"]
    columns: list[str]
    count: int = Field(description="rows on this page")
    rows: list[dict[str, Any]]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class VersionSummary(BaseModel):
    version: str
    parent_version: str | None
    partition: str | None
    created_at: str
    counts: dict[str, int]
    rows_total: int
    high_water_marks: dict[str, str]
    files: int
    bytes: int | None = Field(description="of its event files (null: a format 1 manifest)")
    checks_failed: list[str] = Field(description="checks that did not pass (warnings)")


class VersionList(BaseModel):
    dataset_id: str
    current: str | None
    versions: list[VersionSummary] = Field(description="newest first")


class VersionDetail(BaseModel):
    dataset_id: str
    current: bool = Field(description="whether this is the current version")
    manifest: dict[str, Any] = Field(description="the manifest as stored (docs/storage.md)")


class QuarantinePage(BaseModel):
    dataset_id: str
    count: int
    rows: list[dict[str, Any]]
    next_cursor: str | None


class Check(BaseModel):
    ok: bool
    detail: str


class DatasetHealth(BaseModel):
    last_run_status: str | None = Field(description="of the newest Dagster run (null: none)")
    last_run_at: str | None = None
    version: str | None = None


class Health(BaseModel):
    status: Literal["ok", "failing"]
    checks: dict[str, Check] = Field(description="store, warehouse (when set), dagster")
    datasets: dict[str, DatasetHealth]


class Failure(BaseModel):
    run_id: str
    at: str | None
    reason: str


class Durations(BaseModel):
    count: int
    mean_s: float | None
    p50_s: float | None
    max_s: float | None
    last_s: float | None


class DatasetStats(BaseModel):
    runs: int
    successes: int
    failures: int
    last_failure: Failure | None
    durations: Durations
    versions: int = Field(description="published versions on the chain")
    rows_published: int = Field(description="keys of the current version")
    rows_added: int = Field(description="rows added over every version")
    rows_revised: int = Field(description="rows revised over every version")
    rows_rejected: int = Field(description="rows rejected over every version")


class Stats(BaseModel):
    dagster: Check
    datasets: dict[str, DatasetStats]
