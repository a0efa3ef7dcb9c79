"""The compact key index: exact lookups (even when keys share their first 8 bytes), merges that
replace revised keys, and a lossless round trip through Parquet's table form."""

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from ingest_assets.eventstore.keyindex import KeyIndex
from ingest_assets.rows.hashing import (
    DIGEST_TYPE,
    digest_parts,
    hex_digests,
    key_hashes,
    key_prefixes,
)


def _parts(rng, count: int, prefixes: int):
    return (
        rng.integers(0, prefixes, count).astype(np.uint64),  # few prefixes: many ties
        rng.integers(0, 2**63, count).astype(np.uint64),
        rng.integers(0, 2**31, count).astype(np.uint32),
    )


@pytest.mark.parametrize("spelled", ["bytes", "hex"])
def test_digest_parts_spell_the_sha1(spelled):
    digests = key_hashes(pa.table({"k": ["a", "b"]}), ["k"])
    first, second, third = digest_parts(digests if spelled == "bytes" else hex_digests(digests))
    digest = hashlib.sha1(b"b").digest()
    assert int(first[1]) == int.from_bytes(digest[:8], "big")
    assert int(second[1]) == int.from_bytes(digest[8:16], "big")
    assert int(third[1]) == int.from_bytes(digest[16:], "big")


@pytest.mark.parametrize("spelled", ["bytes", "hex"])
def test_key_prefixes_are_the_first_part_of_a_sliced_array(spelled):
    digests = key_hashes(pa.table({"k": [str(i) for i in range(100)]}), ["k"])
    hashes = (digests if spelled == "bytes" else hex_digests(digests)).slice(7, 50)
    assert (key_prefixes(hashes) == digest_parts(hashes)[0]).all()
    assert (digest_parts(hashes)[2] == digest_parts(digests.slice(7, 50))[2]).all()
    assert key_prefixes(hashes.slice(0, 0)).dtype == np.uint64
    for bad in (pa.array(["z" * 40]), pa.array(["ab"]), pa.array([None], pa.string())):
        with pytest.raises(ValueError, match="40-digit"):
            key_prefixes(bad)
    with pytest.raises(ValueError, match="nulls"):
        key_prefixes(pa.array([None], DIGEST_TYPE))


def test_lookup_is_exact_when_many_keys_share_a_prefix():
    rng = np.random.default_rng(7)
    keys = _parts(rng, 2000, prefixes=40)
    index = KeyIndex.empty().merged([keys], [keys], "v1")
    found = index.lookup(keys)
    assert (found >= 0).all()
    for part in range(3):
        assert (index.keys[part][found] == keys[part]).all()
    strangers = _parts(np.random.default_rng(8), 500, prefixes=40)
    assert (index.lookup(strangers) == -1).all()


def test_merge_replaces_a_revised_key_and_keeps_the_rest():
    rng = np.random.default_rng(3)
    keys = _parts(rng, 100, prefixes=2**40)
    rows = _parts(rng, 100, prefixes=2**40)
    index = KeyIndex.empty().merged([keys], [rows], "v1")
    revised = tuple(p[:1] for p in keys)
    new_row = tuple(p[:1] + 1 for p in rows)
    index = index.merged([revised], [new_row], "v2")
    assert len(index) == 100
    at = index.lookup(revised)
    assert index.same_rows(at, new_row).all()
    assert index.versions[index.version_codes[at[0]]] == "v2"
    again = KeyIndex.from_table(index.to_table())
    assert (again.lookup(keys) >= 0).all() and again.same_rows(again.lookup(revised), new_row).all()


def test_an_index_read_in_batches_equals_the_one_written():
    """Read back batch by batch into arrays made once (each batch with its own dictionary of
    versions), the index is the one that was written; a short read is refused."""
    rng = np.random.default_rng(11)
    index = KeyIndex.empty().merged(
        [_parts(rng, 300, prefixes=2**40)], [_parts(rng, 300, prefixes=2**40)], "v1"
    )
    index = index.merged([tuple(p[:50] for p in index.keys)], [_parts(rng, 50, prefixes=9)], "v2")
    table = index.to_table()
    batches = [table.slice(start, 70) for start in range(0, table.num_rows, 70)]
    again = KeyIndex.from_batches(iter(batches), table.num_rows)
    for mine, theirs in zip((*index.keys, *index.rows), (*again.keys, *again.rows), strict=True):
        assert (mine == theirs).all()
    named = lambda i: [i.versions[c] for c in i.version_codes]  # noqa: E731
    assert named(again) == named(index) and sorted(again.versions) == ["v1", "v2"]
    with pytest.raises(ValueError, match="holds 280 rows, its footer says 300"):
        KeyIndex.from_batches(iter(batches[:4]), table.num_rows)
