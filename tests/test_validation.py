"""Bad input never reaches `current` and is never silently dropped: real malformed files,
schema drift in the source, and quarantine replay after the contract is fixed."""

import csv
import io

import pytest

from ingest_assets import stages
from ingest_assets.cli import main
from ingest_assets.contract import parse_config
from ingest_assets.eventstore import read_current
from ingest_assets.parsers import ParseError
from tests.conftest import FIXTURES


def config_for(path, **overrides):
    data = {
        "dataset_id": "MALFORMED",
        "source": {"kind": "file", "path": str(path), "format": "csv"},
        "normalize": {"primary_keys": ["id"]},
        "checks": {"max_rejected_ratio": 1.0},
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_config(data, "malformed.yaml")


def run_until_normalized(runtime, config, partition="all"):
    stages.run_raw(runtime, config, partition)
    stages.run_parse(runtime, config, partition)
    return stages.run_normalize(runtime, config, partition)


def test_ragged_rows_are_kept_or_quarantined_never_lost(runtime):
    path = FIXTURES / "malformed" / "csvwrangling_phonography_lib_ragged.csv"
    config = config_for(path, normalize={"primary_keys": ["timit"]})
    outcome = run_until_normalized(runtime, config)
    counts = outcome.counts
    assert counts.parsed == 109
    assert counts.normalized + counts.rejected + counts.duplicates == 109
    assert counts.rejected > 0
    codes = set(outcome.rejected.column("reason_code").to_pylist())
    # a row that does not fit the header (76 rows shorter than it) is rejected by the parser
    # and quarantined as ragged_row (issue 17; before, it was padded with nulls)
    assert "ragged_row" in codes and codes <= {"ragged_row", "missing_key", "conflicting_duplicate"}
    ragged = [r for r in outcome.rejected.to_pylist() if r["reason_code"] == "ragged_row"]
    assert len(ragged) == 76 and all(r["timit"] is None for r in ragged)


UNTERMINATED = 'id,name,note\n1,a,fine\n2,b,"opens here\n3,c,swallowed\n4,d,too\n'


@pytest.mark.parametrize("ending", ["\n", ""])
def test_a_quote_left_open_at_the_end_of_the_file_is_quarantined(runtime, tmp_path, ending):
    """Arrow reads everything after a quote that never closes into one value; the row holding
    it goes to quarantine (it would publish lines 4-5 as one note), the rows above publish."""
    path = tmp_path / "open.csv"
    path.write_text(UNTERMINATED.rstrip("\n") + ending)
    outcome = run_until_normalized(runtime, config_for(path))
    assert outcome.counts.to_dict() == {
        "parsed": 2,
        "rejected": 1,
        "duplicates": 0,
        "normalized": 1,
    }
    (rejected,) = outcome.rejected.to_pylist()
    assert rejected["reason_code"] == "unterminated_quote"
    assert rejected["_row"] == 3 and rejected["id"] is None and rejected["note"] is None
    assert rejected["reason"].startswith(
        "line 3: a quoted value opens in its last column and the file ends inside it "
        "(3 line(s) read into it; the rows they hold are not read): "
        '2,b,"opens here\\n3,c,swallowed\\n4,d,too'
    )
    assert {r["id"]: r["note"] for r in outcome.table.to_pylist()} == {"1": "fine"}


@pytest.mark.parametrize(
    "text",
    [
        'id,name,note\n1,a,"two\nlines"\n',  # a value over lines, closed at the very end
        'id,name,note\n1,a,"ends with a quote"""',
        'id,name,note\n1,a,say "hi"\n',  # quotes inside an unquoted value
    ],
)
def test_values_closed_at_the_end_of_the_file_are_read(runtime, tmp_path, text):
    path = tmp_path / "closed.csv"
    path.write_text(text)
    expected = next(csv.DictReader(io.StringIO(text)))
    outcome = run_until_normalized(runtime, config_for(path))
    assert outcome.counts.rejected == 0
    assert outcome.table.to_pylist()[0]["note"] == expected["note"]


def test_rows_wrapped_in_quotes_go_to_quarantine_with_their_row(runtime):
    path = FIXTURES / "malformed" / "datosgobar_metadatos_energia_mojibake_quoted_rows.csv"
    config = config_for(
        path, source={"encoding": "utf-8-sig"}, normalize={"primary_keys": ["serie_id"]}
    )
    outcome = run_until_normalized(runtime, config)
    assert outcome.counts.to_dict() == {
        "parsed": 77,
        "rejected": 53,
        "duplicates": 0,
        "normalized": 24,
    }
    rejected = outcome.rejected.to_pylist()
    assert all(r["source_ref"] == f"row {r['_row']}" for r in rejected)
    # each is one field where the header has 29 (the whole line quoted): rejected by the
    # parser as ragged_row, its line in the reason (issue 17; before, the line landed in the
    # first cell and the row was quarantined for its empty key)
    assert {r["reason_code"] for r in rejected} == {"ragged_row"}
    assert all(r["catalogo_id"] is None for r in rejected)
    first = rejected[0]
    assert first["reason"].startswith(f"line {first['_row']} has 1 field, the header 29: ")
    ratio = next(r for r in outcome.checks if r.name == "rejected_ratio")
    assert ratio.passed  # max_rejected_ratio 1.0 here; with the default 0 it would block


def test_the_default_ratio_blocks_that_file(runtime):
    path = FIXTURES / "malformed" / "datosgobar_metadatos_energia_mojibake_quoted_rows.csv"
    config = config_for(
        path, source={"encoding": "utf-8-sig"}, normalize={"primary_keys": ["serie_id"]}
    )
    config = config.model_copy(
        update={"checks": config.checks.model_copy(update={"max_rejected_ratio": 0.0})}
    )
    run_until_normalized(runtime, config)
    with pytest.raises(stages.ChecksFailedError, match="53 of 77 rows rejected"):
        stages.run_publish(runtime, config, "all")
    assert read_current(runtime.store, "MALFORMED") == (None, None)


def test_a_truncated_feed_is_a_clear_error(runtime):
    path = FIXTURES / "malformed" / "reuters_rss_truncated_invalid.xml"
    config = config_for(path, source={"format": "rss"}, normalize={"primary_keys": ["id"]})
    stages.run_raw(runtime, config, "all")
    with pytest.raises(
        ParseError,
        match=r"dataset MALFORMED: .*reuters_rss_truncated_invalid.xml: feed is not well-formed XML at line 19",
    ):
        stages.run_parse(runtime, config, "all")


def test_duplicate_headers_are_refused_with_their_columns(runtime):
    path = FIXTURES / "malformed" / "indec_sh_VBP_VAB_12_24_two_row_dup_header.csv"
    config = config_for(path, source={"encoding": "utf-8-sig", "header_row": 2})
    stages.run_raw(runtime, config, "all")
    with pytest.raises(ParseError) as caught:
        stages.run_parse(runtime, config, "all")
    message = str(caught.value)
    assert "header row 2 repeats column names: '1º trimestre' in columns B, H, N" in message
    assert "allow_duplicate_headers" in message


def test_merged_header_cells_in_a_legacy_workbook(runtime):
    path = FIXTURES / "malformed" / "indec_sh_VBP_VAB_09_25_merged_headers.xls"
    config = config_for(path, source={"format": "xls", "sheet": "Cuadro 3", "header_row": 5})
    stages.run_raw(runtime, config, "all")
    with pytest.raises(ParseError, match="header row 5 repeats column names: '1º trimestre'"):
        stages.run_parse(runtime, config, "all")


def test_a_renamed_header_fails_at_parse_time_and_keeps_the_published_data(runtime, tmp_path):
    csv_path = tmp_path / "rates.csv"
    csv_path.write_text("id,value\n1,10\n2,11\n")
    config = config_for(
        csv_path, normalize={"primary_keys": ["id"], "schema": {"value": "float64"}}
    )
    run_until_normalized(runtime, config)
    before = stages.run_publish(runtime, config, "all").version
    csv_path.write_text("id,valor\n1,10\n2,12\n")
    stages.run_raw(runtime, config, "all")
    with pytest.raises(
        ParseError,
        match=r"the source has no column 'value' \(from normalize.schema\); it has: 'id', 'valor'. Was a header renamed\?",
    ):
        stages.run_parse(runtime, config, "all")
    assert read_current(runtime.store, "MALFORMED")[0].version == before


def test_a_new_source_column_is_reported_at_parse_time(runtime, tmp_path):
    csv_path = tmp_path / "rates.csv"
    csv_path.write_text("id,value\n1,10\n")
    config = config_for(csv_path)
    run_until_normalized(runtime, config)
    stages.run_publish(runtime, config, "all")
    csv_path.write_text("id,value,extra\n1,10,x\n")
    stages.run_raw(runtime, config, "all")
    parsed, _ = stages.run_parse(runtime, config, "all")
    assert stages.source_drift(runtime, config, parsed) == {"added": ["extra"], "missing": []}


def test_a_column_turned_text_is_quarantined_naming_the_column(runtime, tmp_path):
    csv_path = tmp_path / "rates.csv"
    csv_path.write_text("id,value\n1,10\n2,11\n")
    config = config_for(
        csv_path,
        normalize={"primary_keys": ["id"], "schema": {"value": "float64"}},
        checks={"max_rejected_ratio": 0.0},
    )
    run_until_normalized(runtime, config)
    stages.run_publish(runtime, config, "all")
    csv_path.write_text("id,value\n1,ten\n2,eleven\n")
    outcome = run_until_normalized(runtime, config)
    assert outcome.rejected.column("reason").to_pylist() == [
        "column 'value': cannot read 'ten' as float64",
        "column 'value': cannot read 'eleven' as float64",
    ]
    with pytest.raises(stages.ChecksFailedError, match="rejected_ratio: 2 of 2 rows rejected"):
        stages.run_publish(runtime, config, "all")
    assert read_current(runtime.store, "MALFORMED")[0].counts["added"] == 2  # untouched


def test_quarantine_replay_after_the_contract_is_fixed(runtime, tmp_path, capsys, monkeypatch):
    csv_path = tmp_path / "fx.csv"
    # (two-digit years: no format is inferred for them, the column is read as ISO 8601)
    csv_path.write_text("id,day,value\n1,2024-01-02,10\n2,03/01/24,11\n3,04/01/24,12\n")
    configs = tmp_path / "configs"
    configs.mkdir()
    yaml = (
        "dataset_id: FX\nsource: {{kind: file, path: {path}, format: csv}}\n"
        "normalize: {{primary_keys: [id], time_column: day, schema: {{id: int64, value: float64}}{formats}}}\n"
        "checks: {{max_rejected_ratio: 0.7}}\n"
    )
    (configs / "fx.yaml").write_text(yaml.format(path=csv_path, formats=""))
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    from ingest_assets.contract import load_config_file

    config = load_config_file(configs / "fx.yaml")
    run_until_normalized(runtime, config, "2024-01-05")
    assert stages.run_publish(runtime, config, "2024-01-05").rows_added == 1

    assert main(["quarantine", "FX"]) == 0
    out = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert [(r["partition"], r["_row"], r["reason_code"], r["day"]) for r in rows] == [
        ("2024-01-05", "3", "type_error", "03/01/24"),
        ("2024-01-05", "4", "type_error", "04/01/24"),
    ]
    assert "set normalize.formats.day" in rows[0]["reason"]
    assert "2 rejected row(s) in 1 partition(s)" in out.err

    # the fix: tell normalize how these dates are written, then re-run the partition
    # (the ISO date in row 2 no longer parses with that format: it moves to quarantine)
    (configs / "fx.yaml").write_text(
        yaml.format(path=csv_path, formats=", formats: {day: '%d/%m/%y'}")
    )
    config = load_config_file(configs / "fx.yaml")
    run_until_normalized(runtime, config, "2024-01-05")
    result = stages.run_publish(runtime, config, "2024-01-05")
    assert (result.rows_added, result.rows_revised) == (2, 0)
    assert main(["quarantine", "FX", "--partition", "2024-01-05", "--format", "jsonl"]) == 0
    assert '"day": "2024-01-02"' in capsys.readouterr().out  # only the row that now fails
    csv_path.write_text("id,day,value\n1,02/01/24,10\n2,03/01/24,11\n3,04/01/24,12\n")
    run_until_normalized(runtime, config, "2024-01-05")
    assert (
        stages.run_publish(runtime, config, "2024-01-05").rows_added == 0
    )  # id 1 already published
    assert main(["quarantine", "FX", "--partition", "2024-01-05"]) == 0
    assert "no rejected rows in partition 2024-01-05" in capsys.readouterr().err


def test_numbers_that_do_not_fit_their_type_are_quarantined_not_rounded(runtime, tmp_path):
    """An integer past int64, or past 2**53 (where a float would round it), and a decimal with
    more digits than its precision: each is kept exactly or rejected with its reason, never
    a failed step or a silently changed value."""
    csv_path = tmp_path / "sizes.csv"
    csv_path.write_text(
        "id,n,price\n1,5,10.5\n2,99999999999999999999,1.25\n3,9007199254740993,1000\n"
        "4,1.0,-999.99\n5,1e3,999.995\n"
    )
    schema = {"n": "int64", "price": "decimal(5,2)"}
    config = config_for(csv_path, normalize={"primary_keys": ["id"], "schema": schema})
    outcome = run_until_normalized(runtime, config)
    rows = {r["id"]: (r["n"], r["price"]) for r in outcome.table.to_pylist()}
    assert {i: (n, str(p)) for i, (n, p) in rows.items()} == {
        "1": (5, "10.50"),
        "4": (1, "-999.99"),
    }
    assert outcome.rejected.column("reason").to_pylist() == [
        "column 'n': cannot read '99999999999999999999' as int64",
        "column 'price': cannot read '1000' as decimal(5,2)",
        "column 'price': cannot read '999.995' as decimal(5,2)",
    ]
    csv_path.write_text("id,n,price\n3,9007199254740993,1\n")
    exact = run_until_normalized(runtime, config).table
    assert exact["n"].to_pylist() == [9007199254740993]
