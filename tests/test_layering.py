"""The house rules the layout promises (README, "Where things are"), checked on the source.

- Dagster is imported only by `ingest_assets.orchestration`, `ingest_assets.components`,
  `ingest_assets.cli`, `ingest_assets.definitions`, `ingest_resources.resource` and the read API's
  `ingest_api.dagster_runs` (lazily, for /health and /stats);
- `ingest_resources` imports nothing from `ingest_assets`;
- nothing imports the Dagster wiring but the wiring, the CLI and the definitions;
- no private name (`_x`) is imported from another module;
- every exception class Ingest defines is an `IngestError` (internal control flow excepted);
- no module is much over 400 lines.
"""

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ingest_api
import ingest_assets
import ingest_resources
from ingest_resources.errors import IngestError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest_assets", "ingest_resources", "ingest_api")
WIRING = (
    "ingest_assets.orchestration",
    "ingest_assets.components",  # the IngestDatasets component, loaded by Dagster's defs folder
    "ingest_assets.cli",
    "ingest_assets.definitions",
)
DAGSTER_ALLOWED = (*WIRING, "ingest_resources.resource", "ingest_api.dagster_runs")
PURE = (
    "ingest_assets.contract",
    "ingest_assets.sources",
    "ingest_assets.parsers",
    "ingest_assets.rows",
    "ingest_assets.stages",
    "ingest_assets.eventstore",
    "ingest_assets.layout",
    "ingest_assets.settings",
    "ingest_api",  # (its Dagster module imports Dagster when /health or /stats is called)
)
MAX_LINES = 420  # "no module over ~400 lines"
# Exceptions that never leave their module: they steer control flow and are turned into an
# IngestError (or handled) before anyone outside sees them.
INTERNAL_EXCEPTIONS = {"YamlBudgetError"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import in the file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names], node.lineno))
    return found


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(rule) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {problem}"
        for name, path in MODULES.items()
        for imported, names, line in _imports(path)
        if (problem := rule(name, imported, names))
    ]


def test_the_packages_are_found() -> None:
    assert {"ingest_assets.eventstore", "ingest_assets.stages", "ingest_resources"} <= set(MODULES)


def test_only_the_wiring_imports_dagster() -> None:
    def rule(name: str, imported: str, names: list[str]) -> str | None:
        dagster = _within(imported, ("dagster",)) or imported.startswith("dagster_")
        return f"imports {imported}" if dagster and not _within(name, DAGSTER_ALLOWED) else None

    assert _violations(rule) == []


def test_the_resources_import_nothing_from_ingest_assets() -> None:
    def rule(name: str, imported: str, names: list[str]) -> str | None:
        if _within(name, ("ingest_resources",)) and _within(imported, ("ingest_assets",)):
            return f"imports {imported}"
        return None

    assert _violations(rule) == []


def test_nothing_below_the_wiring_imports_it() -> None:
    def rule(name: str, imported: str, names: list[str]) -> str | None:
        targets = (*WIRING, "ingest_resources.resource")
        if _within(imported, targets) and not _within(name, WIRING):
            return f"imports {imported}"
        return None

    assert _violations(rule) == []


def test_no_private_name_crosses_a_module() -> None:
    def rule(name: str, imported: str, names: list[str]) -> str | None:
        if not _within(imported, PACKAGES):
            return None
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        return f"imports {', '.join(private)} from {imported}" if private else None

    assert _violations(rule) == []


def test_no_module_is_much_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in MODULES.values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_pure_packages_load_without_dagster() -> None:
    """At run time too: importing every pure module (and what they import in turn) loads no
    Dagster module."""
    pure = sorted(name for name in MODULES if _within(name, PURE))
    code = (
        "import importlib, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def _exception_classes() -> list[type[BaseException]]:
    classes = []
    for package in (ingest_assets, ingest_resources, ingest_api):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            classes += [
                value
                for value in vars(module).values()
                if inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ]
    return classes


def test_every_public_exception_is_an_ingest_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 15  # the walk found them
    strays = sorted(
        f"{c.__module__}.{c.__name__}"
        for c in classes
        if not issubclass(c, IngestError)
        and not c.__name__.startswith("_")
        and c.__name__ not in INTERNAL_EXCEPTIONS
    )
    assert strays == []


@pytest.mark.parametrize(
    ("name", "retryable"),
    [
        ("ingest_assets.eventstore.errors.PublishConflict", True),
        ("ingest_assets.eventstore.errors.StaleWriter", True),
        ("ingest_assets.eventstore.errors.BrokenChain", False),
        ("ingest_assets.eventstore.errors.CurrentLost", False),
        ("ingest_resources.object_store.CasConflict", True),
        ("ingest_resources.locks.LockBusy", True),
        ("ingest_resources.locks.LeaseLost", True),
        ("ingest_assets.stages.staged.ChecksFailedError", False),
        ("ingest_assets.parsers.base.ParseError", False),
    ],
)
def test_which_errors_a_retry_can_fix(name: str, retryable: bool) -> None:
    module, _, cls = name.rpartition(".")
    error_class = getattr(importlib.import_module(module), cls)
    assert issubclass(error_class, IngestError)
    assert error_class.retryable is retryable
