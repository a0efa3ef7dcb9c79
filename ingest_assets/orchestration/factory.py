"""The asset factory: one dataset contract -> raw -> parsed -> normalized -> published (-> warehouse).

This is the load-time half: keys, groups, partitions, deps, tags, descriptions and check specs.
What an asset does when it runs is in `asset_bodies`, imported when an asset first runs, so a
code location with a thousand datasets loads without importing Arrow, pandas or the stages.
"""

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from types import CodeType, ModuleType

import dagster as dg

from ingest_assets.contract import DatasetConfig
from ingest_assets.orchestration.partitions import dataset_partitions
from ingest_assets.orchestration.pools import asset_pool
from ingest_assets.rows.check_plan import planned_checks
from ingest_resources.resource import IngestResource

STAGE_DESCRIPTIONS = {
    "raw": "source bytes, content-addressed",
    "parsed": "rows as the source means them",
    "normalized": "typed, UTC, keyed; checked before publish",
    "published": "published event versions",
}

# What a retryable error (a lost publish race, a source that gave up for now, a busy lock) gets:
# the step runs again after 2 s, 4 s, 8 s (+-50 %); every other error fails the step at once.
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

AssetFunction = Callable[[dg.AssetExecutionContext, IngestResource], dg.MaterializeResult]
_SIGNATURES: dict[CodeType, inspect.Signature] = {}


def _bodies() -> ModuleType:
    from ingest_assets.orchestration import assets as asset_bodies

    return asset_bodies


def _with_shared_signature(function: AssetFunction) -> AssetFunction:
    """Dagster inspects an asset function's signature about 17 times while building the asset.
    Every closure of one `def` has the same signature: compute it once and attach it, which
    `inspect.signature` then returns as is (a third of the factory's time for 1,000 datasets)."""
    signature = _SIGNATURES.get(function.__code__)
    if signature is None:
        signature = _SIGNATURES[function.__code__] = inspect.signature(function)
    function.__signature__ = signature  # type: ignore[attr-defined]
    return function


def _compute(stage: str, config: DatasetConfig) -> AssetFunction:
    def compute(context: dg.AssetExecutionContext, ingest: IngestResource) -> dg.MaterializeResult:
        return getattr(_bodies(), stage)(context, ingest, config)

    return _with_shared_signature(compute)


def _check_specs(config: DatasetConfig) -> list[dg.AssetCheckSpec]:
    normalized_key = dg.AssetKey([config.dataset_id, "normalized"])
    return [
        dg.AssetCheckSpec(
            check.check_name,
            asset=normalized_key,
            blocking=check.blocking,
            description=f"{check.name} ({check.severity}: {'blocks publish' if check.blocking else 'reports'})",
        )
        for check in planned_checks(config)
    ]


def _description(stage: str, config: DatasetConfig) -> str:
    described = config.description or config.dataset_id
    if stage == "warehouse":
        target = config.publish.postgres
        assert target is not None  # (the warehouse stage exists only with publish.postgres)
        return f"{described}: upserted into PostgreSQL {target.schema_}.{target.table}"
    return f"{described}: {STAGE_DESCRIPTIONS[stage]}"


def _stage_options(stage: str, config: DatasetConfig) -> dict:
    if stage == "normalized":
        return {"check_specs": _check_specs(config)}
    if stage == "warehouse":  # nothing materialized without a database (assets.warehouse)
        return {"kinds": {"postgres"}, "output_required": False}
    return {}


@contextlib.contextmanager
def quiet_beta() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        yield


def dataset_assets(config: DatasetConfig) -> list[dg.AssetsDefinition]:
    dataset_id = config.dataset_id
    partitions = dataset_partitions(config)
    # a run over several files of a landing zone is one run (`ingest run` takes every new file)
    policy = dg.BackfillPolicy.single_run() if config.partitions.kind == "files" else None
    tags = {"ingest/source": config.source.kind, "ingest/format": config.source.format}
    assets: list[dg.AssetsDefinition] = []
    for stage in config.stages:
        # (`backfill_policy` is beta: Dagster would say so for every asset of the dataset)
        with quiet_beta() if policy else contextlib.nullcontext():
            decorate = dg.asset(
                name=stage,
                key_prefix=[dataset_id],
                group_name=dataset_id,
                partitions_def=partitions,
                tags=tags,
                description=_description(stage, config),
                deps=assets[-1:],
                retry_policy=RETRY_POLICY,
                backfill_policy=policy,
                pool=asset_pool(stage, config),
                **_stage_options(stage, config),
            )
            assets.append(decorate(_compute(stage, config)))
    return assets


def build_assets(configs: list[DatasetConfig]) -> list[dg.AssetsDefinition]:
    return [asset for config in configs for asset in dataset_assets(config)]
