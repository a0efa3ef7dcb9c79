"""The image, built without a container runtime: the Dockerfile's COPY lines lay the same files
out in a temporary folder, its RUN line (deploy/install.sh) installs Ingest into a clean venv
there (no PYTHONPATH, no site packages of ours), and the ENTRYPOINT's commands run with the
Dockerfile's ENV: `validate`, `run` on a sample (checked against the source file), `serve`
answering /health, and the gRPC code-location command of docs/deploy.md.

uv's cache (~/.cache/uv) makes the install about 20 s once the wheels are there; the first
install on a machine downloads them (about 30 s more)."""

import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the image build (about 35 s, more on a first install): `make test-deploy`, not `make test` (its budget)
pytestmark = pytest.mark.skipif(
    os.environ.get("INGEST_TEST_DEPLOY") != "1", reason="runs under `make test-deploy`"
)
DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for instruction, arguments in _instructions():
        if instruction == "FROM":
            current = stages.setdefault(arguments.split()[-1], [])
        current.append((instruction, arguments))
    return stages


def _lay_out(stage: list[tuple[str, str]], root: Path) -> Path:
    """Copy what the stage's COPY lines (from the build context) copy, under `root`, relative
    to its WORKDIR; the WORKDIR (under `root`) is returned."""
    workdir = root
    for instruction, arguments in stage:
        if instruction == "WORKDIR":
            workdir = root / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        if instruction == "COPY" and "--from=" not in arguments:
            *sources, target = [a for a in shlex.split(arguments) if not a.startswith("--")]
            for source in sources:
                destination = workdir / target
                if target.endswith("/"):
                    destination = destination / Path(source).name
                destination.parent.mkdir(parents=True, exist_ok=True)
                if (REPO / source).is_dir():
                    _copy_tree(REPO / source, destination)
                else:
                    destination.write_bytes((REPO / source).read_bytes())
    return workdir


def _copy_tree(source: Path, destination: Path) -> None:
    for path in source.rglob("*"):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        target = destination / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def _environment(stage: list[tuple[str, str]], root: Path, venv: Path) -> dict[str, str]:
    """The runtime stage's ENV, its paths moved under `root` (and /opt/ingest to `venv`)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root / "app"),
        "LANG": "C.UTF-8",
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
    }
    for instruction, arguments in stage:
        if instruction != "ENV":
            continue
        for pair in shlex.split(arguments):
            name, value = pair.split("=", 1)
            value = value.replace("$PATH", env["PATH"]).replace("/opt/ingest", str(venv))
            env[name] = value.replace("/app", str(root / "app"))
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, seconds: float) -> tuple[int, bytes]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {seconds} s")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The image's file system (build stage's /src, runtime's /app and /opt/ingest) in tmp."""
    root = tmp_path_factory.mktemp("image")
    stages = _stages()
    source = _lay_out(stages["build"], root)
    (run,) = [arguments for instruction, arguments in stages["build"] if instruction == "RUN"]
    assert "sh deploy/install.sh /opt/ingest /src" in run, run
    (extras,) = [a.split("=", 1)[1].strip('"') for i, a in stages["build"] if i == "ARG"]
    venv = root / "opt" / "ingest"
    env = _environment(stages["runtime"], root, venv)
    # the build runs with this machine's network settings (proxy, CA bundle) and its python3.11
    install = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install.update(UV_CACHE_DIR=env["UV_CACHE_DIR"], INGEST_PYTHON="python3.11")
    done = subprocess.run(
        ["sh", "deploy/install.sh", str(venv), str(source), extras],
        cwd=source,
        env=install,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _lay_out(stages["runtime"], root)
    return root / "app", env


def ingest(
    image: tuple[Path, dict[str, str]], *args: str, configs: Path | None = None
) -> subprocess.CompletedProcess:
    """`docker run IMAGE ARGS` (with `configs`: a config folder mounted as INGEST_CONFIG_DIR)."""
    app, env = image
    if configs is not None:
        env = {**env, "INGEST_CONFIG_DIR": str(configs)}
    return subprocess.run(
        ["ingest", *args], cwd=app, env=env, capture_output=True, text=True, timeout=120
    )


def run_and_export(
    image: tuple[Path, dict[str, str]], dataset: str, *run_args: str, configs: Path | None = None
) -> list[dict]:
    """`ingest run DATASET ...` in the image, then its published rows (`ingest export`)."""
    app, _ = image
    ran = ingest(image, "run", dataset, *run_args, configs=configs)
    assert ran.returncode == 0, ran.stderr
    assert f"{dataset}/published" in ran.stdout
    out = app / f"{dataset}.jsonl"
    exported = ingest(
        image, "export", dataset, "--format", "jsonl", "--out", str(out), configs=configs
    )
    assert exported.returncode == 0, exported.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_the_venv_is_clean_and_the_entrypoint_validates(image) -> None:
    app, env = image
    entrypoint = [a for i, a in _instructions() if i == "ENTRYPOINT"]
    assert entrypoint == ['["ingest"]']
    assert "PYTHONPATH" not in env
    where = subprocess.run(
        ["python", "-c", "import ingest_assets, sys; print(ingest_assets.__file__, sys.prefix)"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    module, prefix = where.stdout.split()
    assert module.startswith(prefix) and "site-packages" in module  # installed, not the checkout
    assert str(REPO) not in module
    validated = ingest(image, "validate")
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.strip() == "ok: 4 dataset(s) valid"


def test_run_publishes_the_sample_and_export_gives_every_source_row(image) -> None:
    app, _ = image
    rows = run_and_export(image, "BCRA_MONETARIAS_CATALOG")
    source = json.loads((app / "sample_data/json/bcra_monetarias.json").read_text("utf-16"))
    wanted = {record["idVariable"]: record["descripcion"] for record in source["results"]}
    assert {row["idVariable"]: row["descripcion"] for row in rows} == wanted
    assert len(rows) == len(wanted)


def test_serve_answers_health_and_the_code_location_serves_grpc(image) -> None:
    app, env = image
    port, grpc_port = _free_port(), _free_port()
    serve = subprocess.Popen(
        ["ingest", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # docs/deploy.md: the same image as a Dagster code location
    grpc = subprocess.Popen(
        ["dagster", "api", "grpc", "-m", "ingest_assets.definitions", "-h", "127.0.0.1"]
        + ["-p", str(grpc_port)],
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status, body = _wait_for(f"http://127.0.0.1:{port}/health", serve, 60)
        assert status == 200
        assert set(json.loads(body)["datasets"]) == {
            "BCRA_INFOMONDIA",
            "BCRA_MONETARIAS_CATALOG",
            "INDEC_IPC_DIVISIONES",
            "REDDIT_HOMELAB_FEED",
        }
        deadline = time.monotonic() + 60
        while True:
            check = subprocess.run(
                ["dagster", "api", "grpc-health-check", "-p", str(grpc_port)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if check.returncode == 0 or time.monotonic() > deadline:
                break
            assert grpc.poll() is None, grpc.stdout.read() if grpc.stdout else ""
            time.sleep(1)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        for process in (serve, grpc):
            process.terminate()
            process.wait(timeout=30)


def test_run_with_a_partition_as_a_job_passes_it(image, tmp_path) -> None:
    """`docker run IMAGE run DATASET --partition P`: the feed's entries, each once (the feed
    declared daily in a mounted config folder: the sample itself is unpartitioned)."""
    app, _ = image
    configs = tmp_path / "configs"
    configs.mkdir()
    feed = "sample_data/rss/reddit_homelab.atom.xml"
    sample = (app / "dataset_configs/reddit_homelab_feed.yaml").read_text()
    sample = sample.replace(f"path: {feed}", f"path: {app / feed}")
    daily = "partitions: {kind: daily, start: 2026-01-01, snapshot: true}\n"
    (configs / "feed.yaml").write_text(sample + daily)
    rows = run_and_export(
        image, "REDDIT_HOMELAB_FEED", "--partition", "2026-01-15", configs=configs
    )
    ids = re.findall(r"<entry>.*?<id>([^<]+)</id>", (app / feed).read_text(), re.S)
    assert sorted(row["id"] for row in rows) == sorted(ids) and len(ids) == 25
