"""Row identity hashes: stable, aligned with the rows, null-aware."""

import pyarrow as pa

from ingest_assets.hashing import key_hashes, row_hashes


def test_one_non_key_column_with_nulls_keeps_every_row():
    # pyarrow's binary_join_element_wise drops null rows for a single input with skip: guarded
    table = pa.table({"id": [1, 2, 3], "value": pa.array([None, "2.5", "10"])})
    hashes = row_hashes(table, ["value"])
    assert len(hashes) == 3 and len(set(hashes.to_pylist())) == 3


def test_a_null_is_omitted_so_a_new_empty_column_changes_nothing():
    base = pa.table({"a": ["x", "y"], "b": [1.5, None]})
    grown = base.append_column("c", pa.array([None, None], pa.string()))
    assert row_hashes(base, ["a", "b"]) == row_hashes(grown, ["a", "b", "c"])


def test_key_hashes_depend_on_order_and_values():
    table = pa.table({"s": ["A", "B"], "d": ["1", "1"]})
    assert key_hashes(table, ["s", "d"]).to_pylist() != key_hashes(table, ["d", "s"]).to_pylist()
    assert len(set(key_hashes(table, ["s", "d"]).to_pylist())) == 2


def test_a_row_whose_values_are_all_null_keeps_its_place():
    table = pa.table({"a": pa.array([None, "x", None]), "b": pa.array([None, None, 2.0])})
    hashes = row_hashes(table, ["a", "b"]).to_pylist()
    assert len(hashes) == 3
    assert (
        hashes[0]
        == row_hashes(pa.table({"z": pa.array([None], pa.string())}), ["z"]).to_pylist()[0]
    )
    assert len(set(hashes)) == 3
