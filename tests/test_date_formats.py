"""Date and time formats inferred per column (issue 17, item 5): the candidate that reads every
value wins; several winners are settled by a decimal comma (day first) or refused, naming the
candidates and the key to set; the format is shown, recorded in the manifest and kept for
later runs; inference sees the whole column, never one batch. Expected times are computed by
hand (zoneinfo), not by our reader."""

import datetime as dt
import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_assets import eventstore, stages
from ingest_assets.contract import load_config_file, parse_config
from ingest_assets.eventstore import read_current
from ingest_assets.eventstore.manifest import Manifest
from ingest_assets.rows import dates
from ingest_assets.rows.dates import AmbiguousFormat, infer_format
from ingest_assets.rows.normalize import normalize
from ingest_resources import object_store
from ingest_resources.runtime import local_runtime

MADRID = ZoneInfo("Europe/Madrid")
DAY = dt.date(2024, 2, 1)


def config_of(path="x.csv", decimal=".", delimiter=",", schema=None, **normalize_keys):
    return parse_config(
        {
            "dataset_id": "DATES",
            "source": {
                "kind": "file",
                "path": str(path),
                "format": "csv",
                "decimal": decimal,
                "delimiter": delimiter,
            },
            "normalize": {
                "primary_keys": ["id"],
                "time_column": "when",
                "timezone": "Europe/Madrid",
                "schema": schema or {},
                **normalize_keys,
            },
            "checks": {"max_rejected_ratio": 1.0},
        },
        "dates.yaml",
    )


def infer(values, decimal=".", numbers=False):
    found = infer_format(pa.array(values, pa.string()), "when", numbers, config_of(decimal=decimal))
    return None if found is None else (found.format, found.reads_all)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["13/01/2024", "02/01/2024"], "%d/%m/%Y"),
        (["01/13/2024", "01/02/2024"], "%m/%d/%Y"),
        (["2024/01/13", "2024/02/01"], "iso8601"),  # (pandas' ISO 8601 reads slashes too)
        (["13.01.2024 10:30", "02.01.2024 23:59"], "%d.%m.%Y %H:%M"),
        (["13-01-2024 10:30:15", "02-01-2024 23:59:59"], "%d-%m-%Y %H:%M:%S"),
        (["2024-01-13", "2024-01-13T10:30:00+01:00", "2024-02-01 10:00"], "iso8601"),
        (["20240113", "20240201"], "iso8601"),
        (["13 Jan 2024", "1 Feb 2024"], "%d %b %Y"),
        (["Jan 13, 2024", "Feb 1, 2024"], "%b %d, %Y"),
        (["13 January 2024", "1 February 2024"], "%d %B %Y"),
        (["13-Jan-2024"], "%d-%b-%Y"),
    ],
)
def test_the_format_that_reads_every_value_wins(values, expected):
    assert infer(values) == (expected, True)


def test_a_column_of_numbers_is_read_as_serial_days_or_compact_dates():
    assert infer(["45292", "45322.5"], numbers=True) == ("excel", True)
    assert infer(["2024", "2025"], numbers=True) == ("iso8601", True)  # (years, not 1905)
    assert infer(["45292"]) is None  # (text: serials only from a workbook's numbers)


def test_days_of_twelve_or_less_are_day_first_with_a_decimal_comma_and_refused_without():
    values = ["01/02/2024", "12/03/2024"]
    assert infer(values, decimal=",") == ("%d/%m/%Y", True)
    with pytest.raises(AmbiguousFormat) as caught:
        infer(values)
    message = str(caught.value)
    assert message.startswith("dataset DATES: column 'when': every value can be read in several")
    assert "'%d/%m/%Y', '%m/%d/%Y'" in message
    assert "set normalize.formats.when" in message


def test_no_value_no_format_and_the_most_read_wins_when_none_reads_all():
    assert infer([None, None]) is None
    assert infer(["n/a", "unknown"]) is None
    assert infer(["13/01/2024", "n/a", "14/01/2024"]) == ("%d/%m/%Y", False)


def test_a_value_the_inferred_format_does_not_read_is_quarantined_naming_it():
    when = ["13/01/2024", "2024-01-14", None, "15/01/2024"]
    table = pa.table({"id": ["1", "2", "3", "4"], "when": when})
    result = normalize(table, config_of(), DAY)
    assert result.formats == {"when": "%d/%m/%Y"}
    assert result.table["id"].to_pylist() == ["1", "3", "4"]
    assert result.rejected["reason"].to_pylist() == [
        "column 'when': cannot read '2024-01-14' as timestamp in the format '%d/%m/%Y' this "
        "column is read with (set normalize.formats.when to change it)"
    ]


def test_the_contracts_format_is_used_as_it_is():
    table = pa.table({"id": ["1"], "when": ["01/02/2024"]})
    result = normalize(table, config_of(formats={"when": "%m/%d/%Y"}), DAY)
    assert result.formats == {"when": "%m/%d/%Y"}
    assert result.table["when"].to_pylist() == [dt.datetime(2024, 1, 2, tzinfo=MADRID)]


# --- end to end: the file of finding 6, the manifest, later runs, batches ---------------------


def observations(days: range, month: int = 1) -> str:
    """A `;`-separated file with decimal commas and dd/mm/yyyy dates, as a Spanish office
    writes it."""
    lines = ["id;when;temperature"]
    for day in days:
        temperature = f"{day / 4:.2f}".replace(".", ",")
        lines.append(f"{month:02d}{day:02d};{day:02d}/{month:02d}/2024;{temperature}")
    return "\n".join(lines) + "\n"


def run(runtime, config, publish=True):
    stages.run_raw(runtime, config, "all")
    stages.run_parse(runtime, config, "all")
    outcome = stages.run_normalize(runtime, config, "all")
    return outcome, stages.run_publish(runtime, config, "all") if publish else None


def test_a_decimal_comma_file_with_day_first_dates_publishes_every_row(runtime, tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text(observations(range(1, 31)))
    config = config_of(path, ",", ";", {"temperature": "float64"})
    outcome, result = run(runtime, config)
    assert outcome.counts.rejected == 0 and result.rows_added == 30
    assert outcome.formats == {"when": "%d/%m/%Y"}
    rows = {r["id"]: r for r in outcome.table.to_pylist()}
    assert rows["0113"]["when"] == dt.datetime(2024, 1, 13, tzinfo=MADRID)  # 12:00 UTC the 12th
    assert rows["0113"]["temperature"] == 3.25
    assert result.manifest.formats == {"when": "%d/%m/%Y"}
    stored = json.loads(runtime.store.get(f"datasets/DATES/events/{result.version}/manifest.json"))
    assert stored["formats"] == {"when": "%d/%m/%Y"}


def test_a_kept_format_reads_later_files_and_refuses_what_no_longer_fits(runtime, tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text(observations(range(10, 20)))  # days past 12: day first, with a point too
    config = config_of(path, ".", ";")
    first, _ = run(runtime, config)
    assert first.formats == {"when": "%d/%m/%Y"}

    # February's first twelve days: alone they would be ambiguous (refused); kept: day first
    path.write_text(observations(range(1, 13), month=2))
    second, result = run(runtime, config)
    assert second.counts.rejected == 0 and result.rows_added == 12
    rows = {r["id"]: r["when"] for r in second.table.to_pylist()}
    assert rows["0203"] == dt.datetime(2024, 2, 3, tzinfo=MADRID)
    assert result.manifest.formats == {"when": "%d/%m/%Y"}

    # a file in ISO 8601 is not silently read another way: row by row, naming the format
    path.write_text("id;when\n0301;2024-03-01\n0302;02/03/2024\n")
    third, _ = run(runtime, config, publish=False)
    assert third.table["id"].to_pylist() == ["0302"]
    assert third.rejected["reason"].to_pylist() == [
        "column 'when': cannot read '2024-03-01' as timestamp in the format '%d/%m/%Y' this "
        "column is read with (set normalize.formats.when to change it)"
    ]


def test_the_format_is_inferred_over_the_whole_column_not_one_batch(runtime, tmp_path, monkeypatch):
    """Batches of 2 rows: the first ones alone (days 1-12) would be ambiguous."""
    monkeypatch.setattr(object_store, "BATCH_ROWS", (2, 2))
    path = tmp_path / "obs.csv"
    path.write_text(observations(range(1, 16)))
    outcome, result = run(runtime, config_of(path, ".", ";"))
    assert len(outcome.keys) > 2
    assert outcome.counts.rejected == 0 and result.rows_added == 15
    when = {r["id"]: r["when"] for r in outcome.table.to_pylist()}
    assert when["0102"] == dt.datetime(2024, 1, 2, tzinfo=MADRID)


def test_an_ambiguous_column_refuses_the_run_naming_the_key(runtime, tmp_path):
    path = tmp_path / "obs.csv"
    path.write_text(observations(range(1, 13)))
    with pytest.raises(AmbiguousFormat, match=r"set normalize\.formats\.when"):
        run(runtime, config_of(path, ".", ";"), publish=False)


def test_manifests_written_before_formats_read_and_are_published_on(tmp_path):
    """The format 1 store of tests/fixtures/stores: its manifests have no `formats`."""
    fixture = Path(__file__).parent / "fixtures" / "stores"
    shutil.copytree(fixture / "v1", tmp_path / "store")
    runtime = local_runtime(tmp_path / "store")
    config = load_config_file(fixture / "v1_configs" / "legacy_plain.yaml")
    current, _ = read_current(runtime.store, "legacy_plain")
    assert current is not None and current.formats == {}
    chain = eventstore.version_chain(runtime.store, "legacy_plain", current)
    assert len(chain) == 2 and all(m.formats == {} for m in chain)
    assert Manifest.from_dict(json.loads(current.to_bytes()), "x").formats == {}
    path = tmp_path / "later.csv"
    path.write_text(
        "region,obs_time,price,volume,status\nnorth,13/06/2025,1.5,3,final\n"
        "south,14/06/2025,2.5,4,final\n"
    )
    config = config.model_copy(
        update={"source": config.source.model_copy(update={"path": str(path)})}
    )
    _, result = run(runtime, config)
    assert result.committed and result.rows_added == 2
    assert result.manifest.formats == {"obs_time": "%d/%m/%Y"}
    assert result.manifest.parent_version == current.version


def test_the_inferred_format_is_shown_on_the_materializations(tmp_path):
    import dagster as dg

    from ingest_assets.orchestration.factory import dataset_assets
    from ingest_resources.resource import IngestResource

    path = tmp_path / "obs.csv"
    path.write_text(observations(range(1, 31)))
    config = config_of(path, ",", ";", {"temperature": "float64"})
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            dataset_assets(config),
            instance=instance,
            resources={"ingest": IngestResource.from_env()},
        )
    assert result.success
    materializations = [
        e.event_specific_data.materialization for e in result.get_asset_materialization_events()
    ]
    metadata = {
        m.asset_key.path[-1]: {k: v.value for k, v in m.metadata.items()} for m in materializations
    }
    assert metadata["normalized"]["inferred_formats"] == {"when": "%d/%m/%Y"}
    assert metadata["published"]["formats"] == {"when": "%d/%m/%Y"}


def test_past_its_memory_bound_inference_still_tries_every_value(monkeypatch):
    """Past DISTINCT values kept, the survivors are tried on each later batch: a late value
    that only day-first reads still decides, and one none reads is still seen."""
    monkeypatch.setattr(dates, "DISTINCT", 4)
    early = [f"{day:02d}/01/2024" for day in range(1, 13)]  # d/m or m/d alike
    inference = dates.ColumnFormat("when", False, config_of())
    for start in range(0, 12, 3):
        inference.add(pa.array(early[start : start + 3]))
    inference.add(pa.array(["13/02/2024"]))
    assert inference.result() == dates.Inferred("%d/%m/%Y", True)
    inference = dates.ColumnFormat("when", False, config_of())
    for start in range(0, 12, 3):
        inference.add(pa.array(early[start : start + 3]))
    with pytest.raises(AmbiguousFormat, match="every value can be read in several"):
        inference.result()
    inference.add(pa.array(["not a date"]))
    with pytest.raises(AmbiguousFormat, match="12 of its 13 values"):
        inference.result()


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
            st.integers(-14 * 60, 14 * 60),
            st.sampled_from(["T", " "]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_times_with_offsets_read_by_arrow_as_the_expected_instants(values):
    """ISO 8601 with offsets (all of a column): read at once by Arrow; each is the instant
    Python's own datetime gives."""
    text = []
    for moment, minutes, sep in values:
        zone = dt.timezone(dt.timedelta(minutes=minutes))
        text.append(moment.replace(tzinfo=zone).isoformat(sep=sep))
    table = pa.table({"id": [str(i) for i in range(len(text))], "when": text})
    result = normalize(table, config_of(), DAY)
    assert result.rejected.num_rows == 0
    expected = [
        moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))).astimezone(dt.UTC)
        for moment, minutes, _ in values
    ]
    assert result.table["when"].to_pylist() == expected
