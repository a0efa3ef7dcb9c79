"""A CSV file's rows as Arrow batches of text, as written, in bounded memory.

Arrow's streaming reader parses one block at a time on the calling thread (so its
invalid_row_handler can say where a row is). A row that does not fit the header never shifts
a column: a row with more fields than the header, or fewer, is not read: it becomes a reject
row, its data columns null, `_row` its row number and `_rejected` "ragged_row: ..." saying
what it holds, wherever it is in the file. A blank line, or a row of fewer fields all empty,
is a blank row (dropped later). When the rows end with a delimiter the header lacks
(`31001,"Adams County, NE",31299,0,`): an empty last field more than the header in most of
the first block's rows, every row is read with that trailing field, which is dropped; a row
where it holds a value is rejected like any other longer row, and one written without it is
read.

Rows are numbered as a spreadsheet numbers the file's records (the header row is
`source.header_row`; a quoted value over several lines is one record); a reject's reason gives
its line, or says that lines run further where quoted values above it span several lines.
"""

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingest_assets.parsers.base import REJECT_COLUMN, ROW_COLUMN, ParseContext
from ingest_assets.parsers.encoding import Input, arrow_encoding

TEXT_SHOWN = 200  # characters of a rejected row's text in its reason
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class CsvSettings:
    """How to read: the file's encoding (a Python codec), Arrow's block size, the texts read as
    null (after stripping, with `strip`) and whether to strip values of whitespace."""

    encoding: str
    block: int
    null_markers: list[str]
    strip: bool = False


@dataclass
class _Invalid:
    """The rows Arrow's reader could not fit (more or fewer fields than it expects), as its
    invalid_row_handler reports them while it parses: ahead of the batch handed out."""

    rows: list[tuple[int, int, str]] = field(default_factory=list)

    def __call__(self, row: pacsv.InvalidRow) -> str:
        if row.number is None:  # (known when the reader runs on one thread, as here)
            return "error"
        self.rows.append((row.number, row.actual_columns, row.text))
        return "skip"

    def among(self, first: int, valid: int) -> int:
        """How many of the rows lie among the `valid` rows of a batch starting at row `first`."""
        count = 0
        while count < len(self.rows) and self.rows[count][0] <= first + valid + count:
            count += 1
        return count

    def take(self, first: int, valid: int) -> list[tuple[int, int, str]]:
        """The rows that lie among the `valid` rows of a batch starting at row `first`."""
        count = self.among(first, valid)
        taken, self.rows = self.rows[:count], self.rows[count:]
        return taken


def _open(
    source: Input,
    ctx: ParseContext,
    settings: CsvSettings,
    invalid: _Invalid,
    names: list[str] | None = None,
) -> pacsv.CSVStreamingReader:
    """Every field as text, nothing read as null (the markers are applied afterwards, so that
    a trailing field or a rejected row is judged as written). Arrow numbers the rows from the
    file's first line, the `source.header_row - 1` lines it skips counted one each: the header
    row is number `header_row`, as in the file."""
    config = ctx.config.source
    read = pacsv.ReadOptions(
        encoding=arrow_encoding(settings.encoding),
        skip_rows=config.header_row - 1,
        block_size=settings.block,
        column_names=names,
        use_threads=False,
    )
    parse = pacsv.ParseOptions(
        delimiter=config.delimiter,
        newlines_in_values=True,
        ignore_empty_lines=False,
        invalid_row_handler=invalid,
    )
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names or [], pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    where = str(source) if isinstance(source, Path) else pa.BufferReader(pa.py_buffer(source))
    return pacsv.open_csv(where, read_options=read, parse_options=parse, convert_options=convert)


def read_header(source: Input, ctx: ParseContext, settings: CsvSettings) -> list[str]:
    """The cells of row `source.header_row`, as written."""
    with _open(source, ctx, settings, _Invalid()) as probe:
        return list(probe.schema.names)


def _fields(text: str, delimiter: str) -> list[str]:
    """A row's fields, from its text (as the csv module reads it: Arrow's quoting)."""
    return next(csv.reader([text], delimiter=delimiter), [])


def _row_text(values: list[str | None], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(values)
    return out.getvalue()


def _shown(text: str) -> str:
    text = text.rstrip("\r\n").replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN] + "..."


class CsvRows:
    """One read of a CSV's data rows, after its header `header` (see the module's notes)."""

    def __init__(self, source: Input, ctx: ParseContext, settings: CsvSettings, header: list[str]):
        self.source, self.ctx, self.settings, self.header = source, ctx, settings, header
        self.width = len(header)
        self.delimiter = ctx.config.source.delimiter
        self.trailing = False
        self.spans_lines = False  # a value read so far spans lines: line numbers run further

    def __iter__(self) -> Iterator[pa.Table]:
        """Batches of `_row`, the header's columns (as text, by position) and `_rejected`.
        The header row is read again as a row (its lines are skipped with it, however many
        its quoted cells span), then left out."""
        invalid = _Invalid()
        names = [str(i) for i in range(self.width)]  # (by position: a header may repeat a name)
        with _open(self.source, self.ctx, self.settings, invalid, names) as reader:
            first = [pa.Table.from_batches([batch]) for batch in itertools.islice(reader, 1)]
            self.trailing = self._has_trailing_field(first, invalid)
            if not self.trailing:
                yield from self._rows(itertools.chain(first, reader), invalid)
                return
        invalid = _Invalid()
        with _open(
            self.source, self.ctx, self.settings, invalid, [*names, str(self.width)]
        ) as reader:
            yield from self._rows(iter(reader), invalid)

    def _has_trailing_field(self, first: list[pa.Table], invalid: _Invalid) -> bool:
        """Whether the rows read so far (the first block, and what Arrow read ahead) mostly end
        with one more field than the header, an empty one."""
        full = sum(pc.sum(_filled(table)).as_py() or 0 for table in first) - 1  # (the header)
        valid = sum(table.num_rows for table in first)
        read = invalid.rows[: invalid.among(self.ctx.config.source.header_row, valid)]
        trailing = sum(
            1
            for _, count, text in read
            if count == self.width + 1 and not _fields(text, self.delimiter)[-1].strip()
        )
        return trailing > max(full, 0)

    def _rows(
        self, batches: Iterator[pa.Table | pa.RecordBatch], invalid: _Invalid
    ) -> Iterator[pa.Table]:
        """The batches, each merged with the rows reported invalid among them, the header row
        left out."""
        header_row = self.ctx.config.source.header_row
        after = header_row - 1  # the number of the last row handed out
        held: pa.Table | None = None  # the last batch, until the file's end is known
        held_spanned = False
        for batch in batches:
            table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            taken = invalid.take(after + 1, table.num_rows)
            spanned = self.spans_lines  # (before this batch)
            merged = self._merge(table, after + 1, taken)
            if after < header_row:  # (the header row is among these)
                merged = merged.filter(pc.not_equal(merged[ROW_COLUMN], header_row))
            after += table.num_rows + len(taken)
            if merged.num_rows:
                if held is not None:
                    yield held
                held, held_spanned = merged, spanned
        if held is not None:
            yield self._unterminated(held, held_spanned)
        if invalid.rows:  # the file ends with rows Arrow could not fit
            merged = self._merge(pa.table({}), after + 1, invalid.rows)
            yield merged.filter(pc.not_equal(merged[ROW_COLUMN], header_row))

    def _unterminated(self, table: pa.Table, spanned: bool) -> pa.Table:
        """`table` (the file's last rows), its last row rejected when the file ends inside a
        quoted value that row opens in its last column: Arrow reads everything after the quote
        into that value (a quote opened in another column leaves the row short: ragged_row).
        `spanned`: whether a value before `table` spans lines."""
        last = table.num_rows - 1
        value = table.column(self.width)[last].as_py()  # (the last data column, as written)
        if table.column(REJECT_COLUMN)[last].as_py() is not None or value is None:
            return table
        if not self._file_ends_with('"' + value):
            return table
        number = int(table.column(ROW_COLUMN)[last].as_py())
        above = table.slice(0, last).select([str(i) for i in range(self.width)])
        self.spans_lines = spanned or any(
            pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py() for column in above.columns
        )
        lines = len(LINE_BREAK.findall(value.rstrip("\r\n"))) + 1
        row = [table.column(i)[last].as_py() for i in range(1, self.width)]
        text = _row_text([*row, None], self.delimiter) + '"' + value
        reason = (
            f"unterminated_quote: {self._where(number)}: a quoted value opens in its last "
            f"column and the file ends inside it ({lines} line(s) read into it; the rows they "
            f"hold are not read): {_shown(text)}"
        )
        rejected = pa.array([False] * last + [True])
        for index in range(1, self.width + 1):
            column = pc.if_else(rejected, pa.scalar(None, pa.string()), table.column(index))
            table = table.set_column(index, table.field(index), column)
        reasons = pc.if_else(rejected, pa.scalar(reason), table.column(REJECT_COLUMN))
        return table.set_column(table.num_columns - 1, table.field(REJECT_COLUMN), reasons)

    def _file_ends_with(self, text: str) -> bool:
        """Whether the source's last bytes are `text` in its encoding (one without a byte
        order mark to write: ASCII-compatible ones)."""
        name = codecs.lookup(self.settings.encoding).name
        if name.startswith(("utf-16", "utf-32")):
            return False
        encoded = text.encode("utf-8" if name == "utf-8-sig" else name, errors="replace")
        if isinstance(self.source, bytes):
            return self.source.endswith(encoded)
        size = self.source.stat().st_size
        if size < len(encoded):
            return False
        with self.source.open("rb") as file:
            file.seek(size - len(encoded))
            return file.read() == encoded

    def _merge(self, table: pa.Table, first: int, taken: list[tuple[int, int, str]]) -> pa.Table:
        """The batch's rows and the invalid rows among them, in the file's order, numbered."""
        count = table.num_rows + len(taken)
        slots = np.ones(count, dtype=bool)
        places = [number - first for number, _, _ in taken]
        if any(not 0 <= place < count for place in places):  # (never seen: Arrow's numbers)
            raise pa.ArrowInvalid(f"rows {[n for n, _, _ in taken]} lie outside rows {first}+")
        slots[places] = False
        numbers = np.arange(first, first + count, dtype=np.int64)
        columns = [table.column(i) for i in range(table.num_columns)] if table.num_columns else []
        expected = self.width + (1 if self.trailing else 0)
        if not columns:
            columns = [pa.chunked_array([], pa.string()) for _ in range(expected)]
        self._note_spans(columns, taken)
        reasons: list[str | None] = [None] * table.num_rows
        if self.trailing:
            reasons = self._trailing_values(columns, numbers[slots])
            columns = columns[:-1]
        extra = self._invalid_rows(taken, numbers[~slots], expected)
        out = pa.table(
            {
                ROW_COLUMN: pa.array(numbers[slots]),
                **{str(i): column for i, column in enumerate(columns)},
                REJECT_COLUMN: pa.array(reasons, pa.string()),
            }
        )
        if extra.num_rows:
            out = pa.concat_tables([out, extra.rename_columns(out.column_names)])
            out = out.take(pc.sort_indices(out[ROW_COLUMN]))
        return self._values(out)

    def _note_spans(
        self, columns: list[pa.ChunkedArray], taken: list[tuple[int, int, str]]
    ) -> None:
        """Whether a value read so far holds a line break (its bytes searched as they lie in
        Arrow's buffers: a value's break, or at worst a neighbour's in the same buffer)."""
        if self.spans_lines:
            return
        self.spans_lines = any(LINE_BREAK.search(text.rstrip("\r\n")) for _, _, text in taken)
        for chunk in (chunk for column in columns for chunk in column.chunks):
            data = None if self.spans_lines else chunk.buffers()[2]
            if data is not None and data.size:
                view = np.frombuffer(data, dtype=np.uint8)
                self.spans_lines = bool(np.any((view == 10) | (view == 13)))

    def _where(self, number: int) -> str:
        if not self.spans_lines:
            return f"line {number}"
        return f"row {number} (its line is further down: quoted values above it span lines)"

    def _reason(self, number: int, count: int, text: str) -> str:
        fields = f"{count} field" + ("s" if count != 1 else "")
        also = " (the rows end with one more, empty, field)" if self.trailing else ""
        return (
            f"ragged_row: {self._where(number)} has {fields}, the header {self.width}{also}: "
            f"{_shown(text)}"
        )

    def _trailing_values(
        self, columns: list[pa.ChunkedArray], numbers: np.ndarray
    ) -> list[str | None]:
        """The reasons of the rows whose trailing field holds a value (None for the others);
        their data columns are nulled."""
        last = pc.utf8_trim_whitespace(columns[-1])
        held = pc.not_equal(last, "")
        reasons: list[str | None] = [None] * len(numbers)
        if not pc.any(held).as_py():
            return reasons
        rows = pa.table({str(i): c for i, c in enumerate(columns)}).filter(held).to_pylist()
        positions = np.flatnonzero(held.to_numpy(zero_copy_only=False))
        for position, row in zip(positions, rows, strict=True):
            text = _row_text(list(row.values()), self.delimiter)
            reasons[position] = self._reason(int(numbers[position]), len(row), text)
        for index in range(len(columns) - 1):
            columns[index] = pc.if_else(held, pa.scalar(None, pa.string()), columns[index])
        return reasons

    def _invalid_rows(
        self, taken: list[tuple[int, int, str]], numbers: np.ndarray, expected: int
    ) -> pa.Table:
        """The rows Arrow could not fit, as rejects: their data columns null, their reason
        said. But a row of blank fields is blank (dropped later, as blank lines are), and in
        a file whose rows end with an extra empty field, a row without it is read."""
        values: list[list[str | None]] = [[] for _ in range(self.width)]
        reasons: list[str | None] = []
        for (_, count, text), number in zip(taken, numbers, strict=True):
            fields: list[str | None] = [None] * self.width
            read = _fields(text, self.delimiter) if count < expected else []
            if count == self.width and self.trailing:
                fields = list(read)
                reasons.append(None)
            elif read and all(not field.strip() for field in read):
                reasons.append(None)
            else:
                reasons.append(self._reason(int(number), count, text))
            for column, value in zip(values, fields, strict=True):
                column.append(value)
        return pa.table(
            {
                ROW_COLUMN: pa.array(numbers, pa.int64()),
                **{str(i): pa.array(v, pa.string()) for i, v in enumerate(values)},
                REJECT_COLUMN: pa.array(reasons, pa.string()),
            }
        )

    def _values(self, table: pa.Table) -> pa.Table:
        """Values stripped (with `strip`) and the null markers read as null."""
        markers = pa.array(self.settings.null_markers, pa.string())
        for index in range(1, table.num_columns - 1):
            column = table.column(index)
            if self.settings.strip:
                column = pc.utf8_trim_whitespace(column)
            if len(markers):
                column = pc.if_else(
                    pc.is_in(column, value_set=markers), pa.scalar(None, pa.string()), column
                )
            table = table.set_column(index, table.field(index), column)
        return table


def _filled(table: pa.Table) -> pa.ChunkedArray:
    """Whether each row has a field that is not blank."""
    filled = pa.chunked_array([pa.array([False] * table.num_rows)])
    for column in table.columns:
        filled = pc.or_(filled, pc.not_equal(pc.utf8_trim_whitespace(column), ""))
    return filled
