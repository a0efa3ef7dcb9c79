"""What a publish decides, pure: which rows are new or revised (against the key index, with the
rule for overlapping partitions), the next version's name, its high-water marks, and whether a
schema or key change is one the published versions can absorb."""

import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import SERIES_CODE, DatasetConfig
from ingest_assets.eventstore.errors import IncompatibleSchema
from ingest_assets.eventstore.keyindex import KeyIndex
from ingest_assets.eventstore.projections import series_of
from ingest_assets.rows.hashing import KEY_HASH, ROW_HASH, Parts, digest_parts

VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"

SAFE_WIDENINGS = {("int64", "double")}


def check_type_changes(
    dataset_id: str, published: dict[str, str] | None, schema: pa.Schema
) -> None:
    """Refuse, before anything is written, a type change the event history cannot absorb."""
    for field_ in schema:
        old = (published or {}).get(field_.name)
        new = str(field_.type)
        if (
            old is not None
            and old != new
            and (old, new) not in SAFE_WIDENINGS
            and not _null_type(old, new)
        ):
            raise IncompatibleSchema(
                f"dataset {dataset_id}: column {field_.name!r} was {old} in the published versions and "
                f"is now {new}; only int64 -> double widens in place. Keep the old type (or cast in a "
                "normalize plugin), or publish under a new dataset_id"
            )


def check_key_change(dataset_id: str, before: list[str] | None, keys: list[str]) -> None:
    """Refuse, before anything is written, keys other than the published versions': every row
    would get a new key_hash and be published again beside its old self."""
    if before and list(before) != list(keys):
        raise IncompatibleSchema(
            f"dataset {dataset_id}: the primary key is now {keys} (normalize.primary_keys), the "
            f"published versions are keyed by {before}: every row would be published again under "
            "its new key beside the old one. Keep the old primary_keys, or publish under a new "
            "dataset_id"
        )


def _null_type(old: str, new: str) -> bool:
    return "null" in (old, new)


def diff(
    index: KeyIndex, batch: pa.Table, revisions: str, superseding: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Parts, Parts]:
    """(is_new, is_revised, is_superseded) masks of a batch of normalized rows against the
    index, and the rows' key and row hashes as integers.

    `superseding[code]`: whether the index's version `code` came from a later partition than
    the one being published. A known key whose row differs is then not revised but
    superseded: when two partitions carry different values for one key, the later partition
    (by partition key) wins, in whatever order they run."""
    keys, rows = digest_parts(batch[KEY_HASH]), digest_parts(batch[ROW_HASH])
    at = index.lookup(keys)
    is_new = at < 0
    revised = np.zeros(len(at), dtype=bool)
    superseded = np.zeros(len(at), dtype=bool)
    if revisions != "ignore":
        known = np.flatnonzero(~is_new)
        known_rows = (rows[0][known], rows[1][known], rows[2][known])
        differs = known[~index.same_rows(at[known], known_rows)]
        if superseding is not None and differs.size:
            later = superseding[index.version_codes[at[differs]]]
            superseded[differs[later]] = True
            differs = differs[~later]
        revised[differs] = True
    return is_new, revised, superseded, keys, rows


def superseding_versions(
    index: KeyIndex, partition_of: dict[str, str | None], partition: str
) -> np.ndarray | None:
    """Per version code of the index, whether that version's partition sorts after
    `partition` (None when none does: nothing can be superseded)."""
    later = np.array(
        [(partition_of.get(version) or "") > partition for version in index.versions], dtype=bool
    )
    return later if later.any() else None


def new_version(now: dt.datetime, parent: str | None) -> str:
    version = now.astimezone(dt.UTC).strftime(VERSION_FORMAT)
    if parent and version <= parent:  # clocks differ between writers: stay strictly increasing
        bumped = dt.datetime.strptime(parent, VERSION_FORMAT) + dt.timedelta(microseconds=1)
        version = bumped.strftime(VERSION_FORMAT)
    return version


def schema_hash(schema: pa.Schema) -> str:
    text = "\n".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()


def high_water_marks(
    config: DatasetConfig, rows: pa.Table, previous: dict[str, str] | None = None
) -> dict[str, str]:
    """Newest time per series (ISO text), merged with `previous`."""
    marks = dict(previous or {})
    time_column = config.normalize.time_column
    if rows.num_rows == 0 or time_column not in rows.column_names:
        return marks
    if SERIES_CODE in rows.column_names:
        keyed = pa.table({"s": series_of(config, rows), "t": rows[time_column]})
        grouped = keyed.group_by("s", use_threads=False).aggregate([("t", "max")])
        newest_of: list[tuple[str, dt.datetime | dt.date | None]] = list(
            zip(grouped["s"].to_pylist(), grouped["t_max"].to_pylist(), strict=True)
        )
    else:  # one series, the dataset's: no grouping
        newest_of = [(config.dataset_id, pc.max(rows[time_column]).as_py())]
    for series, newest in newest_of:
        if newest is None:
            continue
        text = newest.isoformat()
        if series not in marks or _later(text, marks[series]):
            marks[series] = text
    return dict(sorted(marks.items()))


def _later(a: str, b: str) -> bool:
    parse = dt.datetime.fromisoformat
    try:
        return parse(a) > parse(b)
    except (TypeError, ValueError):
        return a > b
