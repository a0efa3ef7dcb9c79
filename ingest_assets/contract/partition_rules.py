"""The partitions' rule of the contract: a time partition reads its own data (a placeholder in
the source), or says it is a snapshot; `files` partitions need files to be made of."""

from typing import TYPE_CHECKING

from ingest_assets.contract.source import Source

if TYPE_CHECKING:  # (models.py defines Partitions and calls this)
    from ingest_assets.contract.models import Partitions


def partition_problem(
    source: Source, partitions: "Partitions", schedule: str | None
) -> tuple[str, str] | None:
    """(field, message) of what is wrong with `partitions` for `source`, or None."""
    placed = source.partitioned_location
    if partitions.kind == "files" and not source.is_landing:
        return (
            "partitions.kind",
            "partitions.kind 'files' makes one partition per file of a landing zone: set "
            "source.glob (or an s3:// url with a wildcard)",
        )
    if partitions.kind == "files" and schedule is not None:
        return (
            "schedule",
            "a dataset of `files` partitions runs its new files when its sensor finds them "
            "(sensor.enabled) or on `ingest run`; a schedule has no partition to ask for",
        )
    if placed and not partitions.is_time and source.kind != "http":
        return (
            "partitions.kind",
            f"the source names {{partition_start}}/{{partition_end}}, which need time "
            f"partitions (daily, weekly, monthly or hourly), not {partitions.kind!r}",
        )
    if partitions.is_time and source.is_landing and not placed:
        return (
            "partitions.kind",
            f"{partitions.kind!r} partitions of a landing zone, but its glob names no "
            "{partition_start}: a partition reads the files its time names (glob: "
            "landing/{partition_start:%Y-%m-%d}/*.csv); or drop partitions (every new file "
            "on each run), or use partitions.kind: files (a partition per file)",
        )
    if partitions.is_time and placed and partitions.snapshot:
        return (
            "partitions.snapshot",
            "each partition reads its own data (a placeholder in the source): it is not a "
            "snapshot; drop partitions.snapshot",
        )
    if partitions.is_time and not placed and not partitions.snapshot:
        return (
            "partitions.kind",
            f"{partitions.kind!r} partitions, but the source names no {{partition_start}}: "
            "each would read the same whole source. Name each one's file (path: "
            "d/{partition_start:%Y-%m-%d}.csv), or drop partitions (a snapshot source, run "
            "by sensor or schedule), or set partitions.snapshot: true (each partition is "
            "the source as read that day)",
        )
    return None
