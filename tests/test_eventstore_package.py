"""The event store as a package: what it may import (its note in `eventstore/__init__.py`),
modules a newcomer can read, and errors that say whether a re-run can succeed."""

import ast
import sys
from pathlib import Path

import pytest

from ingest_assets import eventstore
from ingest_assets.eventstore import errors
from ingest_resources.errors import IngestError, StoreError

PACKAGE = Path(eventstore.__file__).parent

# what the package note allows, beside the standard library and the package itself
ALLOWED = (
    "numpy",
    "pyarrow",
    "ingest_assets.contract",
    "ingest_assets.layout",
    "ingest_assets.rows.hashing",
    "ingest_assets.rows.arrays",
    "ingest_assets.parsers.base",
    "ingest_resources.object_store",
    "ingest_resources.parquet_writing",
    "ingest_resources.locks",
    "ingest_resources.errors",
    "ingest_resources.progress",  # rows counted as they publish (pure: no Dagster, no I/O)
)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) of every import in a module; `from a import b` of a
    submodule `b` counts as importing `a.b`."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [alias.name for alias in node.names]
            if node.module in ("ingest_assets", "ingest_resources"):
                found += [(f"{node.module}.{name}", []) for name in names]
            else:
                found.append((node.module, names))
    return found


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    return (
        top in sys.stdlib_module_names
        or module.startswith("ingest_assets.eventstore")
        or any(module == allowed or module.startswith(f"{allowed}.") for allowed in ALLOWED)
    )


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_a_module_imports_only_what_the_package_note_allows(path):
    imports = _imports(path)
    assert [module for module, _ in imports if not _allowed(module)] == []
    for module, names in imports:
        if module == "ingest_assets.parsers.base":  # its column constants, nothing more
            assert all(name.isupper() for name in names), names
    assert not [module for module, _ in imports if module.split(".")[0] == "dagster"]


def test_no_module_is_over_400_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {name: size for name, size in sizes.items() if size > 400} == {}


KINDS = [
    errors.EventStoreError,
    errors.PublishConflict,
    errors.StaleWriter,
    errors.IncompatibleSchema,
    errors.BrokenChain,
    errors.CurrentLost,
    errors.UnknownFormat,
]
RETRYABLE = {errors.PublishConflict, errors.StaleWriter}  # a lost race: re-run on top of it


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_only_a_lost_race_is_retryable(kind):
    assert issubclass(kind, StoreError) and issubclass(kind, IngestError)
    assert kind.retryable is (kind in RETRYABLE)
    raised = kind("dataset F: ...")
    assert raised.retryable is (kind in RETRYABLE) and str(raised) == "dataset F: ..."


def test_every_error_of_the_package_is_listed_and_exported():
    kinds = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.EventStoreError)
    }
    assert kinds == set(KINDS)
    assert set(eventstore.__all__) >= {kind.__name__ for kind in kinds}
