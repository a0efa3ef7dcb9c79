"""Workbooks are checked before calamine reads them, because calamine allocates what a file claims.

python-calamine (Rust) sizes its memory from the file itself: a sheet becomes a grid from its
first to its last cell with a value (and pandas' read fills it from A1), the shared strings
reserve the `uniqueCount` they declare, an .xls DIMENSIONS record reserves rows x columns, and
every zip member inflates to whatever it holds. A 1.6 KB .xlsx holding two cells, A1 and
XFD1048576, asks for 512 GiB; and a failed allocation in Rust aborts the whole process (no
exception, no Dagster error), so only a check made before the read can turn it into an error.

One budget bounds both: `source.inflated_limit` (`source.max_inflated_bytes`, default 20 x
`source.max_bytes`) is what the archive may inflate to, and what a sheet's grid may cost at
CELL_BYTES a cell. The check reads the archive with `zipfile`'s directory but inflates each
member itself, in pieces, never trusting the sizes it declares; a sheet's cell references are
scanned in the same pass (a fast pass for sheets laid out as Excel writes them, an exact one
mirroring calamine's rules otherwise).
"""

import io
import operator
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ingest_assets.parsers.base import ParseContext
from ingest_resources.errors import DataError

# What one grid cell costs from calamine to the DataFrame: 32 bytes in Rust's grid (an .xls
# sheet's is cloned when read: 64), 8 for its slot in Python's row list, 8 more in pandas'
# converted rows and its object column (measured: 65,536 x 256 .xls cells peak at 1.5 GB).
CELL_BYTES = 100
MAX_RATIO = 1000  # deflate's best is about 1032:1: nothing real comes near it
RATIO_FLOOR = 1 << 20  # a member under 1 MB inflated is never refused for its ratio
MAX_MEMBERS = 10_000
MAX_DIRECTORY = MAX_MEMBERS * 300  # bytes of central directory: 46 a member, and its name
PIECE = 1 << 20  # inflated bytes handled at a time
LONGEST_TAG = 1 << 20
EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


class Refused(DataError):
    """The workbook would take more than the budget to read (or cannot be checked)."""


@dataclass(frozen=True)
class Budget:
    inflated: int  # bytes

    @property
    def cells(self) -> int:
        return max(self.inflated // CELL_BYTES, 1)

    def describe(self) -> str:
        return f"source.max_inflated_bytes ({self.inflated:,} bytes; default 20 x source.max_bytes)"

    def describe_cells(self) -> str:
        return (
            f"the {self.cells:,} cells that {self.describe()} allows at about {CELL_BYTES} "
            "bytes a cell"
        )


def refuse_hostile_workbook(data: bytes, ctx: ParseContext) -> None:
    """Call before calamine opens `data`: a ParseError naming the dataset, the file, the part
    and the limit if reading it would take more than `source.inflated_limit`."""
    try:
        check_workbook(data, Budget(ctx.config.source.inflated_limit))
    except Refused as exc:
        raise ctx.error(f"{exc}; refused before reading, so memory stays bounded") from None


def reader_failed(exc: BaseException) -> bool:
    """An error of the reader's: an Exception, or a Rust panic (pyo3's PanicException derives
    from BaseException, so `except Exception` lets it through the parser)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def check_workbook(data: bytes, budget: Budget) -> None:
    """Raise Refused if reading `data` as a workbook would take more than `budget`. calamine
    tries .xls (an OLE file) first, then the zip kinds, whatever the declared format: so is
    every kind the bytes could be read as checked."""
    if data[:8] == OLE_MAGIC:
        check_xls(data, budget)
    if zipfile.is_zipfile(io.BytesIO(data)):
        check_xlsx(data, budget)


def cell_name(row: int, column: int) -> str:
    """(0, 0) -> A1."""
    letters, number = "", column + 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


def _refuse_grid(where: str, rows: int, columns: int, budget: Budget) -> None:
    """A sheet's grid is A1 to its last row and column with a value, whatever lies between."""
    if rows * columns > budget.cells:
        last = cell_name(rows - 1, columns - 1)
        raise Refused(
            f"{where} has a value at {last}: its grid A1:{last} is {rows * columns:,} cells "
            f"({rows:,} rows x {columns:,} columns), over {budget.describe_cells()}"
        )


# --- .xlsx: the zip archive ----------------------------------------------------------------


def check_xlsx(data: bytes, budget: Budget) -> None:
    _refuse_many_members(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise Refused(f"the workbook is not a readable zip archive: {exc}") from None
    with archive:
        members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise Refused(f"the workbook archive holds {len(members):,} members, over {MAX_MEMBERS:,}")
    _refuse_other_kinds({info.filename.lower() for info in members})
    _refuse_declared_sizes(members, budget)
    for info in members:  # no member inflates past its declared size: the sum stays bounded
        _refuse_unreadable(info)
        _check_member(data, info, budget)


def _refuse_many_members(data: bytes) -> None:
    """zipfile lists every member its central directory holds (about 500 bytes each, however
    many the end record claims): the directory's size is checked before it is listed."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return  # zipfile finds no archive either, and says so
    (size,) = struct.unpack_from("<I", data, end + 12)
    locator = end - 20
    if size == 0xFFFFFFFF and locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if data[record : record + 4] == b"PK\x06\x06" and record + 48 <= len(data):
            (size,) = struct.unpack_from("<Q", data, record + 40)
    if size > MAX_DIRECTORY:
        raise Refused(
            f"the workbook archive's directory takes {size:,} bytes, over the {MAX_DIRECTORY:,} "
            f"that {MAX_MEMBERS:,} members need"
        )


def _refuse_other_kinds(names: set[str]) -> None:
    """calamine reads a zip as .xlsx, else as .xlsb, else as OpenDocument (finding members by
    name in any case): only .xlsx is checked (and documented), so the other kinds are refused
    rather than read unchecked."""
    other = sorted(names & {"xl/workbook.bin", "content.xml"})
    if other:
        raise Refused(
            f"the archive holds {other[0]!r}: an .xlsb or OpenDocument workbook; only .xlsx "
            "(Office Open XML) and .xls workbooks are read"
        )
    if "xl/workbook.xml" not in names:
        raise Refused("the zip archive has no xl/workbook.xml: it is not an .xlsx workbook")


def _refuse_declared_sizes(members: list[zipfile.ZipInfo], budget: Budget) -> None:
    declared = sum(info.file_size for info in members)
    if declared > budget.inflated:
        largest = max(members, key=lambda info: info.file_size)
        raise Refused(
            f"the workbook's members declare {declared:,} bytes inflated (the largest, "
            f"{largest.filename!r}, {largest.file_size:,} bytes), over {budget.describe()}"
        )
    for info in members:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise Refused(
                f"member {info.filename!r} inflates {info.compress_size:,} bytes to "
                f"{info.file_size:,} (over {MAX_RATIO}:1): a decompression bomb"
            )


def _refuse_unreadable(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise Refused(f"member {info.filename!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Refused(
            f"member {info.filename!r} uses compression method {info.compress_type}; only "
            "stored and deflated members are read"
        )


def _check_member(data: bytes, info: zipfile.ZipInfo, budget: Budget) -> None:
    """Inflate the member, checking its declared size and CRC, and scan its cells. A member
    that may hold more cell tags than the budget (4 bytes each at least) is first counted
    alone, which is cheap, so that a bomb of cells is refused before the references are read;
    a sheet the fast scan cannot vouch for is then scanned exactly."""
    strings = info.filename.lower() == SHARED_STRINGS
    if info.file_size // 4 > budget.cells:
        _scan_member(data, info, SheetScan(info.filename, budget, strings, positions=False))
    scan = SheetScan(info.filename, budget, strings)
    _scan_member(data, info, scan)
    if scan.finish():
        exact = SheetScan(info.filename, budget, strings, exact=True)
        _scan_member(data, info, exact)
        exact.finish()


def _scan_member(data: bytes, info: zipfile.ZipInfo, scan: "SheetScan") -> None:
    """Feed the member to `scan` as it inflates, stopping as soon as it holds more than it
    declares; then its size and CRC must be the declared ones."""
    size = 0
    crc = 0
    for piece in _inflated(data, info):
        size += len(piece)
        if size > info.file_size:
            raise Refused(
                f"member {info.filename!r} inflates past the {info.file_size:,} bytes it "
                "declares: its sizes are forged"
            )
        crc = zlib.crc32(piece, crc)
        scan.feed(piece)
    if size != info.file_size or crc != info.CRC:
        raise Refused(
            f"member {info.filename!r} holds {size:,} bytes (CRC {crc:08x}), not the "
            f"{info.file_size:,} (CRC {info.CRC:08x}) it declares: it is damaged or forged"
        )


def _inflated(data: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's bytes in pieces of at most PIECE, inflated from its own local entry
    (zipfile would stop at the declared size; calamine's reader need not)."""
    view = _compressed(data, info)
    if info.compress_type == zipfile.ZIP_STORED or not view:
        for start in range(0, len(view), PIECE):
            yield bytes(view[start : start + PIECE])
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for start in range(0, len(view), PIECE):
            yield inflater.decompress(view[start : start + PIECE], PIECE)
            while inflater.unconsumed_tail and not inflater.eof:
                yield inflater.decompress(inflater.unconsumed_tail, PIECE)
            if inflater.eof:
                break
        rest = inflater.flush()
    except zlib.error as exc:
        raise Refused(f"member {info.filename!r} is not valid deflate data: {exc}") from None
    if rest:
        yield rest
    if not inflater.eof:
        raise Refused(f"member {info.filename!r} is truncated (its deflate stream does not end)")


def _compressed(data: bytes, info: zipfile.ZipInfo) -> memoryview:
    offset = info.header_offset
    if data[offset : offset + 4] != b"PK\x03\x04" or offset + 30 > len(data):
        raise Refused(f"member {info.filename!r} has no local entry where the directory says")
    name_length, extra_length = struct.unpack_from("<HH", data, offset + 26)
    start = offset + 30 + name_length + extra_length
    if start + info.compress_size > len(data):
        raise Refused(f"member {info.filename!r} runs past the end of the archive")
    return memoryview(data)[start : start + info.compress_size]


# --- .xlsx: a sheet's cells ----------------------------------------------------------------

# fast pass: every cell tag written as Excel writes it, `<c r="B7"` first and its only `r`
# (calamine takes a cell's last `r`; a tag written any other way asks for the exact pass)
FAST_REF = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"(?!(?:[^>]*["\'\s])?r\s*=)')
OTHER_C = re.compile(rb"<c[\w.\-:]")  # <col>, <cfRule>, ...: not cells
PREFIXED_C = re.compile(rb":c[\s/>]")
LETTERS, DIGITS = operator.itemgetter(0), operator.itemgetter(1)
# exact pass: calamine's rules, whatever the layout
TAG = re.compile(rb"<(/?)(?:[A-Za-z_][\w.\-]*:)?(row|c)(?=[\s/>])([^>]*)>")
# an `r` attribute after a space or right after the last one's quote (quick-xml takes both)
R_ATTR = re.compile(rb"""(?<![^"'\s])r\s*=\s*(?:"([^"]*)"|'([^']*)')""")
CELL_REF = re.compile(rb"([A-Za-z]*)([0-9]+)")
# shared strings (calamine reads them from this member, named in any case): it reserves
# `uniqueCount` of them before reading one
SHARED_STRINGS = "xl/sharedstrings.xml"
SST_TAG = re.compile(rb"sst(?=[\s/>])([^>]*)>")
UNIQUE_COUNT = re.compile(rb"""uniqueCount\s*=\s*["']\s*([0-9]+)""")


def _column_number(letters: bytes) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + char - 64
    return number - 1


class SheetScan:
    """The cells a member holds, as calamine will read them: the last row and column with a
    value (its grid is A1 to there) and how many cells have a value, fed in pieces.

    The fast pass trusts `<c r="...">` references (any cell tag written otherwise, or a
    grid over budget that may come from empty cells, asks for the exact pass: `finish()`
    returns True); the exact pass follows calamine's rules: a `<row r>` sets the row, `</row>`
    moves to the next, a cell without `r` takes the next column, and only a cell with
    content (not `<c .../>`) holds a value."""

    def __init__(
        self,
        member: str,
        budget: Budget,
        strings: bool = False,
        exact: bool = False,
        positions: bool = True,
    ) -> None:
        self.member, self.budget, self.exact = member, budget, exact
        self.shared_strings, self.positions = strings, positions
        self.needs_exact = False
        self.pending = b""
        self.values = self.strings = 0
        self.last_row = self.last_column = -1
        self.row = self.column = 0  # calamine's position for a cell without `r`

    def feed(self, piece: bytes) -> None:
        text = self.pending + piece
        cut = text.rfind(b"<")
        if cut >= 0 and text.find(b">", cut) < 0:  # a tag cut in two: keep its start
            text, self.pending = text[:cut], text[cut:]
        else:
            self.pending = b""
        if len(self.pending) > LONGEST_TAG:
            raise Refused(f"member {self.member!r} has an XML tag over {LONGEST_TAG:,} bytes")
        self._scan(text)

    def finish(self) -> bool:
        """Scan what is left; True if the exact pass must vouch for the member."""
        self._scan(self.pending)
        self.pending = b""
        if self.exact or self.needs_exact:
            return not self.exact
        # over budget, the far cell may yet be an empty one, which calamine leaves out
        grid = (self.last_row + 1) * (self.last_column + 1)
        return self.last_row >= 0 and grid > self.budget.cells

    def _scan(self, text: bytes) -> None:
        if not text:
            return
        if self.shared_strings:
            self._count_strings(text)
        if self.exact:
            self._exact(text)
        else:
            self.values += text.count(b"</c>") + (text.count(b":c>") if b":c" in text else 0)
            if self.positions and not self.needs_exact:
                self._fast(text)
        self._refuse_over_budget()

    def _count_strings(self, text: bytes) -> None:
        self.strings += text.count(b"<si") + text.count(b":si")
        for match in SST_TAG.finditer(text):
            for declared in UNIQUE_COUNT.findall(match.group(1)):
                if int(declared) > self.budget.cells:
                    raise Refused(
                        f"member {self.member!r} declares uniqueCount={int(declared):,} shared "
                        f"strings, over {self.budget.describe_cells()}"
                    )

    def _fast(self, text: bytes) -> None:
        refs = FAST_REF.findall(text)
        tags = text.count(b"<c")  # cell tags, and others named c... (counted apart if need be)
        if (tags != len(refs) and tags != len(refs) + len(OTHER_C.findall(text))) or (
            PREFIXED_C.search(text)
        ):
            self.needs_exact = True
            return
        if refs:
            self.last_row = max(self.last_row, max(map(int, map(DIGITS, refs))) - 1)
            self.last_column = max(self.last_column, *map(_column_number, set(map(LETTERS, refs))))

    def _exact(self, text: bytes) -> None:
        for closing, name, attributes in TAG.findall(text):
            empty = attributes.endswith(b"/")
            if name == b"row":
                if not closing:
                    rows = [self._reference(v, row_only=True)[0] for v in self._refs(attributes)]
                    if any(r is not None for r in rows):
                        self.row = max(r for r in rows if r is not None)
                if closing or empty:
                    self.row, self.column = self.row + 1, 0
            elif not closing:
                self._exact_cell(attributes, empty)

    def _exact_cell(self, attributes: bytes, empty: bool) -> None:
        found = [self._reference(v) for v in self._refs(attributes)]
        found = [(r, c) for r, c in found if r is not None and c is not None]
        if found:  # a repeated `r`: the farthest, whichever calamine keeps
            row, column = max(r for r, _ in found), max(c for _, c in found)
        else:  # no `r`, or one calamine fails on (no cell: the read stops there)
            row, column = self.row, self.column
        self.column = column + 1
        if not empty:
            self.values += 1
            self.last_row = max(self.last_row, row)
            self.last_column = max(self.last_column, column)

    @staticmethod
    def _refs(attributes: bytes) -> list[bytes]:
        return [double or single for double, single in R_ATTR.findall(attributes)]

    def _reference(self, value: bytes, row_only: bool = False) -> tuple[int | None, int | None]:
        """calamine's reading of `B7` (letters in either case, then digits): (6, 1); None
        where it fails (and reads no cell). Past Excel's last cell its arithmetic wraps
        around to anywhere: refused."""
        match = CELL_REF.fullmatch(value)
        if match is None or (not match.group(1) and not row_only):
            return None, None
        letters, digits = match.groups()
        if len(letters) > 3 or len(digits) > 7:
            raise self._past_last_cell(value)
        row, column = int(digits) - 1, (_column_number(letters) if letters else None)
        if row < 0:
            return None, None
        if row >= EXCEL_ROWS or (column or 0) >= EXCEL_COLUMNS:
            raise self._past_last_cell(value)
        return row, column

    def _past_last_cell(self, value: bytes) -> Refused:
        shown = value[:40].decode(errors="replace")
        return Refused(
            f"member {self.member!r} refers to cell {shown!r}, past Excel's last cell XFD1048576"
        )

    def _refuse_over_budget(self) -> None:
        cells = self.budget.cells
        if self.values > cells:
            raise Refused(
                f"member {self.member!r} holds {self.values:,} cells with values or more (counted "
                f"so far), over {self.budget.describe_cells()}"
            )
        if self.strings > cells:
            raise Refused(
                f"member {self.member!r} holds {self.strings:,} shared strings or more (counted "
                f"so far), over {self.budget.describe_cells()}"
            )
        if self.exact and self.last_row >= 0:
            _refuse_grid(
                f"sheet part {self.member!r}", self.last_row + 1, self.last_column + 1, self.budget
            )


# --- .xls: the OLE container and its BIFF records ------------------------------------------

FREESECT, ENDOFCHAIN = 0xFFFFFFFF, 0xFFFFFFFE
# cell records calamine keeps (row u16, column u16 first); blanks are not kept
CELL_RECORDS = frozenset(
    {0x0203, 0x0204, 0x0205, 0x027E, 0x00FD, 0x0006, 0x00D6}
    | {0x0002, 0x0003, 0x0004, 0x0005, 0x0206, 0x0406}  # BIFF2-4 numbers, labels, formulas
)
MULRK, DIMENSIONS, BOUNDSHEET, SST, EOF = 0x00BD, 0x0200, 0x0085, 0x00FC, 0x000A


def check_xls(data: bytes, budget: Budget) -> None:
    """calamine reads every sheet of an .xls when it opens it, each into its own grid, after
    reserving what each DIMENSIONS record declares: all of them count against the budget."""
    stream = _workbook_stream(data)
    sheets, strings = _globals(stream)
    if strings > budget.cells:
        raise Refused(
            f"the .xls declares {strings:,} shared strings, over {budget.describe_cells()}"
        )
    cells = values = 0
    for name, position in sheets:
        declared, last_row, last_column, held = _sheet_extent(stream, position)
        where = f".xls sheet {name!r}"
        if declared > budget.cells:
            raise Refused(
                f"{where} declares (DIMENSIONS) {declared:,} cells, over {budget.describe_cells()}"
            )
        if last_row >= 0:
            _refuse_grid(where, last_row + 1, last_column + 1, budget)
            cells += (last_row + 1) * (last_column + 1)
        values += held
        if max(cells, values) > budget.cells:
            raise Refused(
                f"the .xls sheets up to {name!r} hold {max(cells, values):,} cells, over "
                f"{budget.describe_cells()}"
            )


def _workbook_stream(data: bytes) -> bytes:
    """The `Workbook` (or BIFF5 `Book`) stream of the OLE compound file, as calamine finds it."""
    try:
        ole = _Ole(data)
        entries = ole.directory()
        for wanted in ("Workbook", "Book"):
            for name, start, size in entries:
                if name == wanted:
                    return ole.stream(start, size, entries[0])
    except (struct.error, IndexError, ValueError) as exc:
        raise Refused(f"cannot check the .xls container: {exc}") from None
    raise Refused("the .xls container has no Workbook stream")


class _Ole:
    """Just enough of MS-CFB to read one stream. No chain is followed further than the file
    has sectors, and an allocation table listing more sectors than the file holds (which
    calamine would build in memory all the same) is refused."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        shift, mini_shift = struct.unpack_from("<HH", data, 30)
        if shift not in (9, 12) or mini_shift != 6:
            raise ValueError(f"sector shifts {shift}/{mini_shift} are not 9 or 12 / 6")
        self.size = 1 << shift
        self.sectors = len(data) // self.size
        (self.dir_start,) = struct.unpack_from("<I", data, 48)
        self.minifat_start, _, difat_start, _ = struct.unpack_from("<IIII", data, 60)
        self.fat = self._allocation_table(difat_start)

    def _allocation_table(self, difat_start: int) -> list[int]:
        difat = list(struct.unpack_from("<109I", self.data, 76))
        per_sector = self.size // 4 - 1
        for sector in self._walk(difat_start, lambda _: difat.pop(), self.sectors):
            entries = struct.unpack_from(f"<{per_sector + 1}I", self._sector(sector))
            difat.extend(entries)  # the last one is the next DIFAT sector, popped by _walk
            if len(difat) > self.sectors + 2 * per_sector + 109:
                raise ValueError("its allocation table lists more sectors than the file holds")
        listed = [sector for sector in difat if sector not in (FREESECT, ENDOFCHAIN)]
        if len(listed) > self.sectors:
            raise ValueError(
                f"its allocation table lists {len(listed):,} sectors; the file holds "
                f"{self.sectors:,}"
            )
        fat: list[int] = []
        for sector in listed:
            fat.extend(struct.unpack_from(f"<{self.size // 4}I", self._sector(sector)))
        return fat

    def _sector(self, number: int) -> bytes:
        start = (number + 1) * self.size
        if start + self.size > len(self.data):
            raise ValueError(f"sector {number} is past the end of the file")
        return self.data[start : start + self.size]

    @staticmethod
    def _walk(start: int, following, limit: int) -> Iterator[int]:
        sector, steps = start, 0
        while sector not in (FREESECT, ENDOFCHAIN):
            steps += 1
            if steps > limit:
                raise ValueError("a sector chain is longer than the file (it loops)")
            yield sector
            sector = following(sector)

    def _chain(self, start: int, fat: list[int], read, limit: int) -> bytes:
        def following(sector: int) -> int:
            if sector >= len(fat):
                raise ValueError(f"sector {sector} is not in the allocation table")
            return fat[sector]

        return b"".join(read(sector) for sector in self._walk(start, following, limit))

    def directory(self) -> list[tuple[str, int, int]]:
        raw = self._chain(self.dir_start, self.fat, self._sector, self.sectors)
        entries = []
        for offset in range(0, len(raw) - 127, 128):
            name = raw[offset : offset + 64].decode("utf-16-le", "ignore").split("\0")[0]
            start, size = struct.unpack_from("<IQ", raw, offset + 116)
            entries.append((name, start, size if self.size == 4096 else size & 0xFFFFFFFF))
        if not entries:
            raise ValueError("the directory is empty")
        return entries

    def stream(self, start: int, size: int, root: tuple[str, int, int]) -> bytes:
        """A stream of 4 KiB or more is in the file's sectors, a smaller one in the mini
        stream (the root entry's) in 64-byte sectors, as calamine reads them."""
        if size >= 4096:
            return self._chain(start, self.fat, self._sector, self.sectors)[:size]
        mini = self._chain(root[1], self.fat, self._sector, self.sectors)[: root[2]]
        raw_minifat = self._chain(self.minifat_start, self.fat, self._sector, self.sectors)
        minifat = list(struct.unpack_from(f"<{len(raw_minifat) // 4}I", raw_minifat))

        def mini_sector(number: int) -> bytes:
            if (number + 1) * 64 > len(mini):
                raise ValueError(f"mini sector {number} is past the mini stream")
            return mini[number * 64 : number * 64 + 64]

        return self._chain(start, minifat, mini_sector, len(mini) // 64)[:size]


def _records(stream: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """BIFF records from `start` to the first EOF record, as calamine iterates them."""
    position = start
    while position + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, position)
        body = stream[position + 4 : position + 4 + length]
        if len(body) < length:
            return
        yield kind, body
        if kind == EOF:
            return
        position += 4 + length


def _globals(stream: bytes) -> tuple[list[tuple[str, int]], int]:
    """The sheets (name, stream offset) and the shared strings the workbook declares."""
    sheets, strings = [], 0
    for kind, body in _records(stream, 0):
        if kind == BOUNDSHEET and len(body) >= 6:
            (position,) = struct.unpack_from("<I", body)
            sheets.append((_sheet_name(body, len(sheets)), position))
        elif kind == SST and len(body) >= 8:
            strings = max(strings, struct.unpack_from("<i", body, 4)[0])
    return sheets, strings


def _sheet_name(body: bytes, index: int) -> str:
    if len(body) < 8:
        return f"#{index + 1}"
    length, flags = body[6], body[7]
    text = body[8 : 8 + length * 2] if flags & 1 else body[8 : 8 + length]
    return text.decode("utf-16-le" if flags & 1 else "latin-1", "replace") or f"#{index + 1}"


def _sheet_extent(stream: bytes, position: int) -> tuple[int, int, int, int]:
    """(cells DIMENSIONS declares, last row, last column, cells with a value) of one sheet."""
    declared, last_row, last_column, values = 0, -1, -1, 0
    for kind, body in _records(stream, position):
        if kind == DIMENSIONS:
            declared = max(declared, _declared_cells(body))
        elif kind == MULRK and len(body) >= 6:
            row, first = struct.unpack_from("<HH", body)
            (last,) = struct.unpack_from("<H", body, len(body) - 2)
            last_row, last_column = max(last_row, row), max(last_column, first, last)
            values += abs(last - first) + 1
        elif kind in CELL_RECORDS and len(body) >= 4:
            row, column = struct.unpack_from("<HH", body)
            last_row, last_column = max(last_row, row), max(last_column, column)
            values += 1
    return declared, last_row, last_column, values


def _declared_cells(body: bytes) -> int:
    """calamine reserves (last row - first row) x (last column - first column) cells, in u32
    arithmetic: a last before a first wraps around to about 2^32."""
    if len(body) == 10:
        first_row, last_row, first_column, last_column = struct.unpack_from("<HHHH", body)
    elif len(body) == 14:
        first_row, last_row, first_column, last_column = struct.unpack_from("<IIHH", body)
    else:
        return 0  # calamine refuses the record
    if last_row < 1 or last_column < 1:
        return 1
    rows, columns = last_row - first_row, last_column - first_column
    return (rows if rows > 0 else 1 << 32) * (columns if columns > 0 else 1 << 32)
