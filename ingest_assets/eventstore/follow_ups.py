"""What must happen after `current` moved to a version: the commit record, the key index, the
projections and the notification. Planned before the swap (`follow_ups/<version>.json`), done
right after it, and finished by the next run (under the dataset lock) if a crash or an error
interrupted them; the plan is removed once all are done. A failure here never undoes the
publish: it is reported as "published vN; follow-up X failed"."""

import json
from collections.abc import Callable

from ingest_assets import layout
from ingest_assets.eventstore.guard import Guard, unguarded
from ingest_assets.eventstore.manifest import Manifest
from ingest_resources.object_store import ObjectStore

RECORD, INDEX, PROJECTIONS, NOTIFY = "record", "index", "projections", "notify"

# sends a version's notification (a deduplication id of dataset and version with it); returns
# None, or what went wrong
Notify = Callable[[Manifest], str | None]


def plan(store: ObjectStore, manifest: Manifest, tasks: list[str]) -> None:
    body = json.dumps({"version": manifest.version, "tasks": tasks}).encode()
    store.put(layout.follow_up(manifest.dataset_id, manifest.version), body)


def drop(store: ObjectStore, dataset_id: str, version: str) -> None:
    store.delete_prefix(layout.follow_up(dataset_id, version))


def pending(store: ObjectStore, dataset_id: str) -> dict[str, list[str]]:
    """Planned follow-ups not known to be done, by version."""
    found = {}
    for key in store.list(layout.follow_ups(dataset_id)):
        try:
            data = json.loads(store.get(key))
            found[data["version"]] = list(data["tasks"])
        except (KeyError, ValueError, TypeError):  # torn or foreign: redo all of them
            version = key.rsplit("/", 1)[1].removesuffix(".json")
            found[version] = [RECORD, INDEX, PROJECTIONS, NOTIFY]
    return found


def record(store: ObjectStore, manifest: Manifest, guard: Guard = unguarded) -> None:
    """The commit record: this version was published (it outlives a lost `current`)."""
    guard()
    body = json.dumps({"version": manifest.version, "parent": manifest.parent_version}).encode()
    store.put_if_absent(layout.commit(manifest.dataset_id, manifest.version), body)


def run(tasks: dict[str, Callable[[], None]], describe: str) -> dict[str, str]:
    """Run each task; those that failed, each with "published vN; follow-up X failed: ..."."""
    failed = {}
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
