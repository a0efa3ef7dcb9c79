"""An .xls checked as calamine will read it: the OLE compound file (just enough of MS-CFB to
find the Workbook stream) and its BIFF records, every sheet's grid and declared size."""

import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple

from ingest_assets.parsers.workbook_budget import Budget, Refused, refuse_grid

OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
FREESECT, ENDOFCHAIN = 0xFFFFFFFF, 0xFFFFFFFE
# cell records calamine keeps (row u16, column u16 first); blanks are not kept
CELL_RECORDS = frozenset(
    {0x0203, 0x0204, 0x0205, 0x027E, 0x00FD, 0x0006, 0x00D6}
    | {0x0002, 0x0003, 0x0004, 0x0005, 0x0206, 0x0406}  # BIFF2-4 numbers, labels, formulas
)
MULRK, DIMENSIONS, BOUNDSHEET, SST, EOF = 0x00BD, 0x0200, 0x0085, 0x00FC, 0x000A


class Entry(NamedTuple):
    """An entry of the OLE directory: a stream's name, first sector and size."""

    name: str
    start: int
    size: int


class Sheet(NamedTuple):
    name: str
    position: int  # of its BOF record in the Workbook stream


class SheetExtent(NamedTuple):
    declared: int  # cells its DIMENSIONS records declare
    last_row: int  # -1: no cell
    last_column: int
    values: int  # cells with a value


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
            refuse_grid(where, last_row + 1, last_column + 1, budget)
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
            for entry in entries:
                if entry.name == wanted:
                    return ole.stream(entry.start, entry.size, entries[0])
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
    def _walk(start: int, following: Callable[[int], int], limit: int) -> Iterator[int]:
        sector, steps = start, 0
        while sector not in (FREESECT, ENDOFCHAIN):
            steps += 1
            if steps > limit:
                raise ValueError("a sector chain is longer than the file (it loops)")
            yield sector
            sector = following(sector)

    def _chain(self, start: int, fat: list[int], read: Callable[[int], bytes], limit: int) -> bytes:
        def following(sector: int) -> int:
            if sector >= len(fat):
                raise ValueError(f"sector {sector} is not in the allocation table")
            return fat[sector]

        return b"".join(read(sector) for sector in self._walk(start, following, limit))

    def directory(self) -> list[Entry]:
        raw = self._chain(self.dir_start, self.fat, self._sector, self.sectors)
        entries: list[Entry] = []
        for offset in range(0, len(raw) - 127, 128):
            name = raw[offset : offset + 64].decode("utf-16-le", "ignore").split("\0")[0]
            start, size = struct.unpack_from("<IQ", raw, offset + 116)
            entries.append(Entry(name, start, size if self.size == 4096 else size & 0xFFFFFFFF))
        if not entries:
            raise ValueError("the directory is empty")
        return entries

    def stream(self, start: int, size: int, root: Entry) -> bytes:
        """A stream of 4 KiB or more is in the file's sectors, a smaller one in the mini
        stream (the root entry's) in 64-byte sectors, as calamine reads them."""
        if size >= 4096:
            return self._chain(start, self.fat, self._sector, self.sectors)[:size]
        mini = self._chain(root.start, self.fat, self._sector, self.sectors)[: root.size]
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


def _globals(stream: bytes) -> tuple[list[Sheet], int]:
    """The sheets and the shared strings the workbook declares."""
    sheets: list[Sheet] = []
    strings = 0
    for kind, body in _records(stream, 0):
        if kind == BOUNDSHEET and len(body) >= 6:
            (position,) = struct.unpack_from("<I", body)
            sheets.append(Sheet(_sheet_name(body, len(sheets)), position))
        elif kind == SST and len(body) >= 8:
            strings = max(strings, struct.unpack_from("<i", body, 4)[0])
    return sheets, strings


def _sheet_name(body: bytes, index: int) -> str:
    if len(body) < 8:
        return f"#{index + 1}"
    length, flags = body[6], body[7]
    text = body[8 : 8 + length * 2] if flags & 1 else body[8 : 8 + length]
    return text.decode("utf-16-le" if flags & 1 else "latin-1", "replace") or f"#{index + 1}"


def _sheet_extent(stream: bytes, position: int) -> SheetExtent:
    """What one sheet declares and holds."""
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
    return SheetExtent(declared, last_row, last_column, values)


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
