"""`ingest verify`'s verdict, kept per dataset: each dataset's current version is checked once
in a background thread (INGEST_API_VERIFY: `chain`, every event file's size and sha256; `full`,
the derived files against a replay too; `off`), again when a newer version is published.
/datasets shows the verdict, or `pending` until it is known."""

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from ingest_api.catalog import Catalog
from ingest_assets import eventstore

LOG = logging.getLogger("ingest_api")
PROBLEMS_SHOWN = 5


@dataclass(frozen=True)
class Verdict:
    version: str
    ok: bool
    checked_at: str
    problems: tuple[str, ...]


class Verifier:
    def __init__(self, catalog: Catalog, mode: str) -> None:
        self.catalog, self.mode = catalog, mode
        self.verdicts: dict[str, Verdict] = {}
        self.wanted: dict[str, str] = {}  # dataset -> version to check
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def verdict(self, dataset_id: str, version: str) -> Verdict | None:
        """The verdict on `version`, or None (and a check asked for) when not known yet."""
        with self.lock:
            found = self.verdicts.get(dataset_id)
            if found is not None and found.version == version:
                return found
            if self.mode == "off":
                return None
            self.wanted[dataset_id] = version
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="ingest-api-verify", daemon=True
                )
                self.thread.start()
        self.wake.set()
        return None

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            while True:
                with self.lock:
                    if not self.wanted:
                        break
                    dataset_id, version = self.wanted.popitem()
                self._check(dataset_id, version)

    def _check(self, dataset_id: str, version: str) -> None:
        config = self.catalog.config(dataset_id)
        try:
            report = eventstore.verify(self.catalog.store, config, derived=self.mode == "full")
            problems = tuple(report.problems)
            checked = report.version or version
        except Exception as exc:  # noqa: BLE001 - a verdict, never a dead thread
            LOG.warning("verify %s failed: %s", dataset_id, exc)
            problems, checked = (f"{type(exc).__name__}: {exc}",), version
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self.lock:
            self.verdicts[dataset_id] = Verdict(checked, not problems, now, problems)
