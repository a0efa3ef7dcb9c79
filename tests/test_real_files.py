"""Real files from other projects' test suites and data packages (tests/fixtures/real/), each
with a dataset YAML written from docs/contract.md and an expectation computed without Ingest
(tests/fixtures/real/build_expectations.py): run raw -> parse -> normalize -> publish, then the
published table, the quarantine or the refusal must be what the expectation says.

`bench/real_files.py` runs the same cases and prints a table of outcomes."""

import datetime as dt
import json
import math
import re
import shutil
import traceback
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingest_assets import stages
from ingest_assets.contract import load_config_file
from ingest_assets.eventstore import published_table
from ingest_resources.errors import IngestError
from ingest_resources.runtime import local_runtime

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "fixtures" / "real"
EXACT, REFUSED, WRONG, CRASHED = "published exactly", "refused clearly", "wrong", "crashed"


def case_files() -> list[str]:
    """Every file of the corpus that has an expectation (the test ids)."""
    return sorted(
        p.name.removesuffix(".expect.json") for p in (CORPUS / "cases").glob("*.expect.json")
    )


def plain(value: Any) -> Any:
    """A published cell as the expectations spell it."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return {"naive timestamp": value.isoformat()}
        return {"timestamp": value.astimezone(dt.UTC).isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def same(expected: Any, actual: Any) -> bool:
    """Equal, and of the same kind: an int is not a float, a bool not an int; `{"day": d}` is a
    date or that day's UTC midnight."""
    if isinstance(expected, dict) and "day" in expected:
        day = expected["day"]
        return actual in ({"date": day}, {"timestamp": f"{day}T00:00:00+00:00"})
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, float):
        return isinstance(actual, float) and math.isclose(expected, actual, rel_tol=1e-12)
    if isinstance(expected, int):
        return isinstance(actual, int) and expected == actual
    return bool(expected == actual)


def run_case(file: str, workdir: Path) -> dict[str, Any]:
    """The dataset of `file` run through the stages in a store of its own: what was published
    (rows, columns), what was quarantined, or the error."""
    configs = workdir / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    shutil.copy(CORPUS / "cases" / f"{file}.yaml", configs / "dataset.yaml")
    outcome: dict[str, Any] = {"error": None, "rows": None, "quarantine": []}
    try:
        config = load_config_file(configs / "dataset.yaml")
        runtime = local_runtime(workdir / "store")
        try:
            stages.run_raw(runtime, config, "all")
            stages.run_parse(runtime, config, "all")
            stages.run_normalize(runtime, config, "all")
            stages.run_publish(runtime, config, "all")
        finally:
            quarantine = stages.read_quarantine(runtime, config)
            if quarantine is not None:
                outcome["quarantine"] = quarantine.to_pylist()
        try:
            table = published_table(runtime.store, config)
        except KeyError:
            table = None
        if table is not None:
            outcome["columns"] = table.column_names
            outcome["rows"] = [{k: plain(v) for k, v in r.items()} for r in table.to_pylist()]
    except IngestError as exc:
        outcome["error"] = exc
    except Exception as exc:  # noqa: BLE001 - a crash is an outcome to report
        outcome["error"] = exc
        outcome["crash"] = "".join(traceback.format_exception(exc)[-3:])
    return outcome


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _difference(expected: Any, actual: Any) -> str:
    if isinstance(expected, str) and isinstance(actual, str) and len(expected) > 60:
        at = next(
            (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b), None
        )
        at = min(len(expected), len(actual)) if at is None else at
        start = max(0, at - 20)
        return (
            f"{len(actual)} characters, expected {len(expected)}; from character {at}: "
            f"{actual[start : at + 20]!r}, expected {expected[start : at + 20]!r}"
        )
    return f"{_short(actual)}, expected {_short(expected)}"


def first_difference(expected: dict[str, Any], outcome: dict[str, Any]) -> str | None:
    """What differs first between a published expectation and the outcome, or None."""
    rows = outcome["rows"] or []
    columns = outcome.get("columns") or []
    if outcome["rows"] is None:
        return "nothing published"
    for column in expected["columns"]:
        if column not in columns:
            return f"column {column!r} missing (published columns: {_short(columns, 300)})"
    if len(rows) != expected["rows"]:
        return f"{len(rows)} rows published, expected {expected['rows']}"
    keys = expected["key_columns"]
    if expected["keys"] is not None:
        left = [[plain(r[k]) for k in keys] for r in rows]
        for key in expected["keys"]:
            match = next((i for i, a in enumerate(left) if all(map(same, key, a))), None)
            if match is None:
                return f"key {_short(key)} not published (e.g. {_short(left[:3])})"
            left.pop(match)
    for cell in expected["cells"]:
        if cell["key"]:
            row = next((r for r in rows if all(map(same, cell["key"], [r[k] for k in keys]))), None)
        else:
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            return f"no published row with key {_short(cell['key'])}"
        for column, value in cell["values"].items():
            if column not in row:
                return f"column {column!r} missing"
            if not same(value, row[column]):
                return f"key {_short(cell['key'], 60)}, column {column!r}: {_difference(value, row[column])}"
    return quarantine_difference(expected.get("quarantine"), outcome["quarantine"])


def quarantine_difference(
    expected: dict[str, Any] | None, rejected: list[dict[str, Any]]
) -> str | None:
    if not expected:
        if rejected:
            first = rejected[0]
            return f"{len(rejected)} rows quarantined, expected none (first: row {first.get('_row')}: {first.get('reason')})"
        return None
    codes = dict(Counter(r.get("reason_code") for r in rejected))
    if len(rejected) != expected["rows"] or codes != expected["reason_codes"]:
        return f"quarantine {len(rejected)} rows {codes}, expected {expected['rows']} {expected['reason_codes']}"
    rows = sorted(r.get("_row") or -1 for r in rejected)
    if rows != expected["source_rows"]:
        return f"quarantined source rows {_short(rows)}, expected {_short(expected['source_rows'])}"
    return None


def check(file: str, workdir: Path) -> tuple[str, str]:
    """(outcome, detail): published exactly, refused clearly, wrong (the first difference) or
    crashed (the error)."""
    expected = json.loads((CORPUS / "cases" / f"{file}.expect.json").read_text(encoding="utf-8"))
    outcome = run_case(file, workdir)
    error = outcome["error"]
    if "crash" in outcome:
        return CRASHED, f"{type(error).__name__}: {_short(str(error), 300)}"
    if "refused" in expected:
        words = expected["refused"]["words"]
        if error is None:
            published = len(outcome["rows"] or [])
            return (
                WRONG,
                f"not refused ({published} rows published); expected an error naming {words}",
            )
        message = str(error).replace(str(CORPUS / "files" / file), "<file>")
        missing = [w for w in words if not re.search(w, message, re.IGNORECASE)]
        if missing:
            return WRONG, f"refused without naming {missing}: {_short(str(error), 300)}"
        if outcome["rows"]:
            return WRONG, f"refused, but {len(outcome['rows'])} rows were published"
        return REFUSED, _short(str(error), 200)
    if error is not None:
        return WRONG, f"refused: {type(error).__name__}: {_short(str(error), 300)}"
    difference = first_difference(expected["published"], outcome)
    if difference:
        return WRONG, difference
    return EXACT, f"{len(outcome['rows'])} rows"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("file", case_files())
def test_real_file(file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_PROJECT_ROOT", str(REPO))
    status, detail = check(file, tmp_path)
    assert status in (EXACT, REFUSED), f"{file}: {status}: {detail}"
