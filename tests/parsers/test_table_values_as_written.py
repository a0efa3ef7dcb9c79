"""Values as written (issue 17, item 3): no trimming, in CSV (quoted or not) and in workbooks,
header names included; `parse.options.strip: true` opts in for values (never headers)."""

import openpyxl
import pytest

from ingest_assets.parsers import ParseError
from tests.parsers.table_reads import HIDDEN, PARSERS, as_read, read_both, stdlib_rows

WRITTEN = PARSERS / "values_as_written.csv"
SKIP_EMPTY = PARSERS / "skip_empty_lines.csv"


def _strip(options: dict | None = None) -> dict:
    return {"parse": {"plugin": "table", "options": options or {}}}


def test_csv_values_keep_their_whitespace(config):
    """`"  quoted both  "`, unquoted leading and trailing spaces, a quoted value over two lines
    ending in `\\r`, `Фамилия ` quoted and not, a value of one space, one of a tab."""
    raw = stdlib_rows(WRITTEN.read_bytes())
    streamed, whole, _ = read_both(WRITTEN, config({"format": "csv"}, keys=["id"]))
    assert streamed.to_pylist() == whole.to_pylist()
    rows = whole.drop_columns(HIDDEN).to_pylist()
    assert rows == as_read(raw[0], raw[1:])
    assert rows[0]["name"] == "  quoted both  "
    assert rows[1] == {"id": "2", "name": "  unquoted lead", "note": "trail  "}
    assert rows[2]["name"] == "line one\nline two\r"
    assert rows[3] == {"id": "4", "name": "Фамилия ", "note": "Фамилия "}
    assert rows[4] == {"id": "5", "name": " ", "note": "\t"}


def test_csv_strip_true_strips_values_not_headers(tmp_path, config):
    path = tmp_path / "spaced.csv"
    path.write_bytes(WRITTEN.read_bytes().replace(b"id,name,note", b"id , name,note"))
    cfg = config({"format": "csv"}, keys=["id "], **_strip({"strip": True}))
    streamed, whole, _ = read_both(path, cfg)
    assert streamed.to_pylist() == whole.to_pylist()
    assert whole.column_names == ["_row", "id ", " name", "note", "_rejected"]
    rows = whole.drop_columns(HIDDEN).to_pylist()
    assert [r[" name"] for r in rows] == [
        "quoted both",
        "unquoted lead",
        "line one\nline two",
        "Фамилия",
        None,  # (a value of whitespace only is empty once stripped)
    ]
    assert [r["note"] for r in rows] == ["plain", "trail", "x", "Фамилия", None]


def test_xlsx2csv_russian_csv_keeps_the_trailing_space(config):
    raw = stdlib_rows(SKIP_EMPTY.read_bytes())
    assert raw[0][0] == "№" and raw[1][5] == "Фамилия "
    streamed, whole, _ = read_both(SKIP_EMPTY, config({"format": "csv"}, keys=["№"]))
    assert streamed.to_pylist() == whole.to_pylist()
    assert whole.drop_columns(HIDDEN).to_pylist() == [
        row for row in as_read(raw[0], raw[1:]) if any(v is not None for v in row.values())
    ]
    assert whole.column("Аналитик").to_pylist()[0] == "Фамилия "


def test_workbook_text_keeps_its_whitespace_and_strip_opts_in(parse):
    """xlsx2csv's skip_empty_lines.xlsx: the cell 'Фамилия ' as written (openpyxl reads the
    same), stripped with `strip: true`."""
    path = PARSERS / "skip_empty_lines.xlsx"
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[1][5] == "Фамилия "
    table = parse(path, {"format": "xlsx"}, keys=["№"])
    assert table.column("Аналитик").to_pylist()[0] == "Фамилия "
    stripped = parse(path, {"format": "xlsx"}, keys=["№"], **_strip({"strip": True}))
    assert stripped.column("Аналитик").to_pylist()[0] == "Фамилия"


def test_a_header_of_whitespace_only_is_unnamed(tmp_path, run, config):
    path = tmp_path / "blank_header.csv"
    path.write_bytes(b"a,  ,b\n1,2,3\n")
    table = run(path.read_bytes(), config({"format": "csv"}, keys=["a"]))
    assert table.column_names == ["_row", "a", "Unnamed: 1", "b", "_rejected"]
    assert table.drop_columns(HIDDEN).to_pylist() == [{"a": "1", "Unnamed: 1": "2", "b": "3"}]


@pytest.mark.parametrize(
    ("contract", "why"),
    [
        (
            {"normalize": {"primary_keys": ["id"], "schema": {"amount": "float64"}}},
            "normalize.schema",
        ),
        ({"parse_config": {"columns": {"amount": "value"}}}, "parse_config.columns"),
    ],
)
def test_a_name_the_contract_writes_without_the_header_spaces_is_named(
    tmp_path, run, config, contract, why
):
    path = tmp_path / "spaced.csv"
    path.write_bytes(b"id,amount \n1,2.5\n")
    cfg = config({"format": "csv"}, keys=["id"], dataset_id="SPACED", **contract)
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, "spaced.csv")
    assert str(info.value) == (
        f"dataset SPACED: spaced.csv: {why} names the column 'amount', but the header writes "
        "it 'amount ': header names are kept as written, spaces included. Write the name as "
        "the header has it, or map it with parse_config.columns"
    )


def test_a_workbook_header_keeps_its_text(tmp_path, parse):
    path = tmp_path / "spaced.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["id", " amount "])
    book.active.append([1, 2.5])
    book.save(path)
    table = parse(path, {"format": "xlsx"}, keys=["id"])
    assert table.column_names == ["_row", "id", " amount "]


def test_a_header_over_two_rows_is_refused_as_repeating_the_empty_name(config, run, fixture_file):
    """INDEC's VBP/VAB table: years in row 1 over empty cells, quarters in row 2. Read at row
    1, its empty cells above values would become `Unnamed: i` columns: refused, naming them."""
    path = fixture_file("malformed/indec_sh_VBP_VAB_12_24_two_row_dup_header.csv")
    header, *rows = stdlib_rows(path.read_bytes(), "utf-8-sig")
    empty_above_values = [
        i for i, cell in enumerate(header) if not cell and any(r[i].strip() for r in rows)
    ]
    letters = [openpyxl.utils.get_column_letter(i + 1) for i in empty_above_values]
    source = {"format": "csv", "encoding": "utf-8-sig"}
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), config(source, keys=["2004"], dataset_id="VBP"), "vbp.csv")
    assert str(info.value).startswith(
        "dataset VBP: vbp.csv: header row 1 repeats a name, the empty one: it names no column "
        f"{', '.join(letters[:10])}, ... ({len(letters)} in all), which hold values"
    )
    assert "allow_duplicate_headers" in str(info.value)
    allowed = config(
        source,
        keys=["2004"],
        parse={"plugin": "table", "options": {"allow_duplicate_headers": True}},
    )
    table = run(path.read_bytes(), allowed, "vbp.csv")
    assert table.column_names[:4] == ["_row", "Unnamed: 0", "2004", "Unnamed: 2"]
