"""`json_records` on real API responses: UTF-16 with BOM, top-level arrays, nested objects."""

import json

import pyarrow as pa
import pytest

from ingest_assets.parsers import ParseError

MONETARIAS = "json/bcra_v4_monetarias_utf16le.json"
COINGECKO = "json/coingecko_coins_markets.json"
PLACEHOLDER = "json/jsonplaceholder_data.json"
SWAPI = "json/swapi_people_page1.json"
BANXICO = "json/banxico_sie_data.json"

MONETARIAS_FIELDS = [
    "idVariable",
    "descripcion",
    "categoria",
    "tipoSerie",
    "periodicidad",
    "unidadExpresion",
    "moneda",
    "primerFechaInformada",
    "ultFechaInformada",
    "ultValorInformado",
]


@pytest.fixture(scope="module")
def monetarias(parse, fixture_file) -> pa.Table:
    return parse(
        fixture_file(MONETARIAS),
        {"format": "json", "records_path": "results"},
        keys=["idVariable"],
    )


def test_bcra_monetarias_utf16le_bom(monetarias, fixture_file):
    raw = fixture_file(MONETARIAS).read_bytes()
    assert raw[:2] == b"\xff\xfe"  # the file really is UTF-16LE with a BOM
    assert monetarias.num_rows == 1000
    assert monetarias.column_names == ["_row", *MONETARIAS_FIELDS]
    assert monetarias.schema.field("idVariable").type == pa.int64()
    assert monetarias.schema.field("ultValorInformado").type == pa.float64()
    first = monetarias.slice(0, 1).to_pylist()[0]
    assert first == {
        "_row": 1,
        "idVariable": 1,
        "descripcion": "Reservas internacionales",
        "categoria": "Principales Variables",
        "tipoSerie": "Saldos",
        "periodicidad": "D",
        "unidadExpresion": "En millones de USD",
        "moneda": "ME",
        "primerFechaInformada": "1996-01-03",
        "ultFechaInformada": "2026-06-22",
        "ultValorInformado": 47508.0,
    }
    second = monetarias.slice(1, 1).to_pylist()[0]
    assert second["idVariable"] == 4
    assert second["unidadExpresion"] == "Pesos argentinos por dólar estadounidense"
    last = monetarias.slice(999, 1).to_pylist()[0]
    assert (last["_row"], last["idVariable"], last["moneda"]) == (1000, 1021, "MEyML")
    ids = monetarias.column("idVariable").to_pylist()
    assert len(set(ids)) == 1000  # the documented primary key is unique


def test_bcra_monetarias_matches_an_independent_decode(monetarias, fixture_file):
    document = json.loads(fixture_file(MONETARIAS).read_bytes().decode("utf-16"))
    assert document["metadata"]["resultset"] == {"count": 1581, "offset": 0, "limit": 1000}
    expected = [
        {name: record.get(name) for name in MONETARIAS_FIELDS} for record in document["results"]
    ]
    assert monetarias.drop_columns(["_row"]).to_pylist() == expected


def test_records_path_to_an_object_is_a_clear_error(config, run, fixture_file):
    path = fixture_file(MONETARIAS)
    cfg = config(
        {"format": "json", "records_path": "metadata.resultset"},
        keys=["idVariable"],
        dataset_id="BCRA_MONETARIAS",
    )
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert message.startswith(f"dataset BCRA_MONETARIAS: {path}: ")
    assert "'metadata.resultset'" in message
    assert "'count', 'offset', 'limit'" in message


def test_coingecko_top_level_array_with_nested_roi(parse, fixture_file):
    path = fixture_file(COINGECKO)
    table = parse(path, {"format": "json"}, keys=["id"])
    source = json.loads(path.read_bytes())
    assert isinstance(source, list)
    assert table.num_rows == 30
    assert table.column("id").to_pylist() == [coin["id"] for coin in source]
    assert {"roi.times", "roi.currency", "roi.percentage"} <= set(table.column_names)
    rows = {r["id"]: r for r in table.to_pylist()}
    btc, eth = rows["bitcoin"], rows["ethereum"]
    assert (btc["symbol"], btc["current_price"], btc["market_cap_rank"]) == ("btc", 79847.0, 1)
    assert btc["last_updated"] == "2025-03-04T14:45:50.155Z"
    assert btc["max_supply"] == 21000000.0
    assert btc["roi.times"] is None
    assert eth["roi.times"] == 32.61875814692682
    assert eth["roi.currency"] == "btc"
    assert eth["roi.percentage"] == 3261.8758146926825
    assert eth["max_supply"] is None
    assert rows["tether"]["current_price"] == 0.949312  # EUR prices, as saved
    # roi: null 28 times, an object twice (flattened into roi.*)
    with_roi = {coin["id"]: coin["roi"] for coin in source if coin["roi"] is not None}
    assert len(with_roi) == 2
    for coin_id, roi in with_roi.items():
        assert rows[coin_id]["roi.times"] == roi["times"]
        assert rows[coin_id]["roi.currency"] == roi["currency"]
        assert rows[coin_id]["roi.percentage"] == roi["percentage"]
    assert table.column("roi.times").null_count == 28


def test_jsonplaceholder_users_nested_objects_flattened(parse, fixture_file):
    path = fixture_file(PLACEHOLDER)
    table = parse(path, {"format": "json", "records_path": "users"}, keys=["id"])
    assert table.num_rows == 10
    assert table.column_names == [
        "_row",
        "id",
        "name",
        "username",
        "email",
        "address.street",
        "address.suite",
        "address.city",
        "address.zipcode",
        "address.geo.lat",
        "address.geo.lng",
        "phone",
        "website",
        "company.name",
        "company.catchPhrase",
        "company.bs",
    ]
    first = table.slice(0, 1).to_pylist()[0]
    assert first["name"] == "Leanne Graham"
    assert first["address.geo.lat"] == "-37.3159"  # strings in the source stay strings
    assert first["address.geo.lng"] == "81.1496"
    assert first["company.name"] == "Romaguera-Crona"
    users = json.loads(path.read_bytes())["users"]
    got = table.to_pylist()
    for user, row in zip(users, got, strict=True):
        assert row["id"] == user["id"]
        assert row["address.geo.lat"] == user["address"]["geo"]["lat"]
        assert row["address.geo.lng"] == user["address"]["geo"]["lng"]
        assert row["company.bs"] == user["company"]["bs"]


def test_jsonplaceholder_other_resource_keeps_newlines(parse, fixture_file):
    path = fixture_file(PLACEHOLDER)
    table = parse(path, {"format": "json", "records_path": "posts"}, keys=["id"])
    posts = json.loads(path.read_bytes())["posts"]
    assert table.num_rows == 100
    assert table.column_names == ["_row", "userId", "id", "title", "body"]
    assert table.column("body").to_pylist() == [p["body"] for p in posts]
    assert "\n" in table.column("body").to_pylist()[0]


def test_wrong_records_path_names_the_path_and_the_keys_found(config, run, fixture_file):
    path = fixture_file(PLACEHOLDER)
    cfg = config({"format": "json", "records_path": "data.users"}, keys=["id"], dataset_id="JPH")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert message.startswith(f"dataset JPH: {path}: ")
    assert "source.records_path 'data.users'" in message
    assert "no 'data'" in message
    assert "'posts', 'comments', 'albums', 'photos', 'users', 'todos'" in message


def test_missing_records_path_on_an_object_suggests_setting_it(config, run, fixture_file):
    path = fixture_file(PLACEHOLDER)
    cfg = config({"format": "json"}, keys=["id"], dataset_id="JPH")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert "dataset JPH" in message
    assert "set source.records_path" in message
    assert "'users'" in message


def test_lists_are_kept_as_json_text(parse, fixture_file):
    path = fixture_file(SWAPI)
    table = parse(path, {"format": "json", "records_path": "results"}, keys=["url"])
    people = json.loads(path.read_bytes())["results"]
    assert table.num_rows == 10
    luke = table.slice(0, 1).to_pylist()[0]
    assert luke["name"] == "Luke Skywalker"
    assert luke["height"] == "172"
    assert luke["url"] == "http://swapi.co/api/people/1/"
    assert json.loads(luke["films"]) == people[0]["films"]
    assert luke["created"] == "2014-12-09T13:50:51.644000Z"
    masses = table.column("mass").to_pylist()
    assert masses == [p["mass"] for p in people]
    assert "unknown" in masses or "n/a" in table.column("hair_color").to_pylist()


def test_records_path_through_a_list_index(parse, fixture_file):
    table = parse(
        fixture_file(BANXICO),
        {"format": "json", "records_path": "bmx.series.0.datos"},
        keys=["fecha"],
    )
    assert table.to_pylist() == [
        {"_row": 1, "fecha": "02/01/2024", "dato": "17.0297"},
        {"_row": 2, "fecha": "03/01/2024", "dato": "17.0492"},
        {"_row": 3, "fecha": "04/01/2024", "dato": "17.0458"},
    ]


def test_invalid_json_is_a_clear_error(config, run, fixture_file):
    path = fixture_file("malformed/reuters_rss_truncated_invalid.xml")
    cfg = config({"format": "json"}, keys=["id"], dataset_id="NOT_JSON")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    assert str(info.value).startswith(f"dataset NOT_JSON: {path}: invalid JSON")
