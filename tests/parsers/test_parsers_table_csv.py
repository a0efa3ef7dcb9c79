"""`table` parser on real CSV files: encodings, separators, quoting, footers, ragged rows."""

import csv
import io
import re

import pyarrow as pa
import pytest

from ingest_assets.parsers import ParseError

INDEC = "csv/indec_serie_ipc_divisiones_latin1_decimal_comma.csv"
BDE = "csv/bde_catalogo_tc_latin1.csv"
ITCRM = "csv/bcra_ITCRMSerie2_semicolon_trailing_cols.csv"
BOOK = "malformed/csvwrangling_book_multiline_quoted.csv"
RAGGED = "malformed/csvwrangling_phonography_lib_ragged.csv"
BDE_KEY = "Nombre de la serie "  # as the header writes it, trailing space included

INDEC_SOURCE = {"format": "csv", "encoding": "latin-1", "delimiter": ";", "decimal": ","}
INDEC_COLUMNS = [
    "Codigo",
    "Descripcion",
    "Clasificador",
    "Periodo",
    "Indice_IPC",
    "v_m_IPC",
    "v_i_a_IPC",
    "Region",
]


def _stdlib_rows(data: bytes, encoding: str, delimiter: str = ",") -> list[list[str]]:
    """The file read independently with the csv module (quoted newlines kept as written)."""
    return list(csv.reader(io.StringIO(data.decode(encoding), newline=""), delimiter=delimiter))


@pytest.fixture(scope="module")
def indec_table(parse, fixture_file) -> pa.Table:
    return parse(fixture_file(INDEC), INDEC_SOURCE, keys=["Codigo", "Periodo", "Region"])


def test_indec_cpi_shape_and_header(indec_table):
    assert indec_table.num_rows == 13_482
    assert indec_table.column_names == ["_row", *INDEC_COLUMNS, "_rejected"]
    # Every source column stays text at parse stage (decimal comma and codes untouched).
    for name in INDEC_COLUMNS:
        assert indec_table.schema.field(name).type == pa.string(), name
    assert indec_table.column("_row").to_pylist() == list(range(2, 13_484))


def test_indec_cpi_known_rows(indec_table):
    rows = {r["_row"]: r for r in indec_table.to_pylist()}
    # line 2 of the file: 0;NIVEL GENERAL;...;201612;100;NA;NA;GBA
    assert rows[2] == {
        "_row": 2,
        "Codigo": "0",
        "Descripcion": "NIVEL GENERAL",
        "Clasificador": "Nivel general y divisiones COICOP",
        "Periodo": "201612",
        "Indice_IPC": "100",
        "v_m_IPC": None,
        "v_i_a_IPC": None,
        "Region": "GBA",
        "_rejected": None,
    }
    # line 13365: 01;Alimentos y bebidas no alcohólicas;...;202510;10266,4083;2,4;29,9;GBA
    assert rows[13_365] == {
        "_row": 13_365,
        "Codigo": "01",  # zero padding kept
        "Descripcion": "Alimentos y bebidas no alcohólicas",  # latin-1 decoded
        "Clasificador": "Nivel general y divisiones COICOP",
        "Periodo": "202510",
        "Indice_IPC": "10266,4083",  # decimal comma kept as text at parse stage
        "v_m_IPC": "2,4",
        "v_i_a_IPC": "29,9",
        "Region": "GBA",
        "_rejected": None,
    }
    # text codes with an empty Descripcion (line 114: B;;Bienes y servicios;201612;100;NA;NA;GBA)
    assert rows[114]["Codigo"] == "B"
    assert rows[114]["Descripcion"] is None
    assert rows[114]["Clasificador"] == "Bienes y servicios"
    # last line of the file
    assert rows[13_483]["Codigo"] == "S"
    assert rows[13_483]["Indice_IPC"] == "9490,5471"
    assert rows[13_483]["Region"] == "Nacional"


def test_indec_cpi_na_literal_is_null(indec_table):
    nulls = {name: indec_table.column(name).null_count for name in ("Indice_IPC", "v_m_IPC")}
    nulls["v_i_a_IPC"] = indec_table.column("v_i_a_IPC").null_count
    assert nulls == {"Indice_IPC": 0, "v_m_IPC": 126, "v_i_a_IPC": 1512}
    assert sum(nulls.values()) == 1_638  # the file's 1,638 literal 'NA' cells
    assert "NA" not in set(indec_table.column("v_m_IPC").to_pylist())


def test_indec_cpi_matches_an_independent_read(indec_table, fixture_file):
    raw = _stdlib_rows(fixture_file(INDEC).read_bytes(), "latin-1", ";")
    assert raw[0] == INDEC_COLUMNS
    expected = [
        {
            name: (None if cell in ("NA", "") else cell)
            for name, cell in zip(raw[0], line, strict=True)
        }
        for line in raw[1:]
    ]
    got = indec_table.drop_columns(["_row", "_rejected"]).to_pylist()
    assert len(got) == len(expected)
    assert got == expected
    periods = set(indec_table.column("Periodo").to_pylist())
    assert min(periods) == "201612"
    assert max(periods) == "202510"


def test_bde_catalog_latin1_header_trailing_space_is_kept(parse, fixture_file):
    """The header writes 'Nombre de la serie ' (a trailing space): the column keeps it."""
    path = fixture_file(BDE)
    table = parse(path, {"format": "csv", "encoding": "latin-1"}, keys=[BDE_KEY])
    assert table.num_rows == 73
    assert BDE_KEY in table.column_names
    assert "Nombre de la serie" not in table.column_names
    assert table.column_names[1:4] == [
        BDE_KEY,
        "Número secuencial",
        "Alias de la serie",
    ]
    first = table.slice(0, 1).to_pylist()[0]
    assert first[BDE_KEY] == "DTCCBCEUSDEUR.B"
    assert first["Número secuencial"] == "573234"
    assert first["Descripción de la serie"] == (
        "Tipo de cambio. Dólares estadounidenses por euro (USD/EUR). Datos diarios"
    )
    assert first["Fecha de la primera observación"] == "04 ENE 1999"
    assert first["Fecha de la última observación"] == "25 MAR 2021"
    assert first["Número de observaciones"] == "5799"
    assert first["Notas"] is None
    last = table.slice(72, 1).to_pylist()[0]
    assert last[BDE_KEY] == "DTCCMMETNDEUR.M"
    assert last["Fuente"] == "BANCO DE ESPAÑA"
    assert last["Frecuencia de la serie"] == "MENSUAL"
    # both documented keys are unique
    assert len(set(table.column(BDE_KEY).to_pylist())) == 73
    assert len(set(table.column("Número secuencial").to_pylist())) == 73


def test_bde_catalog_key_named_without_the_header_space_says_so(config, run, fixture_file):
    path = fixture_file(BDE)
    cfg = config({"format": "csv", "encoding": "latin-1"}, keys=["Nombre de la serie"])
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert "normalize.primary_keys names the column 'Nombre de la serie'" in message
    assert "the header writes it 'Nombre de la serie '" in message


def test_bde_catalog_matches_an_independent_read(parse, fixture_file):
    path = fixture_file(BDE)
    table = parse(path, {"format": "csv", "encoding": "latin-1"}, keys=[BDE_KEY])
    raw = _stdlib_rows(path.read_bytes(), "latin-1")
    header = raw[0]
    expected = [
        {h: (c if c != "" else None) for h, c in zip(header, line, strict=True)} for line in raw[1:]
    ]
    assert table.drop_columns(["_row", "_rejected"]).to_pylist() == expected


def test_itcrm_semicolon_trailing_empty_columns_are_dropped(parse, fixture_file):
    path = fixture_file(ITCRM)
    source = {"format": "csv", "encoding": "latin-1", "delimiter": ";"}
    table = parse(path, source, keys=["Period"])
    assert table.column_names == ["_row", "Period", "Value", "_rejected"]
    rows = table.to_pylist()
    assert rows[0] == {"_row": 2, "Period": "1/1/1997", "Value": "86.3", "_rejected": None}
    assert rows[1] == {"_row": 3, "Period": "2/1/1997", "Value": "86.3", "_rejected": None}
    # the blank line 9910 is dropped; the three latin-1 footnotes are rows as the source has them
    assert [r["_row"] for r in rows[-4:]] == [9909, 9911, 9912, 9913]
    assert rows[-4] == {"_row": 9909, "Period": "16/2/2024", "Value": "114.0", "_rejected": None}
    assert rows[-3]["Period"] == "Nota: Datos provisorios sujetos a revisión. "
    assert rows[-2]["Period"].startswith("Fuente: INDEC, Direcciones de Estadísticas")
    assert "Ciudad Autónoma" in rows[-2]["Period"]
    assert rows[-1]["Value"] is None


@pytest.mark.parametrize("footer", [3, 4])
def test_itcrm_skip_footer_leaves_one_row_per_day(parse, fixture_file, footer):
    """The file ends with a blank row and 3 notes: skip_footer counts the file's last rows,
    the blank one too (4), and a blank row left above a footer of 3 is dropped as blank."""
    path = fixture_file(ITCRM)
    source = {"format": "csv", "encoding": "latin-1", "delimiter": ";"}
    table = parse(
        path, source, keys=["Period"], parse={"plugin": "table", "options": {"skip_footer": footer}}
    )
    # 1997-01-01 .. 2024-02-16 inclusive is 9,908 days
    assert table.num_rows == 9_908
    periods = table.column("Period").to_pylist()
    assert periods[0] == "1/1/1997"
    assert periods[-1] == "16/2/2024"
    assert all(re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", p) for p in periods)
    assert len(set(periods)) == 9_908
    values = table.column("Value").to_pylist()
    assert all(re.fullmatch(r"\d+\.\d", v) for v in values)


def test_itcrm_wrong_encoding_is_a_clear_error(config, run, fixture_file):
    path = fixture_file(ITCRM)
    cfg = config({"format": "csv", "delimiter": ";"}, keys=["Period"], dataset_id="BCRA_ITCRM")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert "dataset BCRA_ITCRM" in message
    assert path.name in message
    assert "'utf-8'" in message
    assert "source.encoding" in message
    assert "latin-1" in message  # suggests the fix


def test_itcrm_wrong_encoding_error_locates_the_bad_byte(config, run, fixture_file):
    """The message says where decoding failed; that place must be the file's, not a buffer's."""
    path = fixture_file(ITCRM)
    data = path.read_bytes()
    first_bad = data.index(b"\xf3")  # 'revisi\xf3n' in the footnote on line 9911
    assert first_bad == 302_938
    cfg = config({"format": "csv", "delimiter": ";"}, keys=["Period"], dataset_id="BCRA_ITCRM")
    with pytest.raises(ParseError) as info:
        run(data, cfg, str(path))
    message = str(info.value)
    assert f"byte {first_bad}" in message or "line 9911" in message, message


def test_multiline_quoted_cells_keep_their_newlines(parse, fixture_file):
    path = fixture_file(BOOK)
    table = parse(path, {"format": "csv"}, keys=["bookId"])
    assert table.num_rows == 19
    assert table.column_names == [
        "_row",
        "bookId",
        "title",
        "intro",
        "author",
        "press",
        "publishDate",
        "pages",
        "isbn",
        "fileFormat",
        "fileSize",
        "tags",
        "_rejected",
    ]
    assert table.column("bookId").to_pylist() == [str(i) for i in range(1, 20)]
    first = table.slice(0, 1).to_pylist()[0]
    assert first["title"] == "jQuery 1.4 Reference Guide"
    assert first["author"] == "Karl Swedberg, Jonathan Chaffer"
    assert first["publishDate"] == "2010-01-01"
    assert first["fileSize"] == "2590000"
    assert first["tags"] == "javascript, jQuery"
    # the intro spans several physical lines; its line breaks are kept byte for byte
    assert "is assumed. \r\r\nThis is a reference guide" in first["intro"]
    with_newlines = [i for i in table.column("intro").to_pylist() if i and "\n" in i]
    assert len(with_newlines) == 15


def test_multiline_quoted_matches_an_independent_read(parse, fixture_file):
    path = fixture_file(BOOK)
    table = parse(path, {"format": "csv"}, keys=["bookId"])
    raw = _stdlib_rows(path.read_bytes(), "utf-8")
    expected = [
        {h: (c if c != "" else None) for h, c in zip(raw[0], line, strict=True)} for line in raw[1:]
    ]
    assert len(expected) == 19
    assert table.drop_columns(["_row", "_rejected"]).to_pylist() == expected


def test_ragged_rows_are_rejected_in_place_and_full_rows_read(config, run, fixture_file):
    """21 header fields, rows of 15-21 fields: the 33 rows with 21 fields read as the csv module
    reads them; each of the 76 shorter rows is rejected in place (`_rejected` ragged_row, its
    line, its field count and its text; its data null), none shifted or padded. (Before issue
    17 the short rows were padded with nulls.)"""
    path = fixture_file(RAGGED)
    cfg = config({"format": "csv"}, keys=["ipa number"], dataset_id="PHONO_LIB")
    table = run(path.read_bytes(), cfg, str(path))
    raw = _stdlib_rows(path.read_bytes(), "utf-8")
    header, lines = raw[0], raw[1:]
    assert len(header) == 21 and len(lines) == 109  # 110 lines (no final newline), one header
    assert table.num_rows == 109
    assert table.column_names == ["_row", *header, "_rejected"]
    rows = {r["_row"]: r for r in table.to_pylist()}
    texts = path.read_text(encoding="utf-8").split("\n")
    for number, fields in enumerate(lines, start=2):
        row = rows[number]
        if len(fields) == 21:
            assert row["_rejected"] is None
            assert [row[h] for h in header] == [f if f != "" else None for f in fields]
        else:
            assert row["_rejected"] == (
                f"ragged_row: line {number} has {len(fields)} fields, the header 21: "
                + texts[number - 1]
            )
            assert all(row[h] is None for h in header)
    assert sum(r["_rejected"] is None for r in rows.values()) == 33
    assert rows[78]["alvey"] == "v "  # trailing space kept at parse stage
    assert rows[5]["_rejected"].startswith("ragged_row: line 5 has 16 fields, the header 21: ")
    # the last line has no newline and is still read
    assert rows[110]["english gloss"] == "poor"
    assert rows[110]["edin"] == "oor"


def test_row_longer_than_the_header_is_rejected_in_place(config, run, fixture_file):
    """The real ragged file with line 5 given 22 fields (one more than the header): that row
    is rejected (its data null, its reason said), every other row reads as before."""
    data = fixture_file(RAGGED).read_bytes()
    lines = data.split(b"\n")
    assert lines[4].count(b",") == 15
    lines[4] += b",x,x,x,x,x,x"
    cfg = config({"format": "csv"}, keys=["ipa number"], dataset_id="PHONO_LIB")
    table = run(b"\n".join(lines), cfg, "phonography_lib.csv")
    base = run(data, cfg, "phonography_lib.csv")
    assert table.num_rows == base.num_rows == 109
    rows = {r["_row"]: r for r in table.to_pylist()}
    rejected = rows.pop(5)
    assert rejected["_rejected"] == (
        "ragged_row: line 5 has 22 fields, the header 21: " + lines[4].decode()
    )
    assert all(v is None for k, v in rejected.items() if k not in ("_row", "_rejected"))
    expected = {r["_row"]: r for r in base.to_pylist()}
    expected.pop(5)
    assert rows == expected
