"""Object keys of the published storage layout (docs/storage.md), in one place."""

import re

UNPARTITIONED = "all"


def safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", part)


def dataset(dataset_id: str) -> str:
    return f"datasets/{dataset_id}"


def raw(dataset_id: str, partition: str, sha256: str, ext: str) -> str:
    return f"{dataset(dataset_id)}/raw/{safe(partition)}/{sha256}.{ext}"


def raw_latest(dataset_id: str, partition: str) -> str:
    """Which raw object the partition's last fetch produced (parsed reads it)."""
    return f"{dataset(dataset_id)}/raw/{safe(partition)}/latest.json"


def staging(dataset_id: str, stage: str, partition: str) -> str:
    return f"{dataset(dataset_id)}/staging/{stage}/{safe(partition)}"


def quarantine(dataset_id: str, partition: str) -> str:
    return f"{dataset(dataset_id)}/quarantine/{safe(partition)}"


def index(dataset_id: str) -> str:
    return f"{dataset(dataset_id)}/index/keys.parquet"


def events(dataset_id: str) -> str:
    return f"{dataset(dataset_id)}/events"


def event(dataset_id: str, version: str) -> str:
    return f"{events(dataset_id)}/{version}"


def event_data(
    dataset_id: str, version: str, year: int | None, month: int | None, part: int = 0
) -> str:
    y = "unknown" if year is None else f"{year:04d}"
    m = "unknown" if month is None else f"{month:02d}"
    return f"{event(dataset_id, version)}/data/year={y}/month={m}/part-{part:05d}.parquet"


EVENT_MONTH = re.compile(r"/data/year=(\d{4}|unknown)/month=(\d{2}|unknown)/[^/]+$")


def event_month(key: str) -> tuple[int | None, int | None]:
    """(year, month) of an event data key, as `event_data` wrote it (None, None: unknown)."""
    found = EVENT_MONTH.search(key)
    if found is None:
        raise ValueError(f"{key!r} is not an event data key")
    year, month = found.groups()
    return (None, None) if year == "unknown" else (int(year), int(month))


def manifest(dataset_id: str, version: str) -> str:
    return f"{event(dataset_id, version)}/manifest.json"


def current(dataset_id: str) -> str:
    return f"{dataset(dataset_id)}/current/manifest.json"


def projections(dataset_id: str) -> str:
    return f"{dataset(dataset_id)}/projections/windows"


def projection(dataset_id: str, series: str, year: int | None, month: int | None) -> str:
    y = "unknown" if year is None else f"{year:04d}"
    m = "unknown" if month is None else f"{month:02d}"
    return f"{projections(dataset_id)}/{safe(series)}/year={y}/month={m}/data.parquet"


def projections_state(dataset_id: str) -> str:
    """The version the projections reflect (they are brought up to `current` before each publish)."""
    return f"{dataset(dataset_id)}/projections/state.json"


def commits(dataset_id: str) -> str:
    """One small object per committed version, written after its swap: the record that a
    version was published, which survives the loss of `current` (events of a writer that died
    before its swap have none)."""
    return f"{dataset(dataset_id)}/commits"


def commit(dataset_id: str, version: str) -> str:
    return f"{commits(dataset_id)}/{version}.json"


def follow_ups(dataset_id: str) -> str:
    return f"{dataset(dataset_id)}/follow_ups"


def follow_up(dataset_id: str, version: str) -> str:
    """What is left to do after the swap of `version` (removed once done)."""
    return f"{follow_ups(dataset_id)}/{version}.json"
