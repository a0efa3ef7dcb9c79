"""Numbers written as text, read by `source.decimal` and `source.thousands` (issue 17, item 4):
a separator stands only between groups of three digits; anything else is quarantined as
`invalid_number`, naming the value and the rule. Expectations are written by hand or made by
Python's own formatting (`format(n, ",")`), never by our reader."""

import datetime as dt
import decimal

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ingest_assets.contract import parse_config
from ingest_assets.rows.normalize import normalize

DAY = dt.date(2024, 1, 31)


def config(type_name: str, decimal_mark: str = ".", thousands: str | None = None):
    source = {"kind": "file", "path": "x.csv", "format": "csv", "decimal": decimal_mark}
    if thousands is not None:
        source["thousands"] = thousands
    return parse_config(
        {
            "dataset_id": "NUMBERS",
            "source": source,
            "normalize": {"primary_keys": ["id"], "schema": {"v": type_name}},
        },
        "numbers.yaml",
    )


def read(values: list[str | None], type_name: str, decimal_mark=".", thousands=None):
    """{id: value} of the accepted rows, {id: (reason_code, reason)} of the rejected ones."""
    table = pa.table({"id": [str(i) for i in range(len(values))], "v": values})
    result = normalize(table, config(type_name, decimal_mark, thousands), DAY)
    accepted = dict(zip(result.table["id"].to_pylist(), result.table["v"].to_pylist(), strict=True))
    rejected = {r["id"]: (r["reason_code"], r["reason"]) for r in result.rejected.to_pylist()}
    return accepted, rejected


def test_a_decimal_comma_takes_a_dot_only_between_groups_of_three():
    values = ["1.234,5", "1.234.567", "2.5", "1234,5", "-0,25", "12.34", "1.2345,6", ".234,5"]
    accepted, rejected = read(values, "float64", ",")
    assert accepted == {"0": 1234.5, "1": 1234567.0, "3": 1234.5, "4": -0.25}
    assert set(rejected) == {"2", "5", "6", "7"}
    code, reason = rejected["2"]
    assert code == "invalid_number"
    assert reason.startswith("column 'v': '2.5' is not a number: the decimal mark is ','")
    assert "'.' (source.thousands) stands only between groups of three digits" in reason
    assert "'1.234.567,8'" in reason  # (an example of the rule)


def test_a_decimal_comma_with_integers_and_decimals():
    accepted, rejected = read(["1.234", "1.234,0", "7", "2.5"], "int64", ",")
    assert accepted == {"0": 1234, "1": 1234, "2": 7}
    assert rejected["3"][0] == "invalid_number"
    accepted, rejected = read(["1.234,565", "0,125", "9.999.999,99", "1,2.3"], "decimal(9,2)", ",")
    assert accepted == {
        "0": decimal.Decimal("1234.56"),  # (half-even: ...565 -> ...56)
        "1": decimal.Decimal("0.12"),
        "2": decimal.Decimal("9999999.99"),
    }
    assert rejected["3"][0] == "invalid_number"


@pytest.mark.parametrize(
    ("thousands", "good", "bad"),
    [
        (
            ",",
            {"19,582": 19582, "1,234,567.5": 1234567.5, "12": 12, "1234.5": 1234.5},
            ["1,23", "1,2345", ",123", "12,34.5"],
        ),
        (
            " ",
            {"1 234": 1234, "1\u00a0234,5": 1234.5, "1\u202f234\u202f567": 1234567},
            ["1 23", "12 3456"],
        ),
        ("'", {"1'234'567.5": 1234567.5, "1\u2019234": 1234}, ["1'23", "1'2'3"]),
        (".", {"1.234.567,5": 1234567.5}, ["2.5", "1.23,5"]),
    ],
)
def test_each_thousands_separator(thousands, good, bad):
    decimal_mark = "," if thousands in (" ", ".") else "."
    values = list(good) + bad
    accepted, rejected = read(values, "float64", decimal_mark, thousands)
    assert accepted == {str(i): v for i, v in enumerate(good.values())}
    assert {i: code for i, (code, _) in rejected.items()} == {
        str(i): "invalid_number" for i in range(len(good), len(values))
    }


def test_without_a_separator_a_decimal_point_reads_as_before():
    accepted, rejected = read(["1234.5", "1e3", ".5", "1,234", "abc"], "float64")
    assert accepted == {"0": 1234.5, "1": 1000.0, "2": 0.5}
    assert rejected == {
        "3": ("type_error", "column 'v': cannot read '1,234' as float64"),
        "4": ("type_error", "column 'v': cannot read 'abc' as float64"),
    }


def test_a_decimal_comma_does_not_take_a_separator_it_was_not_given():
    """With `thousands: " "`, the separator is the space alone: a dot is not a number there."""
    accepted, rejected = read(["1 234,5", "1.234,5"], "float64", ",", " ")
    assert accepted == {"0": 1234.5}
    assert rejected["1"][0] == "invalid_number"


# --- round trips: numbers written with separators by Python, read back exactly ---------------

MARKS = [(".", ","), (",", "."), (",", " "), (".", "'"), (".", " "), (",", "'"), (",", None)]


def written(number: decimal.Decimal, decimal_mark: str, thousands: str | None) -> str:
    """`number` as a person in that locale writes it (Python's grouping, marks swapped)."""
    text = format(number, ",f")  # e.g. -1,234,567.125
    separator = thousands if thousands is not None else "."
    return text.replace(",", "\0").replace(".", decimal_mark).replace("\0", separator)


@settings(deadline=None)
@given(
    st.decimals(min_value=-(10**12), max_value=10**12, places=3, allow_nan=False),
    st.sampled_from(MARKS),
)
def test_numbers_with_separators_read_back_exactly(number, marks):
    decimal_mark, thousands = marks
    text = written(number, decimal_mark, thousands)
    accepted, rejected = read([text], "decimal(18,3)", decimal_mark, thousands)
    assert rejected == {} and accepted == {"0": number}, text
    accepted, _ = read([text], "float64", decimal_mark, thousands)
    assert accepted == {"0": float(number)}, text


@settings(deadline=None)
@given(
    st.lists(st.integers(0, 999), min_size=2, max_size=5),
    st.integers(0, 4),
    st.sampled_from([1, 2, 4]),
    st.sampled_from([m for m in MARKS if m[1] is not None]),
)
def test_a_group_that_is_not_three_digits_is_invalid(groups, wrong, width, marks):
    """One group (not the first) of 1, 2 or 4 digits: never read as some other number."""
    decimal_mark, thousands = marks
    wrong = 1 + wrong % (len(groups) - 1)
    digits = [str(groups[0])] + [f"{g:03d}" for g in groups[1:]]
    digits[wrong] = (digits[wrong] * 2)[:width]
    text = thousands.join(digits) + f"{decimal_mark}5"
    accepted, rejected = read([text], "float64", decimal_mark, thousands)
    assert accepted == {} and rejected["0"][0] == "invalid_number", text


@settings(deadline=None)
@given(
    st.lists(
        st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False), min_size=1
    ),
    st.integers(1, 12),
    st.integers(0, 4),
)
@example([decimal.Decimal("999999999.5")], 10, 0)  # (rounding carries into a tenth digit)
@example([decimal.Decimal("999999999.5"), decimal.Decimal(0)], 8, 0)
def test_decimals_round_half_even_and_past_their_precision_are_rejected(numbers, precision, scale):
    """Against Python's own `decimal`: each value rounded half-even to the scale, or rejected
    when it has more whole digits than the precision leaves."""
    scale = min(scale, precision)
    quantum = decimal.Decimal(1).scaleb(-scale)
    limit = decimal.Decimal(10) ** (precision - scale)
    expected = {}
    for i, number in enumerate(numbers):
        rounded = number.quantize(quantum, rounding=decimal.ROUND_HALF_EVEN)
        expected[str(i)] = rounded if abs(rounded) < limit else None
    accepted, rejected = read([str(n) for n in numbers], f"decimal({precision},{scale})")
    assert accepted == {i: v for i, v in expected.items() if v is not None}
    assert set(rejected) == {i for i, v in expected.items() if v is None}
