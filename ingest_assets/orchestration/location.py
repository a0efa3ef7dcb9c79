"""The code location's builder: dataset contracts -> one `Definitions` (assets, checks, sensors,
schedules, the `ingest` resource), with the config files left out reported where a user looks.

Both entry points call `build_definitions`: the `IngestDatasets` component (ingest_assets/
components, what `dg` and `ingest_assets.definitions:defs` load) and the tests. A file that
cannot be loaded (invalid YAML, a contract error, a dataset_id declared twice, a hostile
document) never stops the others: every valid dataset is built, and the problems are reported
(see `config_errors`) and logged.
"""

import functools
import logging

import dagster as dg

from ingest_assets import settings
from ingest_assets.contract import DatasetConfig, Problem, load_config_dir
from ingest_assets.orchestration.automation import build_automation
from ingest_assets.orchestration.executors import executor_from_env
from ingest_assets.orchestration.factory import dataset_assets
from ingest_resources.environment import StoreEnvironment
from ingest_resources.errors import ConfigError
from ingest_resources.resource import IngestResource

log = logging.getLogger(__name__)

CONFIG_ERRORS = "ingest_config_errors"
# ["ingest", "config_errors"]: no dataset's key (["<dataset_id>", "<stage>"]) can be this one
CONFIG_ERRORS_KEY = dg.AssetKey(["ingest", "config_errors"])


class DatasetConfigProblems(ConfigError):
    """Raised by the `ingest_config_errors` sensor and asset: its message names every file."""


def _headline(problems: list[Problem]) -> str:
    files = len({p.file for p in problems})
    return (
        f"{files} dataset config file(s) not loaded, {len(problems)} problem(s); "
        "fix them (`ingest validate` lists them), then reload the code location"
    )


def _report(problems: list[Problem]) -> str:
    return "\n".join([_headline(problems), *(str(p) for p in problems)])


def _markdown(problems: list[Problem]) -> str:
    rows = "\n".join(f"- `{p.file}`: `{p.field or '-'}`: {p.message}" for p in problems)
    return f"**{_headline(problems)}**\n\n{rows}"


def config_errors(problems: list[Problem]) -> tuple[dg.AssetsDefinition, dg.SensorDefinition]:
    """What the UI shows of the files left out:
    - an asset `ingest/config_errors` (group `ingest_config_errors`) whose description lists
      every problem, in the asset catalog and lineage graph; materializing it fails with them;
    - a sensor `ingest_config_errors`, running by default, whose every tick fails with them:
      a failing sensor on the Overview and Automation pages while the daemon runs."""
    description = _markdown(problems)
    report = _report(problems)

    @dg.asset(
        key=CONFIG_ERRORS_KEY,
        group_name=CONFIG_ERRORS,
        description=description,
        metadata={
            "problems": dg.MetadataValue.md(description),
            "files": dg.MetadataValue.json(sorted({p.file for p in problems})),
        },
        kinds={"yaml"},
    )
    def _asset() -> None:
        raise dg.Failure(description=report)

    @dg.sensor(
        name=CONFIG_ERRORS,
        minimum_interval_seconds=300,
        description=description,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        raise DatasetConfigProblems([report])

    return _asset, _sensor


def _build_each(configs: list[DatasetConfig]) -> tuple[list, list, list, list[Problem]]:
    """Assets, sensors and schedules, dataset by dataset: one that Dagster refuses is a problem
    of its own, the others are built."""
    assets, sensors, schedules, problems = [], [], [], []
    for config in configs:
        try:
            built = dataset_assets(config)
            dataset_sensors, dataset_schedules = build_automation([config])
        except Exception as exc:  # noqa: BLE001 - reported as this dataset's problem
            where = f"dataset {config.dataset_id}"
            problems.append(Problem(where, "", f"cannot be built: {exc}", config.dataset_id))
            continue
        assets += built
        sensors += dataset_sensors
        schedules += dataset_schedules
    return assets, sensors, schedules, problems


@functools.cache
def _resource_for(environment: StoreEnvironment) -> IngestResource:
    return IngestResource.from_environment(environment)


def shared_resource() -> IngestResource:
    """The `ingest` resource of this environment, one object however many `Definitions` ask:
    `Definitions.merge` (a defs folder with several `IngestDatasets`) refuses two different
    objects under one resource key."""
    return _resource_for(StoreEnvironment.from_env())


def build_definitions(
    configs: list[DatasetConfig] | None = None, problems: list[Problem] | None = None
) -> dg.Definitions:
    """The datasets' definitions; without `configs`, every valid dataset of INGEST_CONFIG_DIR.
    `problems` (files not loaded) are logged and shown as `config_errors`."""
    problems = list(problems or [])
    if configs is None:
        configs, found = load_config_dir(settings.config_dir())
        problems += found
    assets, sensors, schedules, failed = _build_each(configs)
    problems += failed
    for problem in problems:
        log.error("dataset config not loaded: %s", problem)
    if problems:
        asset, sensor = config_errors(problems)
        assets.append(asset)
        sensors.append(sensor)
    return dg.Definitions(
        assets=assets,
        sensors=sensors,
        schedules=schedules,
        resources={"ingest": shared_resource()},
        executor=executor_from_env(),  # INGEST_EXECUTOR (orchestration/executors.py)
    )
