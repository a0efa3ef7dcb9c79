"""Row identity hashes: stable, aligned with the rows, null-aware. They are sha1 of a documented
text form and must not change with the engine that computes them: published indexes compare
against hashes stored by older versions."""

import datetime as dt
import hashlib

import pyarrow as pa
import pytest

from ingest_assets.rows.hashing import (
    DIGEST_TYPE,
    FIELD_SEP,
    NAME_SEP,
    NULL,
    digest_columns,
    hex_columns,
    hex_digests,
    hex_digests_decoded,
    key_hashes,
    row_hashes,
)


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


def sha1(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


def test_key_hash_is_sha1_of_the_joined_keys_in_row_order():
    count = 70_001  # many of DuckDB's vectors, over two chunks
    codes = [f"S{i % 97}" if i % 13 else None for i in range(count)]
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(count)]
    table = pa.Table.from_batches(
        [
            pa.record_batch({"code": codes[:30_000], "day": days[:30_000]}),
            pa.record_batch({"code": codes[30_000:], "day": days[30_000:]}),
        ]
    )
    expected = [
        sha1(f"{code if code is not None else NULL}{FIELD_SEP}{day.isoformat()}")
        for code, day in zip(codes, days, strict=True)
    ]
    assert key_hashes(table, ["code", "day"]).to_pylist() == expected


def test_row_hash_joins_sorted_name_value_pairs_and_leaves_nulls_out():
    table = pa.table(
        {
            "value": [1.5, None, None, 0.1],
            "unit": ["kg", "€\x00", None, "m"],
        }
    )
    expected = [
        sha1(f"unit{NAME_SEP}kg{FIELD_SEP}value{NAME_SEP}1.5"),
        sha1(f"unit{NAME_SEP}€\x00"),
        sha1(""),
        sha1(f"unit{NAME_SEP}m{FIELD_SEP}value{NAME_SEP}0.1"),
    ]
    assert row_hashes(table, ["value", "unit"]).to_pylist() == expected
    assert row_hashes(table, []).to_pylist() == [sha1("")] * 4


def test_an_empty_table_has_no_hashes():
    empty = pa.table({"code": pa.array([], pa.string())})
    assert key_hashes(empty, ["code"]).to_pylist() == []
    assert row_hashes(empty, ["code"]).to_pylist() == []


def test_small_and_large_inputs_hash_alike(monkeypatch):
    """Under DUCKDB_FROM values hashlib hashes, from it DuckDB does: the same digests."""
    from ingest_assets.rows import hashing

    rows = 3_000
    table = pa.table(
        {
            "k": [f"key {i}" if i % 11 else None for i in range(rows)],
            "day": [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(rows)],
            "v": [i / 7 if i % 3 else None for i in range(rows)],
            'it\'s; "odd"': [["€\x00x", None, "", " a "][i % 4] for i in range(rows)],
        }
    )
    values = ["v", 'it\'s; "odd"']  # both null in rows 9, 21, 33...: their row hash is sha1("")

    def hashes():
        return (
            key_hashes(table, ["k"]),
            key_hashes(table, ["k", "day"]),
            row_hashes(table, values),
            row_hashes(table, ["v"]),
        )

    small = hashes()
    assert small[2][9].as_py() == hashlib.sha1(b"").digest()
    monkeypatch.setattr(hashing, "DUCKDB_FROM", 1)
    assert hashes() == small


def test_hashes_are_staged_as_bytes_and_published_as_their_hex():
    table = pa.table({"k": [str(i) for i in range(30_000)]})  # (DuckDB's path)
    digests = key_hashes(table, ["k"])
    assert digests.type == DIGEST_TYPE
    assert digests[7].as_py() == hashlib.sha1(b"7").digest()
    text = hex_digests(digests.slice(5, 3))
    assert text.type == pa.string()
    assert text.to_pylist() == [hashlib.sha1(str(i).encode()).hexdigest() for i in (5, 6, 7)]
    # hex sorts as the bytes do, so files sorted by either are sorted by both
    ordered = sorted(digests.to_pylist()[:500])
    assert [d.hex() for d in ordered] == sorted(d.hex() for d in ordered)


def test_hex_of_digests_keeps_nulls_and_chunks():
    digests = pa.chunked_array(
        [pa.array([b"\x00" * 20, None], DIGEST_TYPE), pa.array([None, b"\xff" * 20], DIGEST_TYPE)]
    )
    assert hex_digests(digests).to_pylist() == ["00" * 20, None, None, "ff" * 20]
    assert hex_digests(digests.combine_chunks().slice(1)).to_pylist() == [None, None, "ff" * 20]
    assert hex_digests(pa.array([], DIGEST_TYPE)).to_pylist() == []
    table = hex_columns(pa.table({"key_hash": digests, "v": [1, 2, 3, 4]}))
    assert table.schema.field("key_hash").type == pa.string()
    assert table["v"].to_pylist() == [1, 2, 3, 4]


def test_only_the_hash_columns_are_shown_as_hex():
    """A source column that happens to hold 20-byte values is the user's: left as is."""
    digests = key_hashes(pa.table({"k": ["a"]}), ["k"])
    table = pa.table({"checksum": digests, "key_hash": digests, "row_hash": digests})
    published = hex_columns(table)
    assert published.schema.field("checksum").type == DIGEST_TYPE
    assert published["key_hash"].to_pylist() == published["row_hash"].to_pylist()
    assert published["key_hash"].to_pylist() == [hashlib.sha1(b"a").hexdigest()]


def test_hex_of_older_files_reads_back_as_the_same_digests():
    """Event files and windows written before hashes were stored as bytes hold hex text:
    `digest_columns` reads them as the bytes a file written now holds (a slice, chunks)."""
    digests = key_hashes(pa.table({"k": [str(i) for i in range(40)]}), ["k"])
    text = pa.chunked_array([hex_digests(digests.slice(0, 25)), hex_digests(digests.slice(25))])
    assert hex_digests_decoded(text).equals(digests)
    assert hex_digests_decoded(hex_digests(digests).slice(3, 4)).equals(digests.slice(3, 4))
    assert hex_digests_decoded(pa.array([], pa.string())).to_pylist() == []
    older = pa.table({"key_hash": text, "row_hash": text, "note": ["x" * 40] * 40})
    stored = digest_columns(older)
    assert stored["key_hash"].type == DIGEST_TYPE and stored["row_hash"].type == DIGEST_TYPE
    assert stored["note"].type == pa.string()  # a user's column of 40 characters stays text
    assert digest_columns(stored).equals(stored)  # bytes already: as they are
    assert hex_columns(stored)["key_hash"].to_pylist() == text.to_pylist()


@pytest.mark.parametrize(
    "bad", [["ab" * 19], ["zz" * 20], [None], ["ab" * 10 + " " + "ab" * 9 + "a"]]
)
def test_text_that_is_not_a_sha1_in_hex_is_refused(bad):
    with pytest.raises(ValueError, match="40-digit sha1 hex"):
        hex_digests_decoded(pa.array(bad, pa.string()))
