"""`ingest validate [FILE...]`: exit 0 and "ok", or exit 1 and one line per problem."""

from pathlib import Path

import pytest

from ingest_assets.cli import main

from .examples import BCRA_TC_OFICIAL, WHOLE_CONTRACT, minimal


def validate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str]]:
    code = main(["validate", *(str(a) for a in args)])
    out = capsys.readouterr().out
    return code, out.splitlines()


def with_plugin(dataset_id: str, plugin: str) -> str:
    return minimal(dataset_id) + f"parse: {{plugin: '{plugin}'}}\n"


def test_valid_files(write_yaml, capsys) -> None:
    paths = [
        write_yaml("one.yaml", minimal("ONE")),
        write_yaml("bcra.yaml", BCRA_TC_OFICIAL),
        write_yaml("whole.yml", WHOLE_CONTRACT.replace("BCRA_TC_OFICIAL", "WHOLE")),
    ]
    code, lines = validate(capsys, *paths)
    assert code == 0
    assert lines == ["ok: 3 dataset(s) valid"]


def test_invalid_file_one_line_per_problem(write_yaml, capsys) -> None:
    path = write_yaml(
        "bad.yaml",
        """
        dataset_id: BAD
        colour: blue
        source: {kind: http, format: csv}
        normalize: {primary_keys: [id], timezone: Mars/Olympus}
        checks: {max_rejected_ratio: 1.5}
        """,
    )
    code, lines = validate(capsys, path)
    assert code == 1
    assert len(lines) == 4, lines
    assert not any(line.startswith("ok") for line in lines)
    fields = {"colour", "source.url", "normalize.timezone", "checks.max_rejected_ratio"}
    for line in lines:
        assert line.startswith(f"{path}: "), line
    assert {line.removeprefix(f"{path}: ").split(": ", 1)[0] for line in lines} == fields


def test_problems_of_several_files(write_yaml, capsys) -> None:
    good = write_yaml("good.yaml", minimal("GOOD"))
    syntax = write_yaml("syntax.yaml", "dataset_id: X\nsource: {kind: file\n")
    nested = write_yaml(
        "nested.yaml",
        """
        dataset_id: NESTED
        source: {kind: file, path: a.xlsx, format: xlsx}
        parse: {plugin: series_map}
        parse_config:
          series_map:
            - {internal_series_code: A, date_col: A, value_col: B}
            - {internal_series_code: B, datecol: A, date_col: A, value_col: C}
        """,
    )
    code, lines = validate(capsys, good, syntax, nested)
    assert code == 1
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{syntax}: invalid YAML: line 3")
    assert lines[1].startswith(f"{nested}: parse_config.series_map[1].datecol: unknown key")


def test_duplicate_dataset_id(write_yaml, capsys) -> None:
    first = write_yaml("first.yaml", minimal("DUP"))
    second = write_yaml("second.yaml", minimal("DUP"))
    code, lines = validate(capsys, first, second)
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{second}: dataset_id: ")
    assert str(first) in lines[0]


def test_config_dir_from_environment(tmp_path: Path, monkeypatch, capsys) -> None:
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    (config_dir / "a.yaml").write_text(minimal("A"), encoding="utf-8")
    (config_dir / "b.yml").write_text(BCRA_TC_OFICIAL, encoding="utf-8")
    (config_dir / "notes.md").write_text("not a config", encoding="utf-8")
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(config_dir))
    assert validate(capsys) == (0, ["ok: 2 dataset(s) valid"])

    bad = config_dir / "c.yaml"
    bad.write_text(minimal("C") + "lag_days: -1\n", encoding="utf-8")
    code, lines = validate(capsys)
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{bad}: lag_days: ")


def test_empty_config_dir_from_environment(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(tmp_path))
    assert validate(capsys) == (0, ["ok: 0 dataset(s) valid"])


def test_missing_config_dir_from_environment(tmp_path: Path, monkeypatch, capsys) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(missing))
    assert main(["validate"]) == 1
    captured = capsys.readouterr()
    assert str(missing) in captured.out + captured.err
    assert "does not exist" in captured.out + captured.err


def test_unimportable_parse_plugin(write_yaml, capsys) -> None:
    path = write_yaml("custom.yaml", with_plugin("CUSTOM", "nonexistent_pkg.mod:fn"))
    code, lines = validate(capsys, path)
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: parse.plugin: ")
    assert "nonexistent_pkg" in lines[0]


def test_plugin_module_without_the_function(write_yaml, capsys) -> None:
    path = write_yaml("custom.yaml", with_plugin("CUSTOM", "ingest_assets.parsers.table:nope"))
    code, lines = validate(capsys, path)
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: parse.plugin: ")
    assert "'nope'" in lines[0]


def test_unimportable_normalize_plugin(write_yaml, capsys) -> None:
    text = minimal("CUSTOM").replace(
        "normalize: {primary_keys: [id]}",
        "normalize: {plugin: 'nonexistent_pkg.norm:fn', primary_keys: [id]}",
    )
    path = write_yaml("custom.yaml", text)
    code, lines = validate(capsys, path)
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: normalize.plugin: ")
    assert "nonexistent_pkg" in lines[0]


def test_importable_custom_plugin(write_yaml, capsys) -> None:
    path = write_yaml(
        "custom.yaml", with_plugin("CUSTOM", "ingest_assets.parsers.table:parse_table")
    )
    assert validate(capsys, path) == (0, ["ok: 1 dataset(s) valid"])


def test_plugin_problems_reported_with_other_files_problems(write_yaml, capsys) -> None:
    """One line per problem: a bad plugin in one file is not hidden by a bad key in another."""
    plugin = write_yaml("a_plugin.yaml", with_plugin("PLUGIN", "nonexistent_pkg.mod:fn"))
    contract = write_yaml("b_contract.yaml", minimal("CONTRACT") + "colour: blue\n")
    code, lines = validate(capsys, plugin, contract)
    assert code == 1
    assert sorted(line.split(": ", 2)[1] for line in lines) == ["colour", "parse.plugin"], lines


def test_plugin_problems_of_every_valid_file(write_yaml, capsys) -> None:
    first = write_yaml("a.yaml", with_plugin("A", "nonexistent_pkg.one:fn"))
    second = write_yaml("b.yaml", with_plugin("B", "nonexistent_pkg.two:fn"))
    code, lines = validate(capsys, first, second)
    assert code == 1
    assert [line.split(": ", 2)[:2] for line in lines] == [
        [str(first), "parse.plugin"],
        [str(second), "parse.plugin"],
    ]
