"""Rows that do not fit the header never shift a column (issue 17, item 1).

The base file is csvkit's real acs2012_5yr_population.csv (93 counties, `"Adams County, NE"`
quoted); each case derives its variant from those bytes here, and its expectations from the
csv module's read of the original. Every case is read both ways (streamed in small blocks,
and whole): both must give the same rows.
"""

import pytest

from ingest_assets.parsers import table as table_parser
from tests.parsers.table_reads import HIDDEN, PARSERS, as_read, read_both, stdlib_rows

ACS = PARSERS / "acs2012_5yr_population.csv"
HEADER = ["fips", "name", "total_population", "margin_of_error"]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 1 KB: a 3 KB file is read in several, as a large one is."""
    monkeypatch.setattr(table_parser, "BLOCK_BYTES", 1 << 10)
    monkeypatch.setattr(table_parser, "BATCH_BYTES", 1 << 11)


def _lines() -> list[bytes]:
    lines = ACS.read_bytes().split(b"\n")
    assert lines[0] == b"fips,name,total_population,margin_of_error" and lines[-1] == b""
    return lines[:-1]


def _expected() -> list[dict]:
    rows = stdlib_rows(ACS.read_bytes())
    assert rows[0] == HEADER and len(rows) == 94
    return as_read(HEADER, rows[1:])


def _read(tmp_path, config, lines: list[bytes]):
    path = tmp_path / "acs.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    streamed, whole, notes = read_both(path, config({"format": "csv"}, keys=["fips"]))
    assert streamed.to_pylist() == whole.to_pylist()
    assert streamed.column_names == ["_row", *HEADER, "_rejected"]
    return whole.to_pylist()


def test_the_real_file_reads_as_the_csv_module_does(tmp_path, config):
    rows = _read(tmp_path, config, _lines())
    assert [{k: r[k] for k in HEADER} for r in rows] == _expected()
    assert [r["_row"] for r in rows] == list(range(2, 95))
    assert all(r["_rejected"] is None for r in rows)


def test_a_trailing_delimiter_on_every_data_line_is_ignored(tmp_path, config):
    """`31001,"Adams County, NE",31299,0,`: one more, empty, field than the header on every
    data row. Nothing shifts, nothing is rejected: the file reads as without it."""
    lines = _lines()
    rows = _read(tmp_path, config, [lines[0]] + [line + b"," for line in lines[1:]])
    assert [{k: r[k] for k in HEADER} for r in rows] == _expected()
    assert rows[0]["fips"] == "31001" and rows[0]["name"] == "Adams County, NE"
    assert all(r["_rejected"] is None for r in rows)


def test_a_trailing_delimiter_file_keeps_a_line_written_without_it(tmp_path, config):
    lines = _lines()
    changed = [lines[0]] + [line + b"," for line in lines[1:]]
    changed[-1] = lines[-1]  # the last line without its trailing delimiter
    rows = _read(tmp_path, config, changed)
    assert [{k: r[k] for k in HEADER} for r in rows] == _expected()


@pytest.mark.parametrize("line", [2, 50, 94], ids=["first", "middle", "last"])
def test_a_row_with_an_extra_field_is_rejected_where_it_is(tmp_path, config, line):
    """The first data row, one in the middle and the last: that row alone is rejected (its
    data null, `_row` its line, its reason with the field counts and its text); the others
    read as in the original file, the first column's values included."""
    lines = _lines()
    text = lines[line - 1] + b",x"
    lines[line - 1] = text
    rows = _read(tmp_path, config, lines)
    assert len(rows) == 93
    rejected = [r for r in rows if r["_rejected"] is not None]
    assert len(rejected) == 1
    assert rejected[0]["_row"] == line
    assert rejected[0]["_rejected"] == (
        f"ragged_row: line {line} has 5 fields, the header 4: {text.decode()}"
    )
    assert all(rejected[0][k] is None for k in HEADER)
    expected = _expected()
    kept = [r for r in rows if r["_rejected"] is None]
    assert [{k: r[k] for k in HEADER} for r in kept] == expected[: line - 2] + expected[line - 1 :]
    assert [r["_row"] for r in rows] == list(range(2, 95))


def test_in_a_trailing_delimiter_file_a_value_in_the_extra_field_is_rejected(tmp_path, config):
    lines = _lines()
    changed = [lines[0]] + [line + b"," for line in lines[1:]]
    changed[29] = lines[29] + b",x"  # line 30
    rows = _read(tmp_path, config, changed)
    rejected = [r for r in rows if r["_rejected"] is not None]
    assert [r["_row"] for r in rejected] == [30]
    assert rejected[0]["_rejected"].startswith("ragged_row: line 30 has 5 fields, the header 4 ")
    assert rejected[0]["_rejected"].endswith(": " + lines[29].decode() + ",x")
    expected = _expected()
    assert [{k: r[k] for k in HEADER} for r in rows if r["_row"] != 30] == (
        expected[:28] + expected[29:]
    )


@pytest.mark.parametrize("line", [10, 94], ids=["middle", "last"])
def test_a_row_with_fewer_fields_is_rejected_where_it_is(tmp_path, config, line):
    """A short row, in the middle or last: rejected like a longer one (a cut-off line, a
    row quoted whole or a note would otherwise publish with columns missing); the others
    read as in the original file."""
    lines = _lines()
    text = lines[line - 1].rsplit(b",", 1)[0]  # without its margin_of_error
    lines[line - 1] = text
    rows = _read(tmp_path, config, lines)
    rejected = [r for r in rows if r["_rejected"] is not None]
    assert [r["_row"] for r in rejected] == [line]
    assert rejected[0]["_rejected"] == (
        f"ragged_row: line {line} has 3 fields, the header 4: {text.decode()}"
    )
    expected = _expected()
    assert [{k: r[k] for k in HEADER} for r in rows if r["_row"] != line] == (
        expected[: line - 2] + expected[line - 1 :]
    )


def test_blank_lines_and_rows_of_empty_fields_are_not_ragged(tmp_path, config):
    """A blank line, a line of spaces and a row of fewer empty fields are blank rows, dropped
    as before; they are not rejected."""
    lines = _lines()
    rows = _read(tmp_path, config, lines[:5] + [b"", b"   ", b",,", b",,,"] + lines[5:])
    assert [{k: r[k] for k in HEADER} for r in rows] == _expected()
    assert all(r["_rejected"] is None for r in rows)


def test_csvkit_bad_csv(config):
    """csvkit's bad.csv: a row too long and one too short, both rejected."""
    path = PARSERS / "bad.csv"
    streamed, whole, _ = read_both(path, config({"format": "csv"}, keys=["column_a"]))
    assert (
        streamed.to_pylist()
        == whole.to_pylist()
        == [
            {
                "_row": 2,
                "column_a": None,
                "column_b": None,
                "column_c": None,
                "_rejected": 'ragged_row: line 2 has 4 fields, the header 3: 1,27,,"I\'m too long!"',
            },
            {
                "_row": 3,
                "column_a": None,
                "column_b": None,
                "column_c": None,
                "_rejected": 'ragged_row: line 3 has 2 fields, the header 3: ,"I\'m too short!"',
            },
            {
                "_row": 4,
                "column_a": "0",
                "column_b": "mixed types.... uh oh",
                "column_c": "17",
                "_rejected": None,
            },
        ]
    )


def test_a_header_cell_over_three_lines_and_mac_line_ends(config):
    """csvkit's test_header_newline.csv (a quoted header cell over lines 1-4) and
    mac_newlines.csv (`\\r` ends, a quoted `\\r` inside a value): read as the csv module
    reads them, header text as written."""
    for name in ("test_header_newline.csv", "mac_newlines.csv"):
        path = PARSERS / name
        raw = stdlib_rows(path.read_bytes())
        streamed, whole, _ = read_both(path, config({"format": "csv"}, keys=[raw[0][1]]))
        assert streamed.to_pylist() == whole.to_pylist()
        assert whole.column_names == ["_row", *raw[0], "_rejected"]
        assert whole.drop_columns(HIDDEN).to_pylist() == as_read(raw[0], raw[1:])
        assert whole.column("_row").to_pylist() == list(range(2, len(raw) + 1))


def test_a_reject_after_a_value_over_several_lines_says_which_numbering(tmp_path, config):
    """`_row` counts records (a quoted value over two lines is one row, as a spreadsheet
    shows the file); the reason says so when the file's line is further down."""
    path = tmp_path / "notes.csv"
    path.write_bytes(b'id,note\n1,"two\nlines"\n2,b,extra\n3,c\n')
    streamed, whole, _ = read_both(path, config({"format": "csv"}, keys=["id"]))
    assert streamed.to_pylist() == whole.to_pylist()
    rows = whole.to_pylist()
    assert [r["_row"] for r in rows] == [2, 3, 4]
    assert rows[1]["_rejected"] == (
        "ragged_row: row 3 (its line is further down: quoted values above it span lines) has "
        "3 fields, the header 2: 2,b,extra"
    )
    assert rows[2] == {"_row": 4, "id": "3", "note": "c", "_rejected": None}


def test_a_long_rejected_line_is_clipped_in_its_reason(tmp_path, config):
    path = tmp_path / "long.csv"
    path.write_bytes(b"a,b\n1,2\n" + b"3,4," + b"x" * 500 + b"\n")
    _, whole, _ = read_both(path, config({"format": "csv"}, keys=["a"]))
    reason = whole.to_pylist()[1]["_rejected"]
    assert reason.startswith("ragged_row: line 3 has 3 fields, the header 2: 3,4,xxx")
    assert reason.endswith("x...") and len(reason) < 300


def test_skip_footer_counts_a_rejected_row_as_a_row(tmp_path, config):
    """A footer note with commas in it (more fields than the header) is cut as the footer,
    not rejected."""
    path = tmp_path / "footer.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\nSource: x, y, z\n")
    cfg = config(
        {"format": "csv"}, keys=["a"], parse={"plugin": "table", "options": {"skip_footer": 1}}
    )
    streamed, whole, _ = read_both(path, cfg)
    assert streamed.to_pylist() == whole.to_pylist()
    assert whole.drop_columns(HIDDEN).to_pylist() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
