"""The Dagster UI in a browser (Playwright on Debian's chromium, headless) over a demo instance:
a series dataset's published asset shows its per-series summary after a re-run that found
nothing new, no asset is left "Materializing" by a run that could not start, and `ingest
backfill` shows on the backfill's page.

Needs /usr/bin/chromium (`make test` installs Debian's package when it is missing)."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest_assets.cli import main
from ingest_assets.orchestration.metadata import CHART_POINTS
from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
DATASET = "BCRA_INFOMONDIA"
SERIES = ("BCRA_BASE_MONETARIA", "BCRA_BAIBAR", "BCRA_RESERVAS")

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _latest_partition() -> str:
    from ingest_assets.cli.datasets import dataset_config
    from ingest_assets.orchestration.partitions import partitions_definition

    partitions = partitions_definition(dataset_config(DATASET).partitions)
    assert partitions is not None
    return str(partitions.get_last_partition_key())


def _a_run_that_could_not_start() -> None:
    """What used to leave a run NOT_STARTED (and the dataset's assets "Materializing")."""
    import dagster as dg

    from ingest_assets.cli.datasets import dataset_config
    from ingest_assets.cli.launch import dataset_job, execute

    job, _ = dataset_job(dataset_config(DATASET))
    with dg.DagsterInstance.get() as instance, pytest.raises(Exception, match="LOUD"):
        execute(job, instance, _latest_partition(), "LOUD")


@pytest.fixture
def webserver(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`dagster-webserver` over this test's DAGSTER_HOME, with the one dataset's config."""
    configs = isolated_env / "configs"
    configs.mkdir()
    sample = (REPO / "dataset_configs" / "bcra_infomondia.yaml").read_text()
    # declared daily (each day the workbook as read that day): the test runs a backfill
    daily = "partitions: {kind: daily, start: 2026-11-01, snapshot: true}\n"
    (configs / "bcra_infomondia.yaml").write_text(sample + daily)
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    monkeypatch.setenv("INGEST_PROJECT_ROOT", str(REPO))
    latest = _latest_partition()
    assert main(["backfill", DATASET, "--start", latest, "--end", latest]) == 0  # publishes
    assert main(["run", DATASET]) == 0  # finds nothing new
    _a_run_that_could_not_start()
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "dagster-webserver"),
        *("-m", "ingest_assets.definitions", "-h", "127.0.0.1", "-p", str(port)),
    ]
    server = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dagster-webserver did not start: {server.stderr.read()!r}")
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _backfill_id() -> str:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        (backfill,) = instance.get_backfills()
        return str(backfill.backfill_id)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium missing: `make test` installs it"
)
def test_the_published_asset_shows_its_latest_summary_after_a_no_op_run(
    webserver: str, tmp_path: Path
) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"  # what the browser saw, kept with pytest's tmp folders
    shots.mkdir()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{webserver}/assets/{DATASET}/published")
            skip = page.get_by_role("button", name="Skip")  # the UI's newsletter sign-up
            with contextlib.suppress(PlaywrightError):
                skip.click(timeout=5_000)
            for series in SERIES:  # the per-series table of the latest materialization
                expect(page.get_by_text(series, exact=True).first).to_be_visible()
            expect(page.get_by_text(f"last {CHART_POINTS}").first).to_be_visible()
            expect(
                page.get_by_text("not configured (no notify.sns_topic_arn").first
            ).to_be_attached()
            chart = page.get_by_text(SERIES[0], exact=True).first
            chart.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "published.png"))
            cell = chart.bounding_box()
            assert cell is not None and cell["height"] < 40  # one line: the name does not wrap
            # the sparkline and the last value are not clipped by the metadata panel
            expect(page.get_by_text(f"last {CHART_POINTS}").first).to_be_in_viewport(ratio=1)
            expect(page.get_by_text("last", exact=True).first).to_be_in_viewport(ratio=1)
            page.goto(f"{webserver}/asset-groups/{DATASET}")
            expect(page.get_by_text("published", exact=True).first).to_be_visible()
            page.wait_for_timeout(2000)  # the graph's statuses arrive after its nodes
            assert page.get_by_text("Materializing").count() == 0
            assert page.get_by_text("In progress").count() == 0
            page.screenshot(path=str(shots / "group.png"), full_page=True)
            page.goto(f"{webserver}/runs/b/{_backfill_id()}")
            # `ingest backfill` is Dagster's: its page, each asset's partition materialized
            expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
            expect(page.get_by_text("100% completed")).to_have_count(4)
            expect(page.get_by_role("link", name=f"{DATASET} / published")).to_be_visible()
            page.screenshot(path=str(shots / "backfill.png"), full_page=True)
        finally:
            browser.close()
