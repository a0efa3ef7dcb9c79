"""Progress on long runs: rows and bytes per stage as they go, in the run's log and on the
terminal (a bar on a tty, plain lines otherwise)."""

import io
import time

import dagster as dg
import pytest
from werkzeug import Request, Response

from ingest_assets.cli import main
from ingest_resources import progress

pytestmark = pytest.mark.timeout(60)

ROWS = 4000
CHUNKS = 8


def _slow_csv(request: Request) -> Response:
    """A CSV of ROWS rows sent in CHUNKS pieces, 0.15 s apart (chunked: no Content-Length)."""
    lines = ["id,value\n", *(f"{n},{n * 1.5}\n" for n in range(ROWS))]
    step = len(lines) // CHUNKS + 1

    def body():
        for start in range(0, len(lines), step):
            time.sleep(0.15)
            yield "".join(lines[start : start + step]).encode()

    return Response(body(), mimetype="text/csv", direct_passthrough=True)


def test_a_slow_source_reports_its_bytes_as_they_come(httpserver, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "INTERVAL_S", 0.2)
    httpserver.expect_request("/slow.csv").respond_with_handler(_slow_csv)
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "slow.yaml").write_text(
        f"dataset_id: SLOW\nsource: {{kind: http, url: '{httpserver.url_for('/slow.csv')}', "
        "format: csv}\nnormalize: {primary_keys: [id], schema: {value: float64}}\n"
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    assert main(["run", "SLOW"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("SLOW/raw: ")]
    assert len(lines) >= 3, captured.err  # about 1.2 s of body, a line every 0.2 s
    assert all(" KB (" in line and line.endswith(" s") for line in lines)
    sizes = [float(line.split(": ")[1].split(" KB")[0].replace(",", "")) for line in lines]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]  # growing as the body arrives
    assert '"rows_added": 4000' in captured.out
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        logged = [e.user_message for e in instance.all_logs(run.run_id)]
    assert sum(message.startswith("SLOW/raw: ") and " KB (" in message for message in logged) >= 3


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_is_redrawn_in_place(monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    terminal, logged = _Terminal(), []
    with progress.shown_on(progress.Console(terminal)):
        with progress.tracking("DS/raw", logged.append):
            progress.expect_bytes(4096)
            progress.add(bytes_=1024)
            progress.add(bytes_=3072)
        with progress.tracking("DS/parsed", logged.append):
            progress.add(rows=10)
    drawn = terminal.getvalue()
    assert drawn.count("\r[") == 3 and "\n" not in drawn  # redrawn, never a new line
    assert "[######                  ] DS/raw: 1.0 KB of 4.0 KB" in drawn
    assert "[########################] DS/raw: 4.0 KB of 4.0 KB" in drawn
    assert drawn.endswith("\r\x1b[K")  # the bar's line is cleared for what follows
    assert [line.split(" (")[0] for line in logged] == [
        "DS/raw: 1.0 KB of 4.0 KB",
        "DS/raw: 4.0 KB of 4.0 KB",
        "DS/parsed: 10 rows",
    ]
    progress.add(rows=5)  # nothing tracked: nothing happens
    assert len(logged) == 3
