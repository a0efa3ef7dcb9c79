"""GET /datasets, /datasets/{id}/versions[/{version}], /datasets/{id}/quarantine."""

import hashlib
from typing import Annotated

import pyarrow as pa
from fastapi import Query

from ingest_api.cursor import Cursor, decode, digest, encode
from ingest_api.errors import BadParameter, Conflict
from ingest_api.models import (
    DatasetList,
    DatasetSummary,
    QuarantinePage,
    VerifyState,
    VersionDetail,
    VersionList,
    VersionSummary,
    WarehouseTable,
)
from ingest_api.output import json_rows
from ingest_api.routers.common import DatasetId, State, errors, guarded_router
from ingest_api.state import ApiState
from ingest_assets.eventstore import Manifest
from ingest_assets.stages import read_quarantine

router = guarded_router()


def _verify_state(state: ApiState, dataset_id: str, head: Manifest | None) -> VerifyState:
    mode = state.settings.verify
    if head is None:
        return VerifyState(state="nothing published", mode=mode, version=None)
    if mode == "off":
        return VerifyState(state="off", mode="off", version=head.version)
    verdict = state.verifier.verdict(dataset_id, head.version)
    if verdict is None:
        return VerifyState(state="pending", mode=mode, version=head.version)
    return VerifyState(
        state="ok" if verdict.ok else "problems",
        mode=mode,
        version=verdict.version,
        checked_at=verdict.checked_at,
        problems=list(verdict.problems[:5]),
    )


@router.get("/datasets", response_model=DatasetList, summary="every dataset, its current state")
def list_datasets(state: State) -> DatasetList:
    found = []
    for dataset_id in state.catalog.ids():
        config = state.catalog.config(dataset_id)
        head = state.catalog.current(dataset_id)
        target = config.publish.postgres
        found.append(
            DatasetSummary(
                dataset_id=dataset_id,
                description=config.description or "",
                version=head.version if head else None,
                rows=head.rows_total if head else None,
                high_water_marks=dict(head.high_water_marks) if head else {},
                last_published=head.created_at if head else None,
                latest_partition=head.latest_partition if head else None,
                time_column=head.time_column if head else None,
                primary_keys=list(head.primary_keys if head else config.primary_keys),
                columns=dict(head.schema) if head else {},
                verify=_verify_state(state, dataset_id, head),
                warehouse=WarehouseTable(schema=target.schema_, table=target.table)
                if target
                else None,
            )
        )
    return DatasetList(datasets=found)


def _summary(manifest: Manifest) -> VersionSummary:
    sizes = [file.bytes for file in manifest.files]
    failed = [
        name
        for name, result in manifest.checks.items()
        if isinstance(result, dict) and result.get("passed") is False
    ]
    return VersionSummary(
        version=manifest.version,
        parent_version=manifest.parent_version,
        partition=manifest.partition,
        created_at=manifest.created_at,
        counts={k: int(v) for k, v in manifest.counts.items()},
        rows_total=manifest.rows_total,
        high_water_marks=dict(manifest.high_water_marks),
        files=len(manifest.files),
        bytes=None if any(s is None for s in sizes) else sum(s or 0 for s in sizes),
        checks_failed=sorted(failed),
    )


@router.get(
    "/datasets/{dataset_id}/versions",
    response_model=VersionList,
    responses=errors(404),
    summary="the published versions, newest first",
)
def list_versions(dataset_id: DatasetId, state: State) -> VersionList:
    chain = state.catalog.pinned(dataset_id)
    return VersionList(
        dataset_id=dataset_id,
        current=chain[-1].version,
        versions=[_summary(manifest) for manifest in reversed(chain)],
    )


@router.get(
    "/datasets/{dataset_id}/versions/{version}",
    response_model=VersionDetail,
    responses=errors(404),
    summary="one version's manifest: counts, fingerprints, checks, high-water marks",
)
def get_version(dataset_id: DatasetId, version: str, state: State) -> VersionDetail:
    chain = state.catalog.pinned(dataset_id, version[:100])
    current = state.catalog.current(dataset_id)
    return VersionDetail(
        dataset_id=dataset_id,
        current=current is not None and current.version == chain[-1].version,
        manifest=chain[-1].to_dict(),
    )


def _fingerprint(table: pa.Table | None) -> str:
    """What a quarantine scan is pinned to: a digest of every rejected row, in order (the
    quarantine is small, and rewritten by each run of a partition)."""
    if table is None:
        return digest(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()[:16]


@router.get(
    "/datasets/{dataset_id}/quarantine",
    response_model=QuarantinePage,
    responses=errors(404, 409),
    summary="rejected rows with their reasons, paginated as /data",
)
def quarantine(
    dataset_id: DatasetId,
    state: State,
    partition: Annotated[str | None, Query(max_length=100)] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> QuarantinePage:
    config = state.catalog.config(dataset_id)
    table = read_quarantine(state.runtime, config, partition or None)
    rows = 0 if table is None else table.num_rows
    fingerprint = _fingerprint(table)
    offset = 0
    if cursor:
        found = decode(cursor, state.settings.cursor_key)
        if found.dataset != dataset_id or found.filters != digest(partition):
            raise BadParameter("cursor: made for another dataset or partition")
        if found.part != fingerprint:
            raise Conflict(
                f"dataset {dataset_id}: the quarantine changed since this scan began (a run "
                "rejected or let through rows): start again without a cursor"
            )
        offset = found.offset
    page = [] if table is None else json_rows([table.slice(offset, page_size)], table.column_names)
    following = offset + len(page)
    next_cursor = None
    if following < rows:
        made = Cursor(dataset_id, "", digest(partition), fingerprint, following)
        next_cursor = encode(made, state.settings.cursor_key)
    return QuarantinePage(
        dataset_id=dataset_id, count=len(page), rows=page, next_cursor=next_cursor
    )
