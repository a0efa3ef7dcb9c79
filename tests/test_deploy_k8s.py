"""deploy/: the Kubernetes manifests against the Kubernetes schemas (kubernetes-validate, offline),
the Helm values against the keys Dagster's chart accepts, and both against the image and the
instance config they must agree with (user, code location, limits). No secret is written in any."""

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30.0"
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())

# The keys of Dagster's chart (helm/dagster/schema/schema/charts/**: its pydantic models, all
# `extra="forbid"`, that generate values.schema.json), for the sections Ingest sets.
CHART: dict[str, Any] = {
    "global": {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"},
    "serviceAccount": {"create", "name", "annotations"},
    "dagster-user-deployments": {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    "runLauncher": {"type", "config"},
    "dagsterDaemon": {
        "schedulerName", "volumeMounts", "volumes", "enabled", "image", "runCoordinator",
        "heartbeatTolerance", "env", "envConfigMaps", "envSecrets", "deploymentLabels", "labels",
        "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
        "resources", "livenessProbe", "readinessProbe", "startupProbe", "annotations",
        "runMonitoring", "runRetries", "sensors", "schedules",
    },
    "concurrency": {"enabled", "pools", "runs"},
    "postgresql": {
        "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
        "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service",
    },
    "generatePostgresqlPasswordSecret": None,
    "redis": {"enabled", "external", "host", "port", "brokerDbNumber", "backendDbNumber", "brokerUrl", "backendUrl", "usePassword", "password"},
    "rabbitmq": {"enabled", "rabbitmq", "service", "volumePermissions"},
    "flower": {"enabled", "service", "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext", "resources", "livenessProbe", "startupProbe", "annotations"},
}  # fmt: skip
USER_DEPLOYMENT = {
    "name", "image", "port", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
    "env", "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations",
    "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe",
    "startupProbe", "labels", "volumeMounts", "volumes", "schedulerName",
}  # fmt: skip
K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
RUN_K8S_CONFIG = {
    "containerConfig",
    "podSpecConfig",
    "podTemplateSpecMetadata",
    "jobSpecConfig",
    "jobMetadata",
}
QUEUED = {
    "maxConcurrentRuns",
    "tagConcurrencyLimits",
    "dequeueIntervalSeconds",
    "dequeueNumWorkers",
    "dequeueUseThreads",
}
CONCURRENCY = {"pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"}, "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"}}  # fmt: skip
SECRETISH = re.compile(
    r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|API_KEY|PG_URL|POSTGRES_URL|BROKER|BACKEND)$", re.I
)


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


@pytest.mark.parametrize("name", ["ingest-run-job.yaml", "serviceaccount.yaml"])
def test_manifests_are_valid_kubernetes(name: str) -> None:
    for document in _documents(name):
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_a_manifest_error_is_caught() -> None:  # the validator is not a no-op
    (job,) = _documents("ingest-run-job.yaml")
    job["spec"]["template"]["spec"]["containers"][0]["args"] = "run DATASET"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_the_job_runs_the_image_entrypoint_as_its_user() -> None:
    (job,) = _documents("ingest-run-job.yaml")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "command" not in container  # the ENTRYPOINT (`ingest`) stays; the Job passes args
    assert container["args"][0] == "run"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["ingest"]' in dockerfile
    user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert user == [
        (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"]))
    ]
    assert pod["serviceAccountName"] == "ingest"
    assert _documents("serviceaccount.yaml")[0]["metadata"]["name"] == "ingest"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    env = re.search(r"DAGSTER_HOME=(\S+)", dockerfile)
    assert env and env.group(1) in mounts  # writable under a read-only root filesystem


def _no_unknown_keys(
    values: dict[str, Any], allowed: dict[str, Any] | set[str], where: str
) -> None:
    extra = set(values) - set(allowed)
    assert not extra, f"{where}: keys the chart does not have: {sorted(extra)}"


def test_helm_values_use_only_keys_the_chart_has() -> None:
    _no_unknown_keys(VALUES, CHART, "values")
    for section, keys in CHART.items():
        if isinstance(keys, set) and section in VALUES:
            _no_unknown_keys(VALUES[section], keys, section)
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    _no_unknown_keys(deployment, USER_DEPLOYMENT, "deployment")
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    _no_unknown_keys(launcher, K8S_RUN_LAUNCHER, "k8sRunLauncher")
    _no_unknown_keys(launcher["runK8sConfig"], RUN_K8S_CONFIG, "runK8sConfig")
    coordinator = VALUES["dagsterDaemon"]["runCoordinator"]
    _no_unknown_keys(coordinator["config"]["queuedRunCoordinator"], QUEUED, "queuedRunCoordinator")
    for part, keys in CONCURRENCY.items():
        _no_unknown_keys(VALUES["concurrency"][part], keys, f"concurrency.{part}")


def test_helm_values_say_what_ingest_needs() -> None:
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "ingest_assets.definitions"]
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = VALUES["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    instance = yaml.safe_load((REPO / "dagster.postgres.yaml").read_text())["concurrency"]
    concurrency = VALUES["concurrency"]
    assert concurrency["enabled"]
    assert concurrency["pools"]["defaultLimit"] == instance["pools"]["default_limit"] == 1
    assert concurrency["runs"]["tagConcurrencyLimits"] == instance["runs"]["tag_concurrency_limits"]
    security = deployment["podSecurityContext"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"USER {security['runAsUser']}:{security['runAsGroup']}" in dockerfile


def test_the_user_deployment_fragments_are_valid_kubernetes() -> None:
    """The deployment's env, secrets, resources and security contexts, as the chart puts them in
    its pod spec, against the Kubernetes schemas."""
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    image = deployment["image"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ingest-code-location"},
        "spec": {
            "serviceAccountName": VALUES["global"]["serviceAccountName"],
            "securityContext": deployment["podSecurityContext"],
            "containers": [
                {
                    "name": "ingest",
                    "image": f"{image['repository']}:{image['tag']}",
                    "imagePullPolicy": image["pullPolicy"],
                    "args": ["dagster", "api", "grpc", *deployment["dagsterApiGrpcArgs"]],
                    "env": deployment["env"],
                    "envFrom": [
                        {"secretRef": s} for s in deployment["envSecrets"] + launcher["envSecrets"]
                    ],
                    "resources": deployment["resources"],
                    "securityContext": deployment["securityContext"],
                    "ports": [{"containerPort": deployment["port"]}],
                },
                {
                    "name": "run",
                    "image": f"{image['repository']}:{image['tag']}",
                    **launcher["runK8sConfig"]["containerConfig"],
                },
            ],
        },
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def _literal_env(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(name, value) of every env entry written with a literal value, anywhere."""
    found = []
    if isinstance(node, dict):
        if {"name", "value"} <= set(node):
            found.append((str(node["name"]), path))
        for key, value in node.items():
            found += _literal_env(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _literal_env(value, f"{path}[{i}]")
    return found


def test_no_secret_is_written_in_deploy_or_the_image() -> None:
    documents = [VALUES, *_documents("ingest-run-job.yaml")]
    for document in documents:
        for name, where in _literal_env(document):
            assert not SECRETISH.search(name), f"{where}: {name} must come from a Secret"
    text = (REPO / "Dockerfile").read_text()
    assert not re.search(r"(AWS_|SECRET|PASSWORD|TOKEN|_KEY)", text.split("ENV", 1)[1])
    assert "postgresqlPassword" not in VALUES["postgresql"]
    assert VALUES["generatePostgresqlPasswordSecret"] is False
