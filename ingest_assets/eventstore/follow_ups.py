"""What must happen after `current` moved to a version: the commit record, the key index, the
projections and the notification. Planned before the swap (`follow_ups/<version>.json`), done
right after it, and finished by the next run (under the dataset lock) if a crash or an error
interrupted them; the plan is removed once all are done. A failure here never undoes the
publish: it is reported as "published vN; follow-up X failed"."""

import json
from collections.abc import Callable
from dataclasses import dataclass

from ingest_assets import layout
from ingest_assets.eventstore.guard import Guard, unguarded
from ingest_assets.eventstore.manifest import Manifest
from ingest_resources.object_store import ObjectStore

RECORD, INDEX, PROJECTIONS, NOTIFY = "record", "index", "projections", "notify"

# sends a version's notification (a deduplication id of dataset and version with it); returns
# None, or what went wrong
Notify = Callable[[Manifest], str | None]


@dataclass(frozen=True)
class Plan:
    """`follow_ups/<version>.json`: what is left to do after the swap of `version`."""

    version: str
    tasks: list[str]

    def to_bytes(self) -> bytes:
        return json.dumps({"version": self.version, "tasks": self.tasks}).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> "Plan":
        """ValueError, TypeError or KeyError if it is not a plan."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError("not a follow-up plan")
        version, tasks = data["version"], data["tasks"]
        if not isinstance(version, str) or not isinstance(tasks, list):
            raise TypeError("not a follow-up plan")
        return cls(version, [str(task) for task in tasks])


@dataclass(frozen=True)
class CommitRecord:
    """`commits/<version>.json`: `version` was published (over `parent`)."""

    version: str
    parent: str | None

    def to_bytes(self) -> bytes:
        return json.dumps({"version": self.version, "parent": self.parent}).encode()


def plan(store: ObjectStore, manifest: Manifest, tasks: list[str]) -> None:
    body = Plan(manifest.version, tasks).to_bytes()
    store.put(layout.follow_up(manifest.dataset_id, manifest.version), body)


def drop(store: ObjectStore, dataset_id: str, version: str) -> None:
    store.delete_prefix(layout.follow_up(dataset_id, version))


def pending(store: ObjectStore, dataset_id: str) -> dict[str, list[str]]:
    """Planned follow-ups not known to be done, by version."""
    found: dict[str, list[str]] = {}
    for key in store.list(layout.follow_ups(dataset_id)):
        try:
            planned = Plan.from_bytes(store.get(key))
            found[planned.version] = planned.tasks
        except (KeyError, ValueError, TypeError):  # torn or foreign: redo all of them
            version = key.rsplit("/", 1)[1].removesuffix(".json")
            found[version] = [RECORD, INDEX, PROJECTIONS, NOTIFY]
    return found


def record(store: ObjectStore, manifest: Manifest, guard: Guard = unguarded) -> None:
    """The commit record: this version was published (it outlives a lost `current`)."""
    guard()
    body = CommitRecord(manifest.version, manifest.parent_version).to_bytes()
    store.put_if_absent(layout.commit(manifest.dataset_id, manifest.version), body)


def run(tasks: dict[str, Callable[[], None]], describe: str) -> dict[str, str]:
    """Run each task; those that failed, each with "published vN; follow-up X failed: ..."."""
    failed: dict[str, str] = {}
    for name, task in tasks.items():
        try:
            task()
        except Exception as exc:  # noqa: BLE001 - reported; the publish stands
            failed[name] = f"{describe}; follow-up {name} failed: {type(exc).__name__}: {exc}"
    return failed


def settled(store: ObjectStore, manifest: Manifest, failed: dict[str, str]) -> list[str]:
    """The plan after a try: gone when every task is done, else only what failed (a task done
    is never done again: a notification is sent once). Returns the errors."""
    if failed:
        plan(store, manifest, list(failed))
    else:
        drop(store, manifest.dataset_id, manifest.version)
    return list(failed.values())


def notifier_task(notify: Notify | None, manifest: Manifest) -> Callable[[], None]:
    def send() -> None:
        if notify is None:
            return
        error = notify(manifest)
        if error:
            raise RuntimeError(error)

    return send
