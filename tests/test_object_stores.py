"""The local and the S3 store honour one contract: atomic puts, create-once, compare-and-swap."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_resources.local_store import LocalObjectStore
from ingest_resources.object_store import CasConflict
from ingest_resources.parquet_writing import SchemaMismatch
from ingest_resources.runtime import aws_client
from ingest_resources.s3_store import S3ObjectStore, parse_s3_url


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    aws = request.getfixturevalue("aws")
    return S3ObjectStore(aws_client("s3", aws["endpoint"]), aws["bucket"], "root/prefix")


def test_put_get_list_delete(store):
    assert store.get_with_etag("a/b.txt") is None and not store.exists("a/b.txt")
    store.put("a/b.txt", b"one")
    store.put("a/c/d.txt", b"two")
    store.put("ab/e.txt", b"three")
    assert store.get("a/b.txt") == b"one" and store.exists("a/c/d.txt")
    assert store.list("a") == ["a/b.txt", "a/c/d.txt"]  # "ab/" is not under "a"
    store.delete_prefix("a")
    assert store.list("a") == [] and store.list("ab") == ["ab/e.txt"]
    with pytest.raises(KeyError, match="no object 'a/b.txt'"):
        store.get("a/b.txt")


def test_put_if_absent_writes_once(store):
    assert store.put_if_absent("events/v1/manifest.json", b"first") is True
    assert store.put_if_absent("events/v1/manifest.json", b"second") is False
    assert store.get("events/v1/manifest.json") == b"first"


def test_compare_and_swap(store):
    first = store.put_if_match("current/manifest.json", b"v1", None)
    with pytest.raises(CasConflict):
        store.put_if_match("current/manifest.json", b"v1-again", None)  # exists already
    second = store.put_if_match("current/manifest.json", b"v2", first)
    with pytest.raises(CasConflict):
        store.put_if_match("current/manifest.json", b"stale", first)  # the old ETag lost
    assert store.get_with_etag("current/manifest.json") == (b"v2", second)


def test_parse_s3_url():
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(ValueError, match="expected s3://bucket"):
        parse_s3_url("https://bucket/a")


def test_parquet_in_batches_and_its_footer(store):
    """Large objects: written from batches, read back in batches, schema and rows from the
    footer alone (a ranged GET on S3)."""
    wide = pa.table({"n": list(range(5000)), "text": ["x" * 200] * 5000})
    batches = [wide.slice(0, 2000), wide.slice(2000)]
    rows, schema = store.write_parquet_batches("big/part.parquet", iter(batches))
    assert rows == 5000 and schema.names == ["n", "text"]
    assert store.parquet_rows("big/part.parquet") == 5000
    assert store.parquet_schema("big/part.parquet").names == ["n", "text"]
    back = list(store.iter_parquet("big/part.parquet", batch_rows=1500))
    assert [t.num_rows for t in back] == [1500, 1500, 1500, 500]
    assert pa.concat_tables(back).equals(wide)
    with pytest.raises(KeyError):
        store.parquet_schema("big/missing.parquet")


def test_a_batch_with_other_columns_is_refused_by_name(store):
    batches = iter([pa.table({"a": [1]}), pa.table({"a": ["x"], "b": [1]})])
    with pytest.raises(SchemaMismatch, match=r"big/part\.parquet: .*a: int64 before, string now"):
        store.write_parquet_batches("big/part.parquet", batches)
    assert not store.exists("big/part.parquet")


def test_copy_is_an_equal_object_independent_of_its_source(store):
    """A derived object that equals an immutable one (a new projection window and its event
    file): same bytes; replacing the copy later leaves the source as it was."""
    store.put("events/v1/data.parquet", b"event rows")
    store.copy("events/v1/data.parquet", "projections/w/data.parquet", durable=False)
    assert store.get("projections/w/data.parquet") == b"event rows"
    store.put("projections/w/data.parquet", b"merged rows")
    assert store.get("events/v1/data.parquet") == b"event rows"
    store.copy("events/v1/data.parquet", "projections/w/data.parquet")  # over an existing one
    assert store.get("projections/w/data.parquet") == b"event rows"
    assert store.list("projections") == ["projections/w/data.parquet"]  # no temporary left
    with pytest.raises(KeyError, match="no object 'events/v2/data.parquet'"):
        store.copy("events/v2/data.parquet", "projections/x/data.parquet")
    assert not store.exists("projections/x/data.parquet")


def test_parquet_metadata_from_the_footer(store):
    table = pa.table({"t": [1, 2, 3], "k": ["a", "b", "c"]})
    sorting = pq.SortingColumn.from_ordering(table.schema, [("t", "ascending")])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, sorting_columns=sorting)
    store.put("sorted.parquet", sink.getvalue().to_pybytes())
    metadata = store.parquet_metadata("sorted.parquet")
    assert (metadata.num_rows, metadata.num_row_groups) == (3, 1)
    assert metadata.row_group(0).sorting_columns == sorting
    assert store.parquet_schema("sorted.parquet") == table.schema.remove_metadata()


def test_a_row_group_that_grew_is_cut_at_the_same_places(store, monkeypatch):
    """By row group, a group is cut in batches of a power-of-two row count: more rows of the
    same width leave the earlier batches as they were (what lets a grown file keep its parts)."""
    from ingest_resources import object_store

    monkeypatch.setattr(object_store, "BATCH_BYTES", 4096)
    monkeypatch.setattr(object_store, "BATCH_ROWS", (1, 250_000))
    sizes = []
    for rows in (1000, 1130):
        table = pa.table({"n": list(range(rows)), "text": [f"value {i:06d}" for i in range(rows)]})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=rows)  # one row group, as a whole-file parser
        store.put(f"grown-{rows}.parquet", sink.getvalue().to_pybytes())
        sizes.append(
            [t.num_rows for t in store.iter_parquet(f"grown-{rows}.parquet", by_row_group=True)]
        )
    before, after = sizes
    assert len(before) > 1 and after[: len(before) - 1] == before[:-1]
    assert len({*before[:-1], *after[:-1]}) == 1  # one batch size, a power of two
    assert before[0] & (before[0] - 1) == 0


def test_a_local_key_cannot_climb_out_of_the_root(tmp_path):
    store = LocalObjectStore(tmp_path / "root")
    (tmp_path / "secret").write_bytes(b"outside")
    for key in ("../secret", "a/../../secret", "a/../..", "/etc/passwd"):
        with pytest.raises(ValueError, match="escapes the store root"):
            store.get(key)
    store.put("a/../b", b"inside")  # a `..` that stays inside is the key it names
    assert store.get("b") == b"inside"


def test_a_symlinked_folder_inside_the_root_is_followed(tmp_path):
    elsewhere = tmp_path / "other_disk"
    elsewhere.mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "datasets").symlink_to(elsewhere, target_is_directory=True)
    store = LocalObjectStore(tmp_path / "root")
    store.put("datasets/x/data.bin", b"1")
    assert (elsewhere / "x" / "data.bin").read_bytes() == b"1"
    assert store.list("datasets") == ["datasets/x/data.bin"]


def test_parquet_options_fit_each_column(tmp_path):
    """Hashes as bytes or integers are stored uncompressed (random), hex and values with zstd;
    dictionary columns stay dictionaries (the key index's versions), others are plain; a
    nested column keeps one codec for all (codecs are set per leaf column)."""
    from ingest_resources.parquet_writing import HASH_FIELD, parquet_options

    table = pa.table(
        {
            "value": [1.5, 2.5],
            "key_hash": pa.array([b"x" * 20, b"y" * 20], pa.binary(20)),
            "row_hash": ["ab" * 20, "cd" * 20],
            "k0": pa.array([1, 2], pa.uint64()),
            "version": pa.array(["v1", "v1"]).dictionary_encode(),
            "file_hash": pa.array([7, 7], pa.int64()),  # a user's number, not random
        }
    )
    table = table.cast(table.schema.set(3, table.schema.field("k0").with_metadata(HASH_FIELD)))
    pq.write_table(table, tmp_path / "t.parquet", **parquet_options(table.schema))
    columns = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    codecs = {columns.column(i).path_in_schema: columns.column(i) for i in range(6)}
    assert {name: c.compression for name, c in codecs.items()} == {
        "value": "ZSTD",
        "key_hash": "UNCOMPRESSED",
        "row_hash": "ZSTD",
        "k0": "UNCOMPRESSED",
        "version": "ZSTD",
        "file_hash": "ZSTD",
    }
    assert "RLE_DICTIONARY" in codecs["version"].encodings
    assert "RLE_DICTIONARY" not in codecs["value"].encodings
    assert not codecs["key_hash"].is_stats_set and codecs["value"].is_stats_set
    assert pq.read_table(tmp_path / "t.parquet").equals(table)
    nested = pa.table({"key_hash": table["key_hash"], "tags": [["a"], ["b", "c"]]})
    assert parquet_options(nested.schema)["compression"] == "zstd"
    pq.write_table(nested, tmp_path / "n.parquet", **parquet_options(nested.schema))
    assert pq.read_table(tmp_path / "n.parquet").equals(nested)
