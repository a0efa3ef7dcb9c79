"""What a failed step gets from Dagster: a retryable `IngestError` (a source that gave up for
now, a lost publish race) runs again under the assets' retry policy; any other error fails the
step at once, with its message alone. Through `ingest run`, a real HTTP server and the instance's
event log."""

import textwrap
from pathlib import Path

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingest_assets.cli import main
from ingest_assets.orchestration.factory import RETRY_POLICY

CSV = "id,value\n1,2.5\n2,3.5\n"


def _dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "flaky.yaml").write_text(
        textwrap.dedent(f"""
        dataset_id: FLAKY
        source:
          kind: http
          url: {url}
          format: csv
          retry: {{max_attempts: 1}}
        normalize: {{primary_keys: [id]}}
        """)
    )
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))


def _serve(httpserver: HTTPServer, statuses: list[int]) -> list[int]:
    """Answer with `statuses` in turn, then the CSV; returns the statuses sent so far."""
    sent: list[int] = []

    def answer(request: Request) -> Response:
        status = statuses[len(sent)] if len(sent) < len(statuses) else 200
        sent.append(status)
        return Response(CSV if status == 200 else "busy", status=status, mimetype="text/csv")

    httpserver.expect_request("/data.csv").respond_with_handler(answer)
    return sent


def _step_events(event_type: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    with dg.DagsterInstance.get() as instance:
        records = instance.get_records_for_run(
            instance.get_runs(limit=1)[0].run_id, of_type=event_type
        ).records
        return [record.event_log_entry for record in records]


def test_the_assets_retry_with_backoff() -> None:
    assert RETRY_POLICY.max_retries == 3
    assert RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL


def test_a_source_that_gave_up_for_now_is_fetched_again_by_dagsters_retry(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _dataset(tmp_path, monkeypatch, httpserver.url_for("/data.csv"))
    sent = _serve(httpserver, [503])
    assert main(["run", "FLAKY"]) == 0
    assert sent == [503, 200]
    retried = _step_events(dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert [entry.step_key for entry in retried] == ["FLAKY__raw"]
    assert main(["export", "FLAKY", "--format", "jsonl"]) == 0
    assert capsys.readouterr().out.count('"id"') == 2


def test_an_error_a_retry_cannot_fix_fails_at_once_with_its_message(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _dataset(tmp_path, monkeypatch, httpserver.url_for("/data.csv"))
    sent = _serve(httpserver, [404, 404, 404, 404])
    assert main(["run", "FLAKY"]) == 1
    assert sent == [404]  # asked once: a 404 does not get better by asking again
    assert _step_events(dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    err = capsys.readouterr().err
    assert "FLAKY__raw: dataset FLAKY: " in err and "HTTP 404" in err
    assert "Traceback" not in err
