"""Plugin resolution ("package.module:function"), what parse_raw adds around any parser (Arrow
output, duplicate-name check, error wrapping) and `parse_config.columns` renaming."""

import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from ingest_assets.contract import parse_config
from ingest_assets.parsers import ParseError, resolve_parser
from ingest_assets.parsers.table import parse_table

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "ingest_parser_test_plugins"

PLUGIN_SOURCE = '''
import pandas as pd
import pyarrow as pa

CALLS = []


def first_two_lines(data, ctx):
    """Each of the first two lines of the input, with its length and the parse options."""
    CALLS.append((ctx.config.dataset_id, ctx.source_name))
    lines = data.decode(ctx.config.source.encoding).splitlines()[: ctx.options.get("lines", 2)]
    return pd.DataFrame(
        {
            "_row": range(1, len(lines) + 1),
            "line": lines,
            "length": [len(line) for line in lines],
            "marker": ctx.options.get("marker"),
        }
    )


def as_arrow(data, ctx):
    return pa.table({"size": pa.array([len(data)], pa.int64()), "head": [data[:4].hex()]})


def explode(data, ctx):
    raise ValueError("custom plugin could not find a table")


def duplicated(data, ctx):
    return pd.DataFrame([[1, 2]], columns=["a", "a"])


def duplicated_arrow(data, ctx):
    return pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])


def mixed_column(data, ctx):
    import datetime as dt

    return pd.DataFrame(
        {"cell": pd.Series([dt.datetime(2002, 3, 1), 2.39885555555556, None], dtype=object)}
    )
'''


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "parsers.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{PACKAGE}.parsers"
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_custom_plugin_is_loaded_and_used(plugin_package, config, run, fixture_file):
    path = fixture_file("csv/bde_catalogo_tc_latin1.csv")
    cfg = config(
        {"format": "csv", "encoding": "latin-1"},
        keys=["line"],
        dataset_id="CUSTOM_PLUGIN",
        parse={"plugin": f"{plugin_package}:first_two_lines", "options": {"marker": "m1"}},
    )
    assert cfg.parser == f"{plugin_package}:first_two_lines"
    table = run(path.read_bytes(), cfg, str(path))
    # a DataFrame from the plugin comes back as Arrow
    assert isinstance(table, pa.Table)
    assert table.column_names == ["_row", "line", "length", "marker"]
    assert table.schema.field("length").type == pa.int64()
    rows = table.to_pylist()
    assert rows[0]["line"].startswith('"Nombre de la serie ","Número secuencial"')
    assert rows[1]["line"].startswith("DTCCBCEUSDEUR.B,573234,")
    assert [r["length"] for r in rows] == [len(r["line"]) for r in rows]
    assert [r["marker"] for r in rows] == ["m1", "m1"]
    calls = sys.modules[plugin_package].CALLS  # what the plugin was given
    assert calls == [("CUSTOM_PLUGIN", str(path))]


def test_resolve_parser_finds_builtins_and_plugins(plugin_package):
    assert resolve_parser("table") is parse_table
    plugin = resolve_parser(f"{plugin_package}:as_arrow")
    assert plugin is sys.modules[plugin_package].as_arrow


def test_custom_plugin_returning_arrow_is_kept(plugin_package, config, run):
    cfg = config(
        {"format": "json"},
        keys=["bytes"],  # the key names the column after parse_config.columns renames it
        parse={"plugin": f"{plugin_package}:as_arrow"},
        parse_config={"columns": {"size": "bytes"}},
    )
    table = run(b"\xff\xfe{}", cfg, "x.json")
    assert table.to_pylist() == [{"bytes": 4, "head": "fffe7b7d"}]


def test_custom_plugin_failure_becomes_a_parse_error(plugin_package, config, run):
    cfg = config(
        {"format": "csv"},
        keys=["x"],
        dataset_id="CUSTOM_FAIL",
        parse={"plugin": f"{plugin_package}:explode"},
    )
    with pytest.raises(ParseError) as info:
        run(b"a,b\n1,2\n", cfg, "s3://bucket/in.csv")
    message = str(info.value)
    assert message.startswith("dataset CUSTOM_FAIL: s3://bucket/in.csv: ")
    assert f"parser '{plugin_package}:explode' failed" in message
    assert "ValueError: custom plugin could not find a table" in message
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("function", ["duplicated_arrow", "duplicated"])
def test_duplicate_column_names_are_refused(plugin_package, config, run, function):
    """Whether the plugin returns Arrow or a DataFrame, duplicate names are a ParseError."""
    cfg = config(
        {"format": "csv"},
        keys=["a"],
        dataset_id="DUP_COLS",
        parse={"plugin": f"{plugin_package}:{function}"},
    )
    with pytest.raises(ParseError) as info:
        run(b"", cfg, "dup.csv")
    assert str(info.value) == "dataset DUP_COLS: dup.csv: duplicate column names ['a']"


def test_mixed_column_falls_back_to_text_whatever_comes_first(plugin_package, config, run):
    """A column holding a datetime and a number is not uniform: it must come out as text
    (`to_arrow`: "typed where the column is uniform, text otherwise"), the number intact."""
    cfg = config(
        {"format": "csv"}, keys=["cell"], parse={"plugin": f"{plugin_package}:mixed_column"}
    )
    table = run(b"", cfg, "mixed")
    assert table.column("cell").to_pylist() == ["2002-03-01T00:00:00", "2.39885555555556", None]


def test_unimportable_plugin_names_the_reference(config, run):
    cfg = config(
        {"format": "csv"}, keys=["x"], parse={"plugin": "no_such_pkg_for_ingest.mod:parse"}
    )
    with pytest.raises(ImportError) as info:
        run(b"a\n1\n", cfg, "x.csv")
    message = str(info.value)
    assert "parse plugin 'no_such_pkg_for_ingest.mod:parse'" in message
    assert "cannot import 'no_such_pkg_for_ingest.mod'" in message


def test_plugin_module_without_the_function(plugin_package, config, run):
    cfg = config({"format": "csv"}, keys=["x"], parse={"plugin": f"{plugin_package}:nope"})
    with pytest.raises(ImportError) as info:
        run(b"a\n1\n", cfg, "x.csv")
    assert f"{plugin_package} has no 'nope'" in str(info.value)


def test_sample_indec_config_renames_columns(run):
    """dataset_configs/indec_ipc.yaml as shipped: Periodo -> obs_time, Indice_IPC -> index_value..."""
    config_file = REPO_ROOT / "dataset_configs" / "indec_ipc.yaml"
    cfg = parse_config(yaml.safe_load(config_file.read_text(encoding="utf-8")), str(config_file))
    source = REPO_ROOT / cfg.source.path
    table = run(source.read_bytes(), cfg, cfg.source.path)
    assert table.column_names == [
        "_row",
        "Codigo",
        "Descripcion",
        "Clasificador",
        "obs_time",
        "index_value",
        "pct_change_month",
        "pct_change_year",
        "Region",
        "_rejected",
    ]
    assert table.num_rows == 13_482
    rows = {r["_row"]: r for r in table.to_pylist()}
    assert rows[13_365] == {
        "_row": 13_365,
        "Codigo": "01",
        "Descripcion": "Alimentos y bebidas no alcohólicas",
        "Clasificador": "Nivel general y divisiones COICOP",
        "obs_time": "202510",
        "index_value": "10266,4083",
        "pct_change_month": "2,4",
        "pct_change_year": "29,9",
        "Region": "GBA",
        "_rejected": None,
    }


def test_rename_of_a_missing_column_names_it(config, run, fixture_file):
    path = fixture_file("malformed/series_dangling_drawing_rel.xlsx")
    cfg = config(
        {"format": "xlsx"},
        keys=["year"],
        dataset_id="EMPALME",
        parse_config={"columns": {"year": "obs_time", "valor": "value"}},
    )
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert message == (
        f"dataset EMPALME: {path}: parse_config.columns names 'valor', "
        "which the source does not have (found: 'year', 'value')"
    )


def test_rename_on_a_real_workbook(parse, fixture_file):
    table = parse(
        fixture_file("malformed/series_dangling_drawing_rel.xlsx"),
        {"format": "xlsx"},
        keys=["obs_time"],
        parse_config={"columns": {"year": "obs_time"}},
    )
    assert table.column_names == ["_row", "obs_time", "value"]
    assert table.slice(0, 1).to_pylist() == [
        {"_row": 2, "obs_time": 1993, "value": 17371.258507813}
    ]


def test_sample_configs_parse_their_sample_data(run):
    """Every shipped sample config parses the sample file it names (smoke + a value each)."""
    expected = {
        "BCRA_MONETARIAS_CATALOG": ("descripcion", "Reservas internacionales", 1000),
        "REDDIT_HOMELAB_FEED": ("id", "t3_157kyrd", 25),
        "INDEC_IPC_DIVISIONES": ("Descripcion", "NIVEL GENERAL", 13_482),
        "BCRA_INFOMONDIA": ("value", "821.664", 13_423),
    }
    seen = {}
    for config_file in sorted((REPO_ROOT / "dataset_configs").glob("*.yaml")):
        cfg = parse_config(
            yaml.safe_load(config_file.read_text(encoding="utf-8")), config_file.name
        )
        table = run((REPO_ROOT / cfg.source.path).read_bytes(), cfg, cfg.source.path)
        column, first_value, rows = expected[cfg.dataset_id]
        seen[cfg.dataset_id] = (column, table.column(column)[0].as_py(), table.num_rows)
        assert seen[cfg.dataset_id] == (column, first_value, rows), cfg.dataset_id
    assert set(seen) == set(expected)
