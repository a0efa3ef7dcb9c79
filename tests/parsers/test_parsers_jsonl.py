"""`format: jsonl`: one JSON object per line, blank lines skipped, a line that is not an
object a reject row (quarantined by normalize), `_row` the line number; read in batches of
one schema. Expectations written by hand from tests/fixtures/feeds/people.jsonl, or taken
from the json module. Before: `format: jsonl` had no reader."""

import json

import pyarrow as pa
import pytest

from ingest_assets import stages
from ingest_assets.parsers import ParseError, json_lines
from tests.bounded import OWN_PEAK_RSS_MB
from tests.conftest import FIXTURES
from tests.parsers.batches import dataset_file, file_dataset, read_file

PEOPLE = FIXTURES / "feeds" / "people.jsonl"
KEYS = ["id"]
COLUMNS = [
    "_row",
    "_rejected",
    "id",
    "name",
    "score",
    "tags",
    "address.city",
    "address.zip",
    "active",
    "extra",
]
NOT_JSON = (
    "invalid_json_line: line 5 is not JSON (Expecting ',' delimiter: column 27): "
    '{"id": 4, "name": "Darío" "score": 8}'
)
ROWS = [  # _row, _rejected, id, name, score, tags, city, zip, active, extra
    (1, None, 1, "Ana", 9.5, '["a", "b"]', "Córdoba", "5000", True, None),
    (2, None, 2, "Bruno", 7.0, "[]", "Rosario", None, False, None),
    (4, None, 3, "Carla", None, None, "Mendoza", None, True, None),
    (5, NOT_JSON, None, None, None, None, None, None, None, None),
    (6, 'invalid_json_line: line 6 is an array, not an object: [5, "Eva"]', *[None] * 8),
    (7, None, 6, "Fede", 10.0, None, None, None, None, "only here"),
    (9, None, 7, "Gimena", 6.25, None, None, None, True, "7"),
]


def test_people_jsonl_rows_and_rejects():
    table, notes = read_file(PEOPLE, {"format": "jsonl"}, keys=KEYS)
    assert table.column_names == COLUMNS
    assert [tuple(row.values()) for row in table.to_pylist()] == ROWS
    assert notes == []


def test_each_column_has_the_type_its_values_share():
    table, _ = read_file(PEOPLE, {"format": "jsonl"}, keys=KEYS)
    types = {field.name: field.type for field in table.schema}
    assert types["id"] == pa.int64()  # ints with rejected (null) rows stay ints
    assert types["score"] == pa.float64()  # 9.5, 7, null, 10, 6.25
    assert types["active"] == pa.bool_()
    assert types["extra"] == pa.string()  # "only here" and 7: text, 7 as JSON writes it


def test_the_parsed_stage_keeps_the_reject_rows_for_normalize(tmp_path, runtime):
    """The parsed part holds every row, the rejected ones with their reason (normalize turns
    them into quarantine rows with reason_code invalid_json_line)."""
    config = file_dataset(tmp_path, "PEOPLE", {"path": PEOPLE, "format": "jsonl"}, KEYS)
    info = stages.run_raw(runtime, config, "all")
    assert info.key.endswith(".jsonl")
    staged, _ = stages.run_parse(runtime, config, "all")
    assert staged.num_rows == 7
    head = staged.head.to_pylist()
    assert [(row["_row"], row["_rejected"]) for row in head if row["_rejected"]] == [
        (5, NOT_JSON),
        (6, 'invalid_json_line: line 6 is an array, not an object: [5, "Eva"]'),
    ]


def test_a_real_json_document_as_json_lines_reads_as_the_json_module_does(tmp_path, fixture_file):
    posts = json.loads(fixture_file("json/jsonplaceholder_data.json").read_bytes())["posts"]
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps(post) + "\n" for post in posts), encoding="utf-8")
    table, _ = read_file(path, {"format": "jsonl"}, keys=KEYS)
    assert table.column_names == ["_row", *posts[0]]  # no line rejected: no _rejected column
    assert table.drop_columns(["_row"]).to_pylist() == posts
    assert table.column("_row").to_pylist() == list(range(1, len(posts) + 1))


def test_batches_share_one_schema_when_a_field_comes_late(tmp_path, monkeypatch):
    """A field first seen in a later batch, or ints that turn float there, does not change
    the schema between batches (the first pass settles it)."""
    monkeypatch.setattr(json_lines, "BATCH_ROWS", 3)
    lines = [{"id": n, "v": n} for n in range(1, 8)] + [{"id": 8, "v": 0.5, "late": "x"}]
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    batches = list(json_lines.stream_jsonl(path, _ctx(path)))
    assert len(batches) == 3
    assert len({batch.schema for batch in batches}) == 1
    table = pa.concat_tables(batches)
    assert table.column("v").to_pylist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.5]
    assert table.column("late").to_pylist() == [None] * 7 + ["x"]


def _ctx(path):
    from ingest_assets.parsers import ParseContext
    from tests.parsers.conftest import make_config

    return ParseContext(make_config({"format": "jsonl"}, keys=KEYS), str(path))


def test_an_empty_file_gives_an_empty_table(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n\n")
    batches = list(json_lines.stream_jsonl(path, _ctx(path)))
    assert [batch.num_rows for batch in batches] == [0]


def test_a_jsonl_not_in_utf8_is_refused_with_its_line_or_read_as_named(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": 1, "city": "Rosario"}\n{"id": 2, "city": "C\xf3rdoba"}\n')
    with pytest.raises(ParseError) as info:
        read_file(path, {"format": "jsonl"}, keys=KEYS)
    assert "the JSON Lines file names no encoding" in str(info.value)
    assert "byte 49 (line 2) is b'\\xf3rdo'" in str(
        info.value
    )  # 29 bytes, then '{"id": 2, "city": "C'
    table, _ = read_file(path, {"format": "jsonl", "encoding": "latin-1"}, keys=KEYS)
    assert table.column("city").to_pylist() == ["Rosario", "Córdoba"]
    table, notes = read_file(path, {"format": "jsonl", "encoding": "auto"}, keys=KEYS)
    assert table.column("city").to_pylist() == ["Rosario", "Córdoba"]
    assert len(notes) == 1 and "detected as" in notes[0]


def test_utf16_json_lines_with_a_bom(tmp_path):
    path = tmp_path / "wide.jsonl"
    path.write_bytes(
        '{"id": 1, "city": "Córdoba"}\r\n{"id": 2, "city": "Asunción"}\r\n'.encode("utf-16")
    )
    table, _ = read_file(path, {"format": "jsonl"}, keys=KEYS)
    assert table.drop_columns(["_row"]).to_pylist() == [
        {"id": 1, "city": "Córdoba"},
        {"id": 2, "city": "Asunción"},
    ]


def test_a_field_named_like_a_hidden_column_is_refused(tmp_path):
    path = tmp_path / "hidden.jsonl"
    path.write_text('{"id": 1, "_row": 9}\n')
    with pytest.raises(ParseError, match="line 1 has a field '_row', a name Ingest reserves"):
        read_file(path, {"format": "jsonl"}, keys=KEYS)


PARSE_ONLY = """
import json, sys
from ingest_assets import stages
from ingest_resources.runtime import local_runtime
from ingest_assets.contract import load_configs
from ingest_assets.parsers import json_lines
json_lines.BATCH_ROWS = 2_000  # many batches in either file
config = load_configs([sys.argv[1]])[0]
rt = local_runtime(sys.argv[2])
stages.run_raw(rt, config, "all")
staged, _ = stages.run_parse(rt, config, "all")
print(json.dumps({"rows": staged.num_rows, "rss_peak_mb": OWN_PEAK_RSS_MB}))
""".replace("OWN_PEAK_RSS_MB", OWN_PEAK_RSS_MB)


def parse_in_child(folder, lines: int, compress: bool = False) -> dict:
    """Parse a JSON Lines file of `lines` ~400-byte lines in a fresh process: rows, peak RSS."""
    import gzip
    import subprocess
    import sys

    folder.mkdir()
    name = "big.jsonl.gz" if compress else "big.jsonl"
    opener = gzip.open if compress else open
    with opener(folder / name, "wt") as out:
        for n in range(lines):
            out.write(json.dumps({"id": n, "v": n * 0.5, "note": f"{'x' * 360}{n}"}) + "\n")
    source = {"path": folder / name, "format": "jsonl", "max_bytes": 1_000_000_000}
    config = dataset_file(folder, "BIG", source, KEYS)
    done = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, str(config), str(folder / "store")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_big_jsonl_is_parsed_in_bounded_memory(tmp_path, compress):
    """4x the lines, about the same peak: the file is never held whole (~8 MB vs ~32 MB of
    text; held whole as Python objects, the larger would take ~150 MB more)."""
    small = parse_in_child(tmp_path / "small", 20_000, compress)
    large = parse_in_child(tmp_path / "large", 80_000, compress)
    assert (small["rows"], large["rows"]) == (20_000, 80_000)
    assert large["rss_peak_mb"] < small["rss_peak_mb"] + 25, (small, large)


def test_a_utf8_bom_and_crlf_lines(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": 1, "city": "C\xc3\xb3rdoba"}\r\n{"id": 2, "city": "x"}\r\n'
    )
    table, _ = read_file(path, {"format": "jsonl"}, keys=KEYS)
    assert table.to_pylist() == [
        {"_row": 1, "id": 1, "city": "Córdoba"},
        {"_row": 2, "id": 2, "city": "x"},
    ]
