"""The warehouse under hostile input and concurrent runs, on the machine's real PostgreSQL: a
column name over 63 bytes loads again and again; concurrent loads of one dataset (and of
another table of the same new schema) all succeed; a connection killed mid-load, a disk-full
error and a failed commit show PostgreSQL's message and whether the version was loaded.

Each attack runs in a child process under a memory and a time limit (tests/bounded.py). The
children import the code of INGEST_CODE first when it is set: the same attack can be run
against another checkout to compare."""

import hashlib
import json

import psycopg2
import pyarrow as pa
import pytest

from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_resources.errors import WarehouseError
from ingest_resources.postgres_names import POSTGRES_NAME_BYTES, table_column
from ingest_resources.runtime import runtime_from_env
from ingest_resources.warehouse import Warehouse, WarehouseSchemaError, lock_key
from ingest_resources.warehouse.columns import _table_columns
from tests.bounded import Outcome, python_bounded
from tests.test_warehouse import query

PRELUDE = """
import json, os, sys
if os.environ.get("INGEST_CODE"):
    sys.path.insert(0, os.environ["INGEST_CODE"])
spec = json.loads(os.environ["SPEC"])

def failure(exc):
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
"""

# Write each CSV in turn and run the dataset through raw -> published -> warehouse.
PIPELINE_RUNS = (
    PRELUDE
    + """
from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_resources.runtime import runtime_from_env

config = parse_config(spec["config"], "dataset.yaml")
outcomes = []
for text in spec["csvs"]:
    with open(spec["csv"], "w", encoding="utf-8") as out:
        out.write(text)
    runtime = runtime_from_env()
    try:
        for stage in (stages.run_raw, stages.run_parse, stages.run_normalize, stages.run_publish):
            stage(runtime, config, "all")
        result = stages.run_warehouse(runtime, config)
        outcomes.append({"ok": True, "inserted": result.rows_inserted,
                         "updated": result.rows_updated, "versions": result.versions_loaded})
    except Exception as exc:
        outcomes.append(failure(exc))
print(json.dumps(outcomes))
"""
)

# Every load of `spec["loads"]` (a config each) at once, on threads released together.
CONCURRENT_LOADS = (
    PRELUDE
    + """
import threading
from ingest_assets import stages
from ingest_assets.contract import parse_config
from ingest_resources.runtime import runtime_from_env

loads = [parse_config(c, "dataset.yaml") for c in spec["loads"]]
start = threading.Barrier(len(loads))
outcomes = [None] * len(loads)

def load(i):
    runtime = runtime_from_env()
    start.wait()
    try:
        result = stages.run_warehouse(runtime, loads[i])
        outcomes[i] = {"ok": True, "versions": result.versions_loaded,
                       "inserted": result.rows_inserted, "updated": result.rows_updated}
    except Exception as exc:
        outcomes[i] = failure(exc)

threads = [threading.Thread(target=load, args=(i,)) for i in range(len(loads))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(outcomes))
"""
)

# Load KILL's version v1 three times: (1) its backend terminated by another session in the
# middle of the COPY (the batches' generator does it), (2) terminated while it waits for the
# table's lock, held by another session, (3) left alone.
KILLED_LOADS = (
    PRELUDE
    + """
import threading, time
import psycopg2
import pyarrow as pa
from ingest_resources.warehouse import Warehouse

url = spec["url"]
BATCH = 2000

def batch(i):
    codes = [f"k{i}_{j}" for j in range(BATCH)]
    return pa.table({"code": codes, "n": list(range(BATCH)), "op": ["insert"] * BATCH})

def terminate(condition):
    # the backend that meets the condition, waited for up to 5 s
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        for _ in range(100):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid() AND " + condition)
                if cursor.fetchall():
                    return True
            time.sleep(0.05)
        return False
    finally:
        connection.close()

def killed_mid_copy():
    for i in range(spec["batches"]):
        if i == 2:
            assert terminate("query LIKE 'COPY%'")
            time.sleep(0.2)  # the server is gone before the next batch goes
        yield batch(i)

def load(rows):
    try:
        result = Warehouse(url).load("KILL", "v1", "all", rows, ["code"], "public", "killed")
        return {"ok": True, "inserted": result.inserted, "already": result.already_loaded}
    except Exception as exc:
        return failure(exc)

outcomes = {"copy": load(killed_mid_copy())}

holder = psycopg2.connect(url)
with holder.cursor() as cursor:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (spec["table_lock"],))
waiting = {}
thread = threading.Thread(target=lambda: waiting.update(load([batch(0)])))
thread.start()
killed = terminate("wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'")
thread.join()
holder.rollback()
holder.close()
outcomes["lock_wait"] = {**waiting, "killed_while_waiting": killed}

outcomes["again"] = load(batch(i) for i in range(spec["batches"]))
print(json.dumps(outcomes))
"""
)

# Load DISK v1, then try v2 while the table's row trigger raises PostgreSQL's disk-full error
# (SQLSTATE 53100, as a full disk does), then while a deferred trigger on the ledger fails the
# commit, then with neither.
SERVER_ERRORS = (
    PRELUDE
    + """
import psycopg2
import pyarrow as pa
from ingest_resources.warehouse import Warehouse

url = spec["url"]
warehouse = Warehouse(url)

def rows(codes):
    return pa.table({"code": codes, "row_hash": codes, "op": ["insert"] * len(codes)})

def load(version, codes):
    try:
        result = warehouse.load("DISK", version, "all", rows(codes), ["code"], "public", "disk")
        return {"ok": True, "inserted": result.inserted}
    except Exception as exc:
        return failure(exc)

def run(statement):
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(statement)

outcomes = {"v1": load("v1", ["a", "b"])}
run("CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
    "'could not extend file \\"base/1/2\\": No space left on device' USING ERRCODE = "
    "'disk_full'; END $$")
run("CREATE TRIGGER disk_full BEFORE INSERT ON disk FOR EACH ROW EXECUTE FUNCTION full_disk()")
outcomes["disk_full"] = load("v2", ["c", "d"])
run("DROP TRIGGER disk_full ON disk")
run("CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON ingest_loads DEFERRABLE INITIALLY "
    "DEFERRED FOR EACH ROW EXECUTE FUNCTION full_disk()")
outcomes["commit"] = load("v2", ["c", "d"])
run("DROP TRIGGER at_commit ON ingest_loads")
outcomes["again"] = load("v2", ["c", "d"])
print(json.dumps(outcomes))
"""
)


def attack(code: str, spec: dict, memory_mb: int = 2048, timeout_s: float = 90) -> tuple:
    """Run a child under the limits; its JSON line, and the Outcome (time, peak RSS)."""
    outcome: Outcome = python_bounded(
        code, memory_mb=memory_mb, timeout_s=timeout_s, env={"SPEC": json.dumps(spec)}
    )
    assert outcome.returncode == 0, outcome.output[-3000:]
    return json.loads(outcome.stdout.strip().splitlines()[-1]), outcome


def contract(tmp_path, dataset_id: str, schema: str, table: str, csv_name: str) -> dict:
    return {
        "dataset_id": dataset_id,
        "source": {"kind": "file", "path": str(tmp_path / csv_name), "format": "csv"},
        "normalize": {
            "primary_keys": ["series", "day"],
            "time_column": "day",
            "schema": {"value": "float64", "day": "date"},
        },
        "publish": {"postgres": {"table": table, "schema": schema}},
    }


@pytest.fixture
def warehouse_env(pg_database, monkeypatch):
    monkeypatch.setenv("INGEST_POSTGRES_URL", pg_database)
    return pg_database


def columns_of(url: str, schema: str, table: str) -> list[str]:
    found = query(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s ORDER BY ordinal_position",
        schema,
        table,
    )
    return [name for (name,) in found]


# --- 1. names over 63 bytes ---------------------------------------------------------------------

LONG_ASCII = "average_monthly_precipitation_in_millimetres_measured_at_the_station"  # 68
LONG_TWIN = LONG_ASCII.replace("station", "airport")  # the same first 54 bytes
LONG_UTF8 = "precipitación_media_mensual_en_milímetros_medida_en_la_estación"  # 66 bytes


def test_the_rule_for_a_long_column_name():
    assert table_column("value") == "value"
    assert table_column("é" * 31 + "x") == "é" * 31 + "x"  # 63 bytes: kept
    assert table_column(LONG_ASCII) == (
        LONG_ASCII[:54] + "_" + hashlib.sha1(LONG_ASCII.encode()).hexdigest()[:8]
    )
    assert table_column(LONG_TWIN) != table_column(LONG_ASCII)
    assert table_column(LONG_TWIN)[:55] == table_column(LONG_ASCII)[:55]
    utf8 = table_column(LONG_UTF8)  # byte 54 falls inside "í": the cut keeps whole characters
    assert LONG_UTF8.startswith(utf8[:-9]) and len(utf8.encode()) <= POSTGRES_NAME_BYTES
    assert utf8.endswith("_" + hashlib.sha1(LONG_UTF8.encode()).hexdigest()[:8])
    with pytest.raises(WarehouseSchemaError, match=r"dataset X: .*'source'.*reserved"):
        _table_columns(["series", "source"], "dataset X: table t")
    with pytest.raises(WarehouseSchemaError, match=r"cannot be empty or hold a NUL"):
        _table_columns(["se\x00ries"], "dataset X: table t")


def test_a_column_name_over_63_bytes_loads_again_and_again(warehouse_env, tmp_path):
    header = f"series,day,value,{LONG_ASCII},{LONG_TWIN},{LONG_UTF8}"
    spec = {
        "config": contract(tmp_path, "LONG", "public", "long_names", "long.csv"),
        "csv": str(tmp_path / "long.csv"),
        "csvs": [
            f"{header}\nA,2024-01-01,1.5,x,y,z\nB,2024-01-01,2,x,y,z\n",
            f"{header}\nA,2024-01-01,1.5,x2,y,z\nB,2024-01-01,2,x,y,z\nC,2024-01-01,3,x,y,z\n",
        ],
    }
    outcomes, outcome = attack(PIPELINE_RUNS, spec)
    print(f"long names: {outcome.seconds:.2f} s, peak {outcome.peak_rss_mb:.0f} MB: {outcomes}")
    first, second = outcomes
    assert first["ok"] and (first["inserted"], first["updated"]) == (2, 0), first
    assert second["ok"] and (second["inserted"], second["updated"]) == (1, 1), second
    columns = columns_of(warehouse_env, "public", "long_names")
    for name in (LONG_ASCII, LONG_TWIN, LONG_UTF8):
        assert table_column(name) in columns and name not in columns
    assert all(len(c.encode()) <= POSTGRES_NAME_BYTES for c in columns)
    long_column = table_column(LONG_ASCII)
    assert query(
        warehouse_env, f'SELECT series, "{long_column}" FROM long_names ORDER BY series'
    ) == [("A", "x2"), ("B", "x"), ("C", "x")]
    direct = Warehouse(warehouse_env).load(
        "LONG_TOO",
        "v1",
        "all",
        pa.table({"k": ["a"], LONG_UTF8: ["z"], "row_hash": ["h"]}),
        ["k"],
        "public",
        "long_direct",
    )
    assert direct.renamed == {LONG_UTF8: table_column(LONG_UTF8)}  # what the caller is told


# --- 2. concurrent loads ------------------------------------------------------------------------


def publish(config) -> None:
    runtime = runtime_from_env()
    for stage in (stages.run_raw, stages.run_parse, stages.run_normalize, stages.run_publish):
        stage(runtime, config, "all")


def race_csv(path, count: int, shift: int = 0) -> None:
    """`count` rows of 12 series; the first 1000 values moved by `shift` (a revision)."""
    days = [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    lines = [
        f"S{i % 12},{days[i // 12 % len(days)]},{i + (shift if i < 1000 else 0)}"
        for i in range(count)
    ]
    path.write_text("series,day,value\n" + "\n".join(lines) + "\n")


def test_concurrent_loads_of_one_dataset_all_succeed(warehouse_env, tmp_path):
    """Four loads of RACE and two of OTHER (another table of the same schema) at once, in a
    database without the ledger or the schema (every creation races); then four loads of a
    revision of RACE at once (the ledger row races)."""
    specs = {}
    for dataset_id, table, count in (("RACE", "race", 3000), ("OTHER", "other", 500)):
        race_csv(tmp_path / f"{dataset_id}.csv", count)
        specs[dataset_id] = contract(tmp_path, dataset_id, "fresh", table, f"{dataset_id}.csv")
        publish(parse_config(specs[dataset_id], f"{dataset_id}.yaml"))
    loads = [specs["RACE"]] * 4 + [specs["OTHER"]] * 2
    cold, outcome = attack(CONCURRENT_LOADS, {"loads": loads}, memory_mb=3072)
    print(f"concurrent, cold: {outcome.seconds:.2f} s, peak {outcome.peak_rss_mb:.0f} MB: {cold}")
    assert all(o["ok"] for o in cold), cold
    assert sorted(o["inserted"] for o in cold[:4]) == [0, 0, 0, 3000]  # one loaded, 3 found it
    assert sorted(o["inserted"] for o in cold[4:]) == [0, 500]

    race_csv(tmp_path / "RACE.csv", 3000, shift=1)
    publish(parse_config(specs["RACE"], "RACE.yaml"))
    # a server whose transactions default to REPEATABLE READ: a snapshot taken before the
    # lock wait would not see the first load's ledger row
    with psycopg2.connect(warehouse_env) as connection, connection.cursor() as cursor:
        cursor.execute(
            "ALTER DATABASE " + warehouse_env.rsplit("/", 1)[1] + " SET "
            "default_transaction_isolation = 'repeatable read'"
        )
    warm, outcome = attack(CONCURRENT_LOADS, {"loads": [specs["RACE"]] * 4}, memory_mb=3072)
    print(f"concurrent, warm: {outcome.seconds:.2f} s, peak {outcome.peak_rss_mb:.0f} MB: {warm}")
    assert all(o["ok"] for o in warm), warm
    assert sorted((o["inserted"], o["updated"]) for o in warm) == [(0, 0)] * 3 + [(0, 1000)]
    assert query(
        warehouse_env,
        "SELECT count(*), count(DISTINCT (series, day)), sum(value) FROM fresh.race",
    ) == [(3000, 3000, sum(range(3000)) + 1000)]
    assert query(warehouse_env, "SELECT count(*) FROM fresh.other") == [(500,)]
    assert query(
        warehouse_env,
        "SELECT dataset, rows_inserted, rows_updated FROM ingest_loads ORDER BY dataset, version",
    ) == [("OTHER", 500, 0), ("RACE", 3000, 0), ("RACE", 0, 1000)]


# --- 3. what the server said --------------------------------------------------------------------


def test_a_connection_killed_mid_load_shows_the_servers_message(warehouse_env):
    spec = {"url": warehouse_env, "batches": 6, "table_lock": lock_key("table", "public", "killed")}
    outcomes, outcome = attack(KILLED_LOADS, spec)
    print(f"killed: {outcome.seconds:.2f} s, peak {outcome.peak_rss_mb:.0f} MB: {outcomes}")
    assert outcomes["lock_wait"].pop("killed_while_waiting")  # it waited for the lock
    for case in ("copy", "lock_wait"):
        error = outcomes[case]
        assert not error["ok"], error
        assert error["error"].startswith(
            'WarehouseError: dataset KILL: table "public"."killed": version v1 not loaded '
            "(its transaction was rolled back; the next run loads it): PostgreSQL: FATAL: "
            "terminating connection due to administrator command"
        ), error
        assert error["error"].endswith("; the connection to PostgreSQL was lost"), error
        assert "connection already closed" not in error["error"]
    assert outcomes["again"] == {"ok": True, "inserted": 12000, "already": False}
    assert query(warehouse_env, "SELECT version, rows_inserted FROM ingest_loads") == [
        ("v1", 12000)
    ]
    assert query(warehouse_env, "SELECT count(*) FROM killed") == [(12000,)]


def test_disk_full_and_a_failed_commit_show_the_servers_message(warehouse_env):
    outcomes, outcome = attack(SERVER_ERRORS, {"url": warehouse_env})
    print(f"server errors: {outcome.seconds:.2f} s, peak {outcome.peak_rss_mb:.0f} MB: {outcomes}")
    assert outcomes["v1"] == {"ok": True, "inserted": 2}
    assert outcomes["disk_full"]["error"] == (
        'WarehouseError: dataset DISK: table "public"."disk": version v2 not loaded (its '
        "transaction was rolled back; the next run loads it): PostgreSQL: could not extend "
        'file "base/1/2": No space left on device [SQLSTATE 53100]'
    )
    assert outcomes["commit"]["error"] == (
        'WarehouseError: dataset DISK: table "public"."disk": version v2: the commit failed, '
        "not loaded (the ledger does not have it; the next run loads it): PostgreSQL: could "
        'not extend file "base/1/2": No space left on device [SQLSTATE 53100]'
    )
    assert outcomes["again"] == {"ok": True, "inserted": 2}
    assert query(warehouse_env, "SELECT code FROM disk ORDER BY code") == [
        ("a",),
        ("b",),
        ("c",),
        ("d",),
    ]
    assert query(warehouse_env, "SELECT version FROM ingest_loads ORDER BY version") == [
        ("v1",),
        ("v2",),
    ]


def test_a_refused_connection_names_the_dataset_without_the_password():
    warehouse = Warehouse("postgresql://postgres:s3cret@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(WarehouseError) as refused:
        warehouse.load("GONE", "v1", "all", pa.table({"k": [1]}), ["k"], "public", "gone")
    message = str(refused.value)
    assert message.startswith(
        'dataset GONE: table "public"."gone": version v1 not loaded: cannot connect: PostgreSQL: '
    ), message
    assert "s3cret" not in message and "Connection refused" in message
