"""The format of a date or time column, inferred from its values when the contract names none,
as DuckDB's CSV sniffer does: every candidate format is tried over the column's values and the
one that reads them all wins. Pure: no Dagster, no I/O.

The candidates: ISO 8601 (with or without a time and an offset; also `YYYYMMDD`, `YYYYMM` and
`YYYY`: the reading without a format, `iso8601`), day, month and year in the orders d/m/Y,
m/d/Y and Y/m/d with `/`, `-` or `.` between them, named months (`13 Jan 2024`, `13-Jan-2024`,
`Jan 13, 2024`, `13 January 2024`, `January 13, 2024`), each alone or followed by `%H:%M` or
`%H:%M:%S`. Two-digit years are not guessed (`01/02/24`: set the format). A column that
arrives as numbers (a workbook's cells) may also be spreadsheet serial day numbers (`excel`).

When several candidates read every value (days all 12 or less, so d/m and m/d both do), a
decimal comma (`source.decimal: ","`) says day first; otherwise the run refuses, naming the
column, the candidates and the key to set. When none reads every value, the one that reads the
most wins and the rest of the values are quarantined, naming the format.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.contract import DatasetConfig
from ingest_assets.rows.convert import EXCEL_FORMAT, ISO_FORMAT, convert_column
from ingest_resources.errors import DataError

SAMPLE = 64  # distinct values every candidate is tried on first; the survivors on all of them
DISTINCT = 100_000  # distinct values kept at most; past them the survivors try each batch's
TIMES = ("", " %H:%M", " %H:%M:%S")
ORDERS = ("%d{s}%m{s}%Y", "%m{s}%d{s}%Y", "%Y{s}%m{s}%d")
NAMED = ("%d %b %Y", "%d-%b-%Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y")


def _candidates() -> tuple[str, ...]:
    dated = [order.format(s=sep) for order in ORDERS for sep in "/-."]
    dated = [fmt for fmt in dated if fmt != "%Y-%m-%d"]  # (ISO 8601: iso8601 reads it)
    return (ISO_FORMAT, *(day + time for day in dated + list(NAMED) for time in TIMES))


CANDIDATES = _candidates()
NUMBER_CANDIDATES = (ISO_FORMAT, EXCEL_FORMAT)  # a column of numbers: YYYYMMDD or serials


class AmbiguousFormat(DataError):
    """Several formats read every value of a column and nothing says which is meant."""


@dataclass(frozen=True)
class Inferred:
    format: str
    reads_all: bool  # False: the values it does not read are quarantined, naming it


def _reads(values: pa.Array, fmt: str, config: DatasetConfig) -> int:
    return len(values) - int(convert_column(values, "timestamp", fmt, config).null_count)


def _sample(values: pa.Array) -> pa.Array:
    """Up to SAMPLE values spread over the column, its first and last among them."""
    if len(values) <= SAMPLE:
        return values
    step = (len(values) - 1) / (SAMPLE - 1)
    return values.take(pa.array(sorted({round(i * step) for i in range(SAMPLE)})))


def _best(values: pa.Array, formats: Sequence[str], config: DatasetConfig) -> tuple[list[str], int]:
    """The formats that read the most of `values`, and how many they read."""
    counts = {fmt: _reads(values, fmt, config) for fmt in formats}
    most = max(counts.values(), default=0)
    return [fmt for fmt, count in counts.items() if count == most and most], most


def _day_first(formats: list[str]) -> list[str]:
    return [fmt for fmt in formats if fmt.startswith("%d")]


class ColumnFormat:
    """The format of one date/time column, from its values given batch by batch (trimmed text,
    blanks null), in bounded memory: distinct values are kept up to DISTINCT; past that, the
    candidates that read the most of them are tried on every later value instead."""

    def __init__(self, column: str, numbers: bool, config: DatasetConfig):
        self.column, self.config = column, config
        self.candidates = NUMBER_CANDIDATES if numbers else CANDIDATES  # numbers: a sheet's
        self.kept: list[pa.Array] = []
        self.distinct = 0
        self.counts: dict[str, int] | None = None  # reads per shortlisted format, once too many
        self.total = 0  # the values counted
        self.example: str | None = None

    def add(self, text: pa.Array) -> None:
        values = pc.unique(text.drop_null())
        if self.counts is None:
            self.kept.append(values)
            self.distinct += len(values)
            if self.distinct > DISTINCT:
                self._shortlist()
            return
        self.total += len(values)
        for fmt in self.counts:
            self.counts[fmt] += _reads(values, fmt, self.config)

    def _shortlist(self) -> None:
        values = pc.unique(pa.chunked_array(self.kept, pa.string()))
        self.kept, self.total = [], len(values)
        shortlist, _ = _best(_sample(values), self.candidates, self.config)
        self.counts = {fmt: _reads(values, fmt, self.config) for fmt in shortlist}
        if len(shortlist) > 1:  # (for a refusal's message)
            read = convert_column(values, "timestamp", shortlist[0], self.config)
            self.example = values.filter(pc.is_valid(read))[0].as_py()

    def result(self) -> Inferred | None:
        """The format (None: no value, or none read), or AmbiguousFormat."""
        if self.counts is None:
            self._shortlist()
        assert self.counts is not None
        most = max(self.counts.values(), default=0)
        winners = [fmt for fmt, count in self.counts.items() if count == most and most]
        if not winners:
            return None
        if ISO_FORMAT in winners:  # (what it reads, a Y/m/d or serial reading would read alike)
            winners = [ISO_FORMAT]
        if len(winners) > 1 and self.config.source.decimal == "," and len(_day_first(winners)) == 1:
            winners = _day_first(winners)
        if len(winners) > 1:
            listed = ", ".join(repr(fmt) for fmt in winners)
            how = "every value" if most == self.total else f"{most} of its {self.total} values"
            raise AmbiguousFormat(
                f"dataset {self.config.dataset_id}: column {self.column!r}: {how} can be read in "
                f"several date formats ({listed}), e.g. {self.example!r}, and nothing says which "
                "is meant (a decimal comma, source.decimal ',', would mean day first); set "
                f"normalize.formats.{self.column} to the one meant"
            )
        return Inferred(winners[0], most == self.total)


def infer_format(
    text: pa.Array, column: str, numbers: bool, config: DatasetConfig
) -> Inferred | None:
    """The format of a date or time column from its values (trimmed text, blanks null), or None
    when it has none or no candidate reads any. `numbers`: the column arrived as numbers."""
    inference = ColumnFormat(column, numbers, config)
    inference.add(text)
    return inference.result()
