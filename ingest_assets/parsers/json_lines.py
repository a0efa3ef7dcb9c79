"""`jsonl` (JSON Lines): one JSON object per line, read line by line, in batches.

Blank lines are skipped; `_row` is the line's number in the file. A line that is not JSON,
or not an object, is a reject row (`_rejected` = "invalid_json_line: line 7 is not JSON
...") and the rest is read. Nested objects are flattened as `json_records` does (`a.b`),
lists kept as JSON text.

Two passes over the file keep memory bounded and every batch of one schema: the first
settles the encoding (charset.candidates: a BOM, `source.encoding`, UTF-8, the HTTP charset,
then `auto`'s guess) and the columns with their types, the second builds the batches. A
column's type is what all its values share: bool, int64, float64 (integers and decimals
mixed), text; a column mixing other kinds is text, each value as JSON writes it.
"""

import codecs
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from ingest_assets.parsers.base import HIDDEN_COLUMNS, REJECT_COLUMN, ROW_COLUMN, ParseContext
from ingest_assets.parsers.charset import (
    DETECT_SAMPLE,
    Candidate,
    auto,
    candidates,
    detect,
    is_wide,
    noted_fallback,
    refusal,
)
from ingest_assets.parsers.json_records import flatten

REASON = "invalid_json_line"
WHAT = "JSON Lines file"
BATCH_ROWS = 65_536
BATCH_BYTES = 16 << 20  # of line text
MAX_COLUMNS = 10_000
EXCERPT = 120  # characters of a rejected line quoted in its reason
INT64 = (-(1 << 63), (1 << 63) - 1)
TYPES = {"null": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}

Opener = Callable[[], BinaryIO]


class _Undecodable(Exception):
    """A line that is not valid in the encoding tried."""

    def __init__(self, line: int, start: int | None, offset: int | None, found: bytes):
        where = f"byte {offset:,} (line {line})" if offset is not None else f"line {line}"
        super().__init__(f"{where} is {found!r}" if found else f"{where} is not valid")
        self.start = start  # where the line starts in the file, when known


def _lines(open_file: Opener, encoding: str) -> Iterator[tuple[int, str, int]]:
    """(number, text, size in bytes) of every line. Lines of an ASCII-compatible encoding are
    split on the byte `\\n` and decoded one by one (so a bad byte is found with its offset);
    UTF-16/32 (and any other) is read through a text reader."""
    if not _splits_on_newline_byte(encoding):
        with io.TextIOWrapper(open_file(), encoding=encoding, newline="\n") as text:
            number = 0
            try:
                for number, line in enumerate(text, start=1):
                    line = line.rstrip("\r\n")
                    yield number, line.lstrip("\ufeff") if number == 1 else line, len(line) * 2
            except UnicodeDecodeError:
                raise _Undecodable(number + 1, None, None, b"") from None
        return
    decode = codecs.getdecoder(encoding)
    with open_file() as file:
        offset = 0
        for number, raw in enumerate(file, start=1):
            try:
                line, _ = decode(raw)
            except UnicodeDecodeError as exc:
                found = raw[exc.start : exc.start + 4]
                raise _Undecodable(number, offset, offset + exc.start, found) from None
            offset += len(raw)
            line = line.rstrip("\r\n")
            yield number, line.lstrip("\ufeff") if number == 1 else line, len(raw)


def _splits_on_newline_byte(encoding: str) -> bool:
    """Whether the encoding writes a line break as the byte `\\n` and never uses that byte in
    another character (ASCII-compatible: UTF-8, Latin-1, Shift_JIS, ...; not UTF-16, EBCDIC)."""
    if codecs.lookup(encoding).name == "utf-8-sig":
        return True  # (its BOM, written before the first line only)
    try:
        return not is_wide(encoding) and codecs.encode("\n{}", encoding) == b"\n{}"
    except (UnicodeEncodeError, LookupError):
        return False


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


def _record(number: int, text: str) -> tuple[dict[str, object] | None, str | None]:
    """The line's flattened object, or why it is rejected ("invalid_json_line: ...")."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        found = f"is not JSON ({exc.msg}: column {exc.colno})"
    else:
        if isinstance(value, dict):
            try:
                return flatten(value), None
            except ValueError as exc:
                found = f"cannot be flattened ({exc})"
        else:
            kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
            found = f"is {kinds.get(type(value), 'a number')}, not an object"
    return None, f"{REASON}: line {number} {found}: {_excerpt(text)}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if INT64[0] <= value <= INT64[1] else "text"
    return "float" if isinstance(value, float) else "text"


def _merged(known: str, found: str) -> str:
    if known == found or found == "null":
        return known
    if known == "null":
        return found
    return "float" if {known, found} == {"int", "float"} else "text"


@dataclass
class Survey:
    """What the first pass found: the encoding, the columns and their kinds, any rejects."""

    encoding: str
    kinds: dict[str, str] = field(default_factory=dict)
    rejected: bool = False


def _survey(open_file: Opener, encoding: str, ctx: ParseContext) -> Survey:
    survey = Survey(encoding)
    for number, text, _ in _lines(open_file, encoding):
        if not text.strip():
            continue
        record, reason = _record(number, text)
        if record is None:
            survey.rejected = True
            continue
        for name, value in record.items():
            if name not in survey.kinds:
                if name in HIDDEN_COLUMNS:
                    raise ctx.error(f"line {number} has a field {name!r}, a name Ingest reserves")
                if len(survey.kinds) >= MAX_COLUMNS:
                    raise ctx.error(f"more than {MAX_COLUMNS:,} distinct fields (line {number})")
                survey.kinds[name] = "null"
            survey.kinds[name] = _merged(survey.kinds[name], _kind(value))
    return survey


def surveyed(open_file: Opener, ctx: ParseContext) -> Survey:
    """The first pass, with the first encoding that reads every line."""
    with open_file() as file:
        head = file.read(4)
    tried = candidates(head, ctx, utf8_first=True)
    failures: list[str] = []
    start = 0
    for index, candidate in enumerate(tried):
        try:
            survey = _survey(open_file, candidate.encoding, ctx)
        except _Undecodable as exc:
            if not failures:  # (auto's guess looks from the first line UTF-8 could not read)
                start = exc.start or 0
            failures.append(str(exc))
            continue
        noted_fallback(ctx, WHAT, tried[:index], candidate)
        return survey
    if auto(ctx, tried):
        with open_file() as file:  # from the first line that was not UTF-8
            file.seek(start)
            guessed = detect(file.read(DETECT_SAMPLE), ctx, WHAT)
        if guessed is not None:
            try:
                return _survey(open_file, guessed, ctx)
            except _Undecodable as exc:
                failures.append(str(exc))
                tried.append(Candidate(guessed, "charset-normalizer's guess"))
    raise refusal(ctx, WHAT, tried, failures[0])


def _value(value: object, kind: str) -> object:
    if value is None or kind in ("bool", "int"):
        return value
    if kind == "float":
        return float(value)  # type: ignore[arg-type]  # (an int or a float, by its kind)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _batch(
    rows: list[tuple[int, dict[str, object] | None, str | None]], survey: Survey
) -> pa.Table:
    arrays = [pa.array([number for number, _, _ in rows], type=pa.int64())]
    names = [ROW_COLUMN]
    if survey.rejected:
        arrays.append(pa.array([reason for _, _, reason in rows], type=pa.string()))
        names.append(REJECT_COLUMN)
    for name, kind in survey.kinds.items():
        values = [
            None if record is None else _value(record.get(name), kind) for _, record, _ in rows
        ]
        arrays.append(pa.array(values, type=TYPES.get(kind, pa.string())))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def read_jsonl(open_file: Opener, ctx: ParseContext) -> Iterator[pa.Table]:
    """The file's rows in batches of one schema (at least one batch, maybe empty)."""
    survey = surveyed(open_file, ctx)
    rows: list[tuple[int, dict[str, object] | None, str | None]] = []
    size = 0
    sent = False
    for number, text, length in _lines(open_file, survey.encoding):
        if not text.strip():
            continue
        record, reason = _record(number, text)
        rows.append((number, record, reason))
        size += length
        if len(rows) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield _batch(rows, survey)
            rows, size, sent = [], 0, True
    if rows or not sent:
        yield _batch(rows, survey)


def stream_jsonl(path: Path, ctx: ParseContext) -> Iterator[pa.Table]:
    return read_jsonl(lambda: path.open("rb"), ctx)


def parse_jsonl(data: bytes, ctx: ParseContext) -> pa.Table:
    """The whole file at once (the parser function, for `parse_raw`)."""
    return pa.concat_tables(read_jsonl(lambda: io.BytesIO(data), ctx))
