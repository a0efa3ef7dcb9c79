"""Hostile dataset configs (issue 16): YAML bombs, oversized and deeply nested files, values
Python cannot read, huge values quoted in messages; one bad file beside good ones; secrets in
every form they take in a message.

A bomb runs in a child process under an address-space and a time limit (tests/bounded.py), so a
regression fails the test instead of taking the machine."""

import base64
import json
import logging
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest
import yaml

from ingest_assets.cli import main
from ingest_assets.contract import Secrets, load_config_dir, load_config_file
from ingest_assets.contract.problems import MAX_PROBLEMS
from ingest_assets.contract.secrets import secret_forms
from ingest_assets.contract.yaml_budget import MAX_CONFIG_BYTES
from ingest_assets.sources.fetch import fetch
from ingest_resources.errors import ConfigError
from tests.bounded import python_bounded, run_bounded

REPO = Path(__file__).resolve().parents[1]
GOOD = (REPO / "dataset_configs" / "reddit_homelab_feed.yaml").read_text()
HEAD = (
    "dataset_id: HOSTILE\nsource: {kind: file, path: x.csv, format: csv}\n"
    "normalize: {primary_keys: [id]}\n"
)
LEAF = "lol"


def levels(depth: int, width: int, indent: str) -> str:
    """`l0: &a0 [lol, ...]`, `l1: &a1 [*a0, ...]`, ...: each level `width` times the last."""
    lines = [f"{indent}l0: &a0 [{', '.join([LEAF] * width)}]"]
    for level in range(1, depth):
        lines.append(f"{indent}l{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def nested(depth: int, width: int) -> str:
    """One flow list that anchors its own levels: `&a2 [&a1 [&a0 [lol, ...], *a0, ...], *a1]`."""
    expr = f"&a0 [{', '.join([LEAF] * width)}]"
    for level in range(1, depth):
        expr = f"&a{level} [{expr}, {', '.join([f'*a{level - 1}'] * (width - 1))}]"
    return expr


def mapping_levels(depth: int, width: int) -> str:
    """The same bomb made of mappings: `&m1 {k0: *m0, k1: *m0, ...}`."""
    keys = ", ".join(f"k{i}: {LEAF}" for i in range(width))
    lines = [f"    m0: &m0 {{{keys}}}"]
    for level in range(1, depth):
        keys = ", ".join(f"k{i}: *m{level - 1}" for i in range(width))
        lines.append(f"    m{level}: &m{level} {{{keys}}}")
    return "\n".join(lines) + "\n"


def merge_levels(depth: int) -> str:
    """Merge keys (`<<`) repeating whole mappings into lists of them."""
    lines = ["    m0: &m0 {a: lol, b: lol, c: lol}"]
    for level in range(1, depth):
        items = ", ".join([f"{{<<: *m{level - 1}, x: 1}}"] + [f"*m{level - 1}"] * 8)
        lines.append(f"    m{level}: &m{level} {{items: [{items}]}}")
    return "\n".join(lines) + "\n"


CUSTOM_PARSER = '  plugin: "json:loads"\n'  # importable, so `validate` takes any options
BOMBS = {
    # the review's attack: free-form options of a custom parser, accepted by validate before
    "options": HEAD + "parse:\n" + CUSTOM_PARSER + "  options:\n" + levels(9, 9, "    "),
    "options-wide": HEAD + "parse:\n" + CUSTOM_PARSER + "  options:\n" + levels(5, 20, "    "),
    "options-mappings": HEAD + "parse:\n" + CUSTOM_PARSER + "  options:\n" + mapping_levels(9, 9),
    "options-merge-keys": HEAD + "parse:\n" + CUSTOM_PARSER + "  options:\n" + merge_levels(9),
    "table-na_values": HEAD
    + f"parse:\n  plugin: table\n  options:\n    na_values: {nested(9, 9)}\n",
    "primary_keys-list": HEAD.replace("[id]", nested(9, 9)),
    "metadata": HEAD + f"transform:\n  metadata: {{unit: {nested(8, 10)}}}\n",
    "series_map-list": HEAD + f"parse_config:\n  series_map: {nested(9, 9)}\n",
}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# `ingest validate`, from this worktree's code (the venv's `ingest` script may be another's)
VALIDATE = [sys.executable, "-m", "ingest_assets.cli", "validate"]
VALIDATE_MB = 256  # the address space `ingest validate` runs in: a bomb would need gigabytes


def rss_mb() -> float:
    """This process's resident memory: a child forked from it starts with these pages mapped,
    so its peak RSS (`bounded.Outcome.peak_rss_mb`, from wait4) is never below them."""
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
        / 1024
    )


def assert_peak_below(outcome, limit_mb: float, inherited_mb: float) -> None:
    """The child's peak RSS under `limit_mb`, or under what it inherited from this process:
    its RSS when the child was forked (`inherited_mb`, read just before) or now, whichever is
    larger (this process's RSS moves by a few MB between the two), with 40 MB to spare."""
    inherited = max(inherited_mb, rss_mb()) + 40
    assert outcome.peak_rss_mb < max(limit_mb, inherited), (outcome.peak_rss_mb, inherited)


def env_for(config_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "INGEST_CONFIG_DIR": str(config_dir),
        "INGEST_PROJECT_ROOT": str(REPO),
        "INGEST_STORE_ROOT": str(tmp_path / "store"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }


# --- YAML within a budget ---------------------------------------------------------------------


def expanded_values(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values `node` holds once every alias is written out (composed nodes share what
    an alias repeats: counted once each, memoized)."""
    if id(node) not in sizes:
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        sizes[id(node)] = 1 + sum(expanded_values(child, sizes) for child in children)
    return sizes[id(node)]


def test_the_bombs_are_small_and_expand_to_millions() -> None:
    """What the tests below refuse: files under 1 kB that expand to millions of values."""
    for name, text in BOMBS.items():
        assert len(text.encode()) < 1_000, name
        assert expanded_values(yaml.compose(text, Loader=yaml.SafeLoader), {}) > 3_000_000, name


def test_validate_refuses_every_yaml_bomb_quickly(tmp_path: Path) -> None:
    """One `ingest validate` of a folder of bombs (a child each would cost a second each)."""
    configs = tmp_path / "configs"
    for shape, text in BOMBS.items():
        write(configs, f"{shape}.yaml", text)
    inherited = rss_mb()
    outcome = run_bounded(
        VALIDATE,
        memory_mb=VALIDATE_MB,
        timeout_s=30,
        env=env_for(configs, tmp_path),
    )
    assert outcome.returncode == 1, outcome.output[-2000:]
    lines = outcome.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == sorted(
        f"{configs / shape}.yaml" for shape in BOMBS
    )
    for line in lines:
        assert ": invalid YAML: line " in line
        assert "aliases repeat more than 100,000 values" in line
        assert len(line) < len(str(configs)) + 250
    assert outcome.seconds < 10  # an interpreter start and imports; the refusal itself below
    assert_peak_below(outcome, 300, inherited)


def test_each_bomb_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    for shape, text in BOMBS.items():
        write(tmp_path / "bombs", f"{shape}.yaml", text)
    code = textwrap.dedent(f"""
        import json, time
        from pathlib import Path
        from ingest_resources.errors import ConfigError
        from ingest_assets.contract import load_config_file
        seconds = {{}}
        for path in sorted(Path({str(tmp_path / "bombs")!r}).iterdir()):
            started = time.perf_counter()
            try:
                load_config_file(path)
            except ConfigError as exc:
                seconds[path.stem] = (time.perf_counter() - started, str(exc))
        print(json.dumps(seconds))
    """)
    outcome = python_bounded(code, memory_mb=VALIDATE_MB, timeout_s=30)
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    refused = json.loads(outcome.stdout)
    assert set(refused) == set(BOMBS)
    for shape, (seconds, message) in refused.items():
        assert seconds < 0.2, (shape, seconds)
        assert "aliases repeat" in message and f"{shape}.yaml" in message


def test_the_code_location_loads_beside_bombs_and_names_each(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    write(configs, "good.yaml", GOOD)
    for shape, text in BOMBS.items():
        write(configs, f"{shape}.yaml", text.replace("HOSTILE", shape.replace("-", "_").upper()))
    write(configs, "deep.yaml", HEAD + "description: " + "[" * 300_000 + "]" * 300_000 + "\n")
    code = textwrap.dedent("""
        import json
        from ingest_assets.definitions import defs
        repository = defs.get_repository_def()
        print(json.dumps({
            "assets": sorted(k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()),
            "sensors": sorted(s.name for s in repository.sensor_defs),
        }))
    """)
    inherited = rss_mb()
    outcome = python_bounded(code, memory_mb=1024, timeout_s=60, env=env_for(configs, tmp_path))
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    loaded = json.loads(outcome.stdout.splitlines()[-1])
    assert "REDDIT_HOMELAB_FEED/published" in loaded["assets"]
    assert "ingest/config_errors" in loaded["assets"]
    assert "ingest_config_errors" in loaded["sensors"]
    for shape in BOMBS:  # each logged, naming its file
        assert f"{configs / shape}.yaml: invalid YAML: line " in outcome.stderr
    assert f"{configs / 'deep.yaml'}: invalid YAML: line 4" in outcome.stderr
    assert "nested deeper than 64" in outcome.stderr
    assert outcome.seconds < 30
    assert_peak_below(outcome, 600, inherited)


OTHER_HOSTILE = {
    "deep": (  # 300,000 `[`: libyaml's composer recursed in C and crashed the process
        HEAD + "description: " + "[" * 300_000 + "]" * 300_000 + "\n",
        "line 4, column 77: nested deeper than 64 mappings and lists",
    ),
    "digits": (HEAD + "lag_days: " + "1" * 5_000 + "\n", "an integer of 5,000 characters"),
    "base60": (  # 1:11:11:... is read in quadratic time (27 s for this one)
        HEAD + "lag_days: 1" + ":11" * 300_000 + "\n",
        "an integer of 900,001 characters",
    ),
    "recursive": (
        HEAD.replace("[id]", "&a [id, *a]"),
        "alias *a is inside the node it names (a recursive structure)",
    ),
}


def test_validate_refuses_other_hostile_yaml_and_an_oversized_file(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    for name, (text, _) in OTHER_HOSTILE.items():
        write(configs, f"{name}.yaml", text)
    big = write(configs, "big.yaml", HEAD + "description: " + "x" * (5 << 20))
    inherited = rss_mb()
    outcome = run_bounded(
        VALIDATE, memory_mb=VALIDATE_MB, timeout_s=30, env=env_for(configs, tmp_path)
    )
    assert outcome.returncode == 1, outcome.output[-2000:]
    lines = dict(line.split(": ", 1) for line in outcome.stdout.splitlines())
    assert lines.pop(str(big)) == (
        f"file is {big.stat().st_size:,} bytes; a dataset config may be at most "
        f"{MAX_CONFIG_BYTES:,} bytes (1 MB)"
    )
    for name, (_, expected) in OTHER_HOSTILE.items():
        message = lines.pop(f"{configs / name}.yaml")
        assert message.startswith("invalid YAML: line ") and expected in message
    assert not lines
    assert outcome.seconds < 10
    assert_peak_below(outcome, 300, inherited)  # the 5 MB file never read whole


def test_a_file_just_under_the_size_limit_loads(tmp_path: Path) -> None:
    room = MAX_CONFIG_BYTES - len(HEAD) - len("description: \n") - 10
    config = load_config_file(write(tmp_path, "big.yaml", HEAD + f"description: {'x' * room}\n"))
    assert len(config.description) == room


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = HEAD + textwrap.dedent("""\
        parse:
          plugin: "json:loads"
          options:
            defaults: &defaults {sheet: Data, header_row: 1}
            first: *defaults
            second: {<<: *defaults, header_row: 2}
            codes: &codes [A, B, C]
            again: [*codes, *codes]
    """)
    config = load_config_file(write(tmp_path, "anchors.yaml", text))
    options = config.parse_options
    assert options["first"] == {"sheet": "Data", "header_row": 1}
    assert options["second"] == {"sheet": "Data", "header_row": 2}
    assert options["again"] == [["A", "B", "C"], ["A", "B", "C"]]


def test_an_impossible_date_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "date.yaml", HEAD + "partitions: {kind: daily, start: 2026-02-30}\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == (
        f"{path}: invalid YAML: line 4, column 34: cannot read '2026-02-30': "
        "day is out of range for month"
    )


def test_a_file_that_is_not_utf8_is_a_problem_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(HEAD.encode() + "description: café\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}: not UTF-8 text: byte 0xe9 at offset {len(HEAD) + 16}"


# --- short messages ---------------------------------------------------------------------------


def test_a_huge_value_is_quoted_short(tmp_path: Path) -> None:
    text = HEAD.replace("[id]", "[[" + "x" * 200_000 + "]]")
    with pytest.raises(ConfigError) as caught:
        load_config_file(write(tmp_path, "long.yaml", text))
    (problem,) = caught.value.problems
    assert problem.field == "normalize.primary_keys[0]"
    assert problem.message.startswith("Input should be a valid string (got ['xxxx")
    assert len(str(problem)) < len(str(tmp_path)) + 200


def test_a_huge_value_refused_by_a_contract_check_is_cut(tmp_path: Path) -> None:
    """The table parser's option check quotes the value it refuses: cut to MESSAGE_CHARS."""
    values = ", ".join(str(i) for i in range(20_000))
    text = HEAD + f"parse:\n  plugin: table\n  options:\n    na_values: [{values}]\n"
    with pytest.raises(ConfigError) as caught:
        load_config_file(write(tmp_path, "na.yaml", text))
    (problem,) = caught.value.problems
    assert problem.field == "parse.options.na_values"
    assert problem.message.startswith("expected a list of texts read as empty")
    assert problem.message.endswith("more characters)")
    assert len(problem.message) < 500


def test_a_list_of_many_wrong_items_lists_a_few(tmp_path: Path) -> None:
    text = HEAD.replace("[id]", "[" + ", ".join(["[x]"] * 5_000) + "]")
    with pytest.raises(ConfigError) as caught:
        load_config_file(write(tmp_path, "many.yaml", text))
    problems = caught.value.problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].message == "and 4,980 more field(s) with problems, not listed"


# --- one bad file never stops the others ------------------------------------------------------

BROKEN = "dataset_id: BROKEN\nsource: {kind: file, path: x.csv, format: xml}\nlag_days: -1\n"


def test_the_config_dir_gives_the_valid_configs_and_the_problems(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    write(configs, "good.yaml", GOOD)
    broken = write(configs, "broken.yaml", BROKEN)
    syntax = write(configs, "syntax.yaml", "dataset_id: SYNTAX\nsource: {kind: file\n")
    loaded = load_config_dir(configs)
    assert [c.dataset_id for c in loaded.configs] == ["REDDIT_HOMELAB_FEED"]
    found = {(Path(p.file).name, p.field, p.dataset_id) for p in loaded.problems}
    assert found == {
        ("broken.yaml", "source.format", "BROKEN"),
        ("broken.yaml", "lag_days", "BROKEN"),
        ("syntax.yaml", "", "SYNTAX"),
    }
    assert loaded.broken_files == [str(broken), str(syntax)]
    # what `ingest run` asks: the good one, the broken one naming its file, an unknown one
    assert loaded.get("REDDIT_HOMELAB_FEED").dataset_id == "REDDIT_HOMELAB_FEED"
    with pytest.raises(ConfigError) as caught:
        loaded.get("BROKEN")
    assert str(caught.value).splitlines() == [
        f"{broken}: lag_days: Input should be greater than or equal to 0 (got -1)",
        f"{broken}: source.format: Input should be 'csv', 'xlsx', 'xls', 'ods', 'json', "
        "'jsonl', 'rss' or 'parquet' (got 'xml')",
    ]
    with pytest.raises(ConfigError, match=r"syntax\.yaml: invalid YAML: line 3"):
        loaded.get("SYNTAX")
    with pytest.raises(LookupError):
        loaded.get("NOPE")


def test_a_dataset_id_declared_twice_loads_neither_file(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    first = write(configs, "a.yaml", GOOD)
    second = write(configs, "b.yaml", GOOD.replace("Newest posts", "A copy"))
    write(configs, "other.yaml", HEAD)
    loaded = load_config_dir(configs)
    assert [c.dataset_id for c in loaded.configs] == ["HOSTILE"]
    assert [str(p) for p in loaded.problems] == [
        f"{first}: dataset_id: 'REDDIT_HOMELAB_FEED' is also defined in {second}; "
        "no file declaring it is loaded",
        f"{second}: dataset_id: 'REDDIT_HOMELAB_FEED' is also defined in {first}; "
        "no file declaring it is loaded",
    ]
    with pytest.raises(ConfigError):
        loaded.get("REDDIT_HOMELAB_FEED")


def test_a_missing_config_dir_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    loaded = load_config_dir(tmp_path / "nowhere")
    assert loaded.configs == []
    assert [p.message for p in loaded.problems] == ["config directory does not exist"]


def test_definitions_load_the_good_dataset_and_show_the_broken_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ingest_assets.definitions import (
        CONFIG_ERRORS_KEY,
        DatasetConfigProblems,
        build_definitions,
    )

    configs = tmp_path / "configs"
    write(configs, "good.yaml", GOOD)
    broken = write(configs, "broken.yaml", BROKEN)
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    with caplog.at_level(logging.ERROR, logger="ingest_assets.definitions"):
        defs = build_definitions()
    repository = defs.get_repository_def()
    keys = {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()}
    assert {"REDDIT_HOMELAB_FEED/raw", "REDDIT_HOMELAB_FEED/published"} <= keys
    assert "ingest/config_errors" in keys
    assert not any(k.startswith("BROKEN/") for k in keys)

    # in the logs: one error a problem, naming the file and the field
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2
    assert f"dataset config not loaded: {broken}: source.format: Input should be" in logged[1]
    assert any(
        f"{broken}: lag_days: Input should be greater than or equal to 0" in m for m in logged
    )

    # in the UI: the asset's description, and a sensor running by default that fails
    errors = defs.get_assets_def(CONFIG_ERRORS_KEY)
    description = errors.specs_by_key[CONFIG_ERRORS_KEY].description
    assert "1 dataset config file(s) not loaded, 2 problem(s)" in description
    assert f"`{broken}`: `source.format`" in description
    sensor = repository.get_sensor_def("ingest_config_errors")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with pytest.raises(DatasetConfigProblems, match=f"{broken}: source.format"):
        sensor(dg.build_sensor_context())
    result = dg.materialize([errors], raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert f"{broken}: lag_days: Input should be greater" in failure.step_failure_data.error.message


def test_definitions_without_problems_add_nothing(tmp_path: Path, monkeypatch) -> None:
    from ingest_assets.definitions import build_definitions

    write(tmp_path / "configs", "good.yaml", GOOD)
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(tmp_path / "configs"))
    repository = build_definitions().get_repository_def()
    assert [s.name for s in repository.sensor_defs] == ["REDDIT_HOMELAB_FEED__source_changed"]
    assert all(
        k.path[0] == "REDDIT_HOMELAB_FEED" for k in repository.asset_graph.get_all_asset_keys()
    )


def test_validate_still_fails_on_a_broken_file_beside_good_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    configs = tmp_path / "configs"
    write(configs, "good.yaml", GOOD)
    broken = write(configs, "broken.yaml", BROKEN)
    monkeypatch.setenv("INGEST_CONFIG_DIR", str(configs))
    assert main(["validate"]) == 1
    assert f"{broken}: source.format: Input should be" in capsys.readouterr().out


# --- secrets: stripped, and masked in every form ----------------------------------------------

TOKEN = "s3cr/t+tok'en é"


def test_a_secret_from_a_file_loses_its_trailing_newline() -> None:
    secrets = Secrets({"TOKEN": "tok-123\n", "SPACED": "  inner space kept \t\r\n"})
    assert secrets.expand("Bearer ${TOKEN}", "DS", "source.headers.Authorization") == (
        "Bearer tok-123"
    )
    assert secrets.expand("${SPACED}", "DS", "source.params.key") == "  inner space kept"


@pytest.mark.parametrize(
    "shown",
    [
        pytest.param(TOKEN, id="as-is"),
        pytest.param(quote(TOKEN), id="quote"),
        pytest.param(quote(TOKEN, safe=""), id="quote-safe-nothing"),
        pytest.param(quote_plus(TOKEN), id="quote_plus"),
        pytest.param(repr(TOKEN)[1:-1], id="str-repr"),
        pytest.param(repr((TOKEN + "\n").encode())[2:-1], id="bytes-repr-with-newline"),
        pytest.param(repr(TOKEN.encode())[2:-1], id="bytes-repr"),
        pytest.param(json.dumps(TOKEN)[1:-1], id="json"),
    ],
)
def test_mask_hides_every_form_of_a_secret(shown: str) -> None:
    secrets = Secrets({"TOKEN": TOKEN + "\n"})
    secrets.expand("${TOKEN}", "DS", "source.url")
    masked = secrets.mask(f"GET https://x/?key={shown} failed")
    assert masked == "GET https://x/?key=*** failed"


def test_mask_hides_the_header_the_http_library_quotes() -> None:
    """What h11 said before the value was stripped: the bytes repr of the whole header."""
    secrets = Secrets({"FX_TOKEN": "tok-abc-123\n"})
    secrets.expand("Bearer ${FX_TOKEN}", "FX", "source.headers.Authorization")
    message = f"Illegal header value {('Bearer tok-abc-123' + chr(10)).encode()!r}"
    assert secrets.mask(message) == "Illegal header value b'Bearer ***'"


def test_mask_hides_a_password_inside_basic_auth() -> None:
    secrets = Secrets({"PASSWORD": "correct-horse-battery"})
    secrets.expand("${PASSWORD}", "DS", "source.url")
    for user in ("a", "ab", "abc", "alice"):  # every alignment in base64's 3-byte groups
        header = "Basic " + base64.b64encode(f"{user}:correct-horse-battery".encode()).decode()
        masked = secrets.mask(header)
        assert "***" in masked and masked != header
        encoded = masked.removeprefix("Basic ").split("***")
        assert all(len(part) <= 4 + len(user) for part in encoded)  # the user, and a seam


def test_masking_forms_of_a_short_or_empty_secret() -> None:
    assert secret_forms("") == set()
    assert secret_forms("abc") == {"abc"}  # no base64 core: it would mask unrelated text
    secrets = Secrets({"EMPTY": "", "SHORT": "k3y"})
    secrets.expand("${EMPTY}${SHORT}", "DS", "source.url")
    assert secrets.mask("plain text") == "plain text"
    assert secrets.mask("key=k3y") == "key=***"


def test_a_fetched_header_carries_the_stripped_secret(httpserver) -> None:
    from ingest_assets.contract import parse_config

    httpserver.expect_request(
        "/data.csv", headers={"Authorization": "Bearer tok-abc-123"}
    ).respond_with_data(b"id,value\n1,2\n")
    config = parse_config(
        {
            "dataset_id": "API_DATA",
            "source": {
                "kind": "http",
                "url": httpserver.url_for("/data.csv"),
                "format": "csv",
                "headers": {"Authorization": "Bearer ${FX_TOKEN}"},
            },
            "normalize": {"primary_keys": ["id"]},
        },
        "api.yaml",
    )
    fetched = fetch(config, Secrets({"FX_TOKEN": "tok-abc-123\n"}))
    assert fetched.content == b"id,value\n1,2\n"
