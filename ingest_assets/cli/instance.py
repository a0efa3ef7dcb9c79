"""DAGSTER_HOME and its instance: config written from dagster.sqlite.yaml or dagster.postgres.yaml,
storage set up by one process at a time (`ingest instance`)."""

import argparse
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ingest_assets import settings

CODE_ROOT = Path(__file__).resolve().parents[2]  # this repository (installed editable)


MANAGED = "# written by `ingest instance` from {name}; edit that file, not this copy\n"


def sqlalchemy_url(url: str) -> str:
    """dagster-postgres on SQLAlchemy 2.1 needs the psycopg2 driver named in the URL."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


INSTANCE_LOCK = ".instance.lock"  # in DAGSTER_HOME: one process at a time sets the instance up


INSTANCE_LOCK_WAIT_S = 300


INSTANCE_READY = ".instance.ready"  # in DAGSTER_HOME: written once its storage is set up


@contextmanager
def _instance_lock(home: Path) -> Iterator[None]:
    """Held while DAGSTER_HOME's config is written and its storage is created or opened: runs
    that start together (a sensor tick, a schedule, a user) would otherwise each create the
    SQLite tables and stamp their schema at once ("table run_tags already exists", "database is
    locked", alembic's "more than one head")."""
    lock = FileLock(str(home / INSTANCE_LOCK))
    try:
        lock.acquire(timeout=INSTANCE_LOCK_WAIT_S)
    except Timeout:
        raise SystemExit(
            f"ingest: {home / INSTANCE_LOCK} has been held for over {INSTANCE_LOCK_WAIT_S} s by "
            "another process setting up the Dagster instance; wait for it, or end it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def ensure_dagster_home() -> tuple[Path, str]:
    """DAGSTER_HOME (default `.dagster_home/`) with the instance config the environment asks for:
    SQLite from dagster.sqlite.yaml, or PostgreSQL from dagster.postgres.yaml when INGEST_DAGSTER_PG_URL
    is set. A dagster.yaml the user wrote there is left alone; ours is written under the
    instance lock, whole (a run starting meanwhile reads the old file or the new)."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.project_root() / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    postgres = os.environ.get("INGEST_DAGSTER_PG_URL")
    if postgres:
        os.environ["INGEST_DAGSTER_PG_URL"] = sqlalchemy_url(postgres)
    # (no `dagster.yaml` in the project root: `dagster dev` would warn that it is ignored)
    name = "dagster.postgres.yaml" if postgres else "dagster.sqlite.yaml"
    template = settings.project_root() / name
    if not template.exists():  # configs kept outside this repository: use the repository's
        template = CODE_ROOT / name
    target = home / "dagster.yaml"
    if template.exists():
        wanted = MANAGED.format(name=name) + template.read_text()
        if _managed_differs(target, wanted):
            with _instance_lock(home):
                if _managed_differs(target, wanted):
                    _write_whole(target, wanted)
    return home, "postgres" if postgres else "sqlite"


def _write_whole(path: Path, text: str) -> None:
    """`text` into a file beside `path` (this process's), renamed over it: a process reading it
    meanwhile gets the old text or the new, never a part (its mode is a plain file's)."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        scratch.write_text(text)
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def _managed_differs(target: Path, wanted: str) -> bool:
    """Whether `target` is ours (absent, or written by `ingest instance`) and not `wanted`."""
    if not target.exists():
        return True
    text = target.read_text()
    return text.startswith(MANAGED[:30]) and text != wanted


def open_instance():
    """The Dagster instance of DAGSTER_HOME, set up first (see `_open_instance`)."""
    home, _ = ensure_dagster_home()
    return _open_instance(home)


def _open_instance(home: Path):
    """The instance, its storage created (or opened) by one process at a time: the first run on
    a fresh home creates the SQLite storage while the others wait. A home set up under this
    Dagster and this config (its stamp, INSTANCE_READY, says so) is opened without the lock:
    opening costs a first process a second of imports, which runs would otherwise queue for."""
    import dagster as dg

    ready, stamp = home / INSTANCE_READY, _instance_stamp(home)
    if ready.exists() and ready.read_text() == stamp:
        return dg.DagsterInstance.get()
    with _instance_lock(home):
        instance = dg.DagsterInstance.get()
        _write_whole(ready, stamp)
    return instance


def _instance_stamp(home: Path) -> str:
    """What the instance's storage was set up for: the Dagster version, the instance config
    and the PostgreSQL URL (a digest: the URL may hold a password)."""
    import dagster as dg

    config = home / "dagster.yaml"
    parts = [
        dg.__version__,
        config.read_text() if config.exists() else "",
        os.environ.get("INGEST_DAGSTER_PG_URL", ""),
    ]
    return f"dagster {dg.__version__}, config {hashlib.sha256(repr(parts).encode()).hexdigest()}\n"


def cmd_instance(args: argparse.Namespace) -> int:
    """Prepare DAGSTER_HOME: its config and its storage, created now (under the instance lock)
    rather than by whichever of several `dagster` processes starts first."""
    home, storage = ensure_dagster_home()
    with _open_instance(home):
        pass
    print(f"DAGSTER_HOME={home} (instance storage: {storage})")
    return 0
