"""Loading dataset YAML files: syntax errors, file-level problems, and ${ENV} secrets."""

from pathlib import Path

import pytest

from ingest_assets.contract import (
    MissingEnvError,
    Secrets,
    config_files,
    load_config_file,
    load_configs,
)
from ingest_resources.errors import ConfigError

from .examples import WHOLE_CONTRACT, minimal


def problems_of(paths: list[Path]) -> list:
    with pytest.raises(ConfigError) as caught:
        load_configs(paths)
    return caught.value.problems


# --- YAML syntax and shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("dataset_id: X\nsource:\n  kind: file\n   path: a.csv\n", 4, id="indentation"),
        pytest.param("dataset_id: X\nsource: {kind: file, path: a.csv\n", 3, id="unclosed-flow"),
        pytest.param("dataset_id: X\n\tsource: 1\n", 2, id="tab"),
        pytest.param("dataset_id: X\ndescription: 'open\n", 3, id="unclosed-quote"),
    ],
)
def test_invalid_yaml_reports_file_and_line(write_yaml, text: str, line: int) -> None:
    path = write_yaml("broken.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    (problem,) = caught.value.problems
    assert problem.file == str(path)
    assert problem.message.startswith(f"invalid YAML: line {line}, column ")
    assert str(problem).startswith(f"{path}: invalid YAML: line {line}")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- dataset_id: X\n- dataset_id: Y\n", id="list"),
        pytest.param("just a string\n", id="scalar"),
        pytest.param("", id="empty-file"),
        pytest.param("# only a comment\n", id="only-comment"),
    ],
)
def test_top_level_must_be_a_mapping(write_yaml, text: str) -> None:
    path = write_yaml("shape.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    (problem,) = caught.value.problems
    assert problem.file == str(path)
    assert "expected a mapping" in problem.message


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config_file(missing)
    (problem,) = caught.value.problems
    assert problem.file == str(missing)
    assert "cannot read file" in problem.message


# --- several files ---------------------------------------------------------------------------


def test_duplicate_dataset_id_names_both_files(write_yaml) -> None:
    first = write_yaml("first.yaml", minimal("SAME_ID"))
    second = write_yaml("second.yaml", minimal("SAME_ID"))
    (problem,) = problems_of([first, second])
    assert problem.field == "dataset_id"
    assert "'SAME_ID'" in problem.message
    line = str(problem)
    assert str(first) in line
    assert str(second) in line


def test_load_configs_collects_problems_of_every_file(write_yaml) -> None:
    good = write_yaml("a_good.yaml", minimal("GOOD"))
    syntax = write_yaml("b_syntax.yaml", "dataset_id: X\nsource: {kind: file\n")
    contract = write_yaml(
        "c_contract.yaml",
        minimal("BAD").replace("format: csv", "format: xml") + "colour: blue\n",
    )
    duplicate = write_yaml("d_duplicate.yaml", minimal("GOOD"))
    problems = problems_of([good, syntax, contract, duplicate])
    found = {(Path(p.file).name, p.field) for p in problems}
    assert found == {
        ("b_syntax.yaml", ""),
        ("c_contract.yaml", "source.format"),
        ("c_contract.yaml", "colour"),
        ("d_duplicate.yaml", "dataset_id"),
    }
    # ConfigError's text is one line per problem
    assert str(ConfigError(problems)).count("\n") == len(problems) - 1


def test_load_configs_returns_configs_in_order(write_yaml) -> None:
    paths = [write_yaml(f"{name}.yaml", minimal(name)) for name in ("B_ONE", "A_TWO")]
    assert [c.dataset_id for c in load_configs(paths)] == ["B_ONE", "A_TWO"]


def test_empty_config_dir(tmp_path: Path) -> None:
    assert config_files(tmp_path) == []
    assert load_configs(config_files(tmp_path)) == []


def test_config_files_picks_yaml_files_only(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "README.md", "notes.txt", "c.yaml.bak"):
        (tmp_path / name).write_text(minimal(), encoding="utf-8")
    (tmp_path / "sub.yaml").mkdir()
    assert [p.name for p in config_files(tmp_path)] == ["a.yml", "b.yaml"]


def test_missing_config_dir(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir"
    with pytest.raises(ConfigError) as caught:
        config_files(missing)
    (problem,) = caught.value.problems
    assert problem.file == str(missing)
    assert "does not exist" in problem.message


# --- secrets ---------------------------------------------------------------------------------


def test_placeholders_are_kept_at_load_time(write_yaml) -> None:
    config = load_config_file(write_yaml("whole.yaml", WHOLE_CONTRACT))
    assert config.source.headers == {"Authorization": "Bearer ${API_TOKEN}"}


def test_expand_from_given_environ() -> None:
    secrets = Secrets({"API_TOKEN": "s3cr3t-token", "HOST": "api.example.com"})
    assert (
        secrets.expand("Bearer ${API_TOKEN}", "DS", "source.headers.Authorization")
        == "Bearer s3cr3t-token"
    )
    assert secrets.expand("https://${HOST}/v1?t=${API_TOKEN}", "DS", "source.url") == (
        "https://api.example.com/v1?t=s3cr3t-token"
    )
    assert secrets.expand("no placeholder, $HOME or {X}", "DS", "source.url") == (
        "no placeholder, $HOME or {X}"
    )


def test_expand_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "from-env")
    assert Secrets().expand("${API_TOKEN}", "DS", "source.url") == "from-env"


def test_missing_variable_names_it_the_dataset_and_the_field() -> None:
    secrets = Secrets({"OTHER": "x"})
    with pytest.raises(MissingEnvError) as caught:
        secrets.expand("Bearer ${API_TOKEN}", "BCRA_TC_OFICIAL", "source.headers.Authorization")
    error = caught.value
    assert isinstance(error, KeyError)
    assert error.name == "API_TOKEN"
    message = str(error)
    assert "API_TOKEN" in message
    assert "BCRA_TC_OFICIAL" in message
    assert "source.headers.Authorization" in message
    assert "not set" in message


def test_expand_mapping_reports_the_key_in_the_field_path() -> None:
    secrets = Secrets({"API_TOKEN": "tok"})
    headers = {"Authorization": "Bearer ${API_TOKEN}", "Accept": "text/csv"}
    assert secrets.expand_mapping(headers, "DS", "source.headers") == {
        "Authorization": "Bearer tok",
        "Accept": "text/csv",
    }
    with pytest.raises(MissingEnvError) as caught:
        Secrets({}).expand_mapping({"X-Key": "${API_KEY}"}, "DS", "source.headers")
    assert "source.headers.X-Key" in str(caught.value)
    assert "API_KEY" in str(caught.value)


def test_mask_hides_expanded_values() -> None:
    secrets = Secrets({"API_TOKEN": "s3cr3t-token", "SHORT": "s3cr3t", "EMPTY": ""})
    assert secrets.mask("Bearer s3cr3t-token") == "Bearer s3cr3t-token"  # nothing expanded yet
    secrets.expand("Bearer ${API_TOKEN}", "DS", "source.headers.Authorization")
    secrets.expand("${SHORT}${EMPTY}", "DS", "source.params.key")
    text = "GET https://x/?key=s3cr3t failed: 401 for 'Bearer s3cr3t-token'"
    masked = secrets.mask(text)
    assert "s3cr3t" not in masked
    assert masked == "GET https://x/?key=*** failed: 401 for 'Bearer ***'"
    # an empty value is not a secret: masking must not mangle the text
    assert secrets.mask("plain text") == "plain text"


def test_a_key_written_twice_is_refused(tmp_path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(
        "dataset_id: X\nsource: {kind: file, path: a.csv, format: csv}\n"
        "normalize: {primary_keys: [id]}\nsource: {kind: http, url: 'https://x', format: csv}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert (
        str(caught.value)
        == f"{path}: invalid YAML: line 4, column 1: key 'source' appears twice in one mapping"
    )


def test_a_value_refused_by_every_union_member_gives_one_line(tmp_path) -> None:
    path = tmp_path / "union.yaml"
    path.write_text(
        "dataset_id: X\nsource: {kind: file, path: a.csv, format: csv}\n"
        "normalize: {primary_keys: [id]}\npartitions: {kind: daily, start: yesterday}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    [problem] = caught.value.problems
    assert problem.field == "partitions.start"
    assert "valid date" in problem.message and "; or " in problem.message
