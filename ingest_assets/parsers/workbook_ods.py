"""An OpenDocument spreadsheet (.ods) checked as calamine will read it: calamine reads every
sheet of `content.xml` when it opens the file, and materializes what the XML repeats.

calamine's rules (ods.rs): a `<table:table-row>` is read once, its cells into one list: a
cell with a value (any `office:value-type`, or a formula) is pushed as many times as its
`table:number-columns-repeated` says, empty cells only when a cell with a value follows them.
Each sheet then becomes a grid from A1 to its last row and column with a value, a row pushed
as many times as its `table:number-rows-repeated` says, empty rows between too (python-calamine
pads the grid from A1). A `<text:s text:c="n"/>` in a text cell is n spaces. So a few hundred
bytes of XML can ask for billions of cells or bytes: the scan counts them, in pieces as the
member inflates, and refuses past the budget.
"""

import re

from ingest_assets.parsers.workbook_budget import Budget, Refused
from ingest_assets.parsers.workbook_xlsx_cells import SheetScan

CONTENT = "content.xml"
TAG = re.compile(
    rb"<(/?)(table:table|table:table-row|table:table-cell|table:covered-table-cell|text:s)"
    rb"(?=[\s/>])([^>]*)>"
)
ROWS_REPEATED = re.compile(rb"""table:number-rows-repeated\s*=\s*["']\s*([0-9]+)""")
COLUMNS_REPEATED = re.compile(rb"""table:number-columns-repeated\s*=\s*["']\s*([0-9]+)""")
SPACES = re.compile(rb"""text:c\s*=\s*["']\s*([0-9]+)""")
VALUED = re.compile(rb"(?:office:value-type|table:formula)\s*=")


def is_ods(names: set[str]) -> bool:
    """Whether calamine reads a zip with these members (lower case) as OpenDocument: it has a
    content.xml and is neither .xlsx nor .xlsb (which calamine tries first)."""
    return CONTENT in names and not names & {"xl/workbook.xml", "xl/workbook.bin"}


def _count(pattern: re.Pattern[bytes], attributes: bytes) -> int:
    found = pattern.search(attributes)
    return int(found.group(1)) if found else 1


class OdsScan(SheetScan):
    """The cells and spaces `content.xml` asks calamine for, fed in pieces (`feed`, then
    `finish`); a member other than content.xml is only inflated (calamine reads no cell
    from it)."""

    def __init__(self, member: str, budget: Budget) -> None:
        super().__init__(member, budget)
        self.content = member.lower() == CONTENT
        self.cells = 0  # the sheets' grids so far, and the current sheet's rows as read
        self.spaces = 0
        self._start_sheet()

    def _start_sheet(self) -> None:
        self.rows = self.last_row_with_value = self.widest = self.read = 0
        self._start_row(1)

    def _start_row(self, repeated: int) -> None:
        self.repeated, self.width, self.empty = repeated, 0, 0

    def finish(self) -> bool:
        self._scan(self.pending)
        self.pending = b""
        return False

    def _scan(self, text: bytes) -> None:
        if not self.content or not text:
            return
        for closing, name, attributes in TAG.findall(text):
            if name == b"text:s":
                self.spaces += 0 if closing else _count(SPACES, attributes)
            elif name == b"table:table" and closing:
                self._end_sheet()
            elif name == b"table:table":
                self._start_sheet()
            elif name == b"table:table-row":
                if not closing:
                    self._start_row(_count(ROWS_REPEATED, attributes))
                if closing or attributes.endswith(b"/"):
                    self._end_row()
            elif not closing:
                self._cell(attributes)
        self._refuse_over_budget()

    def _cell(self, attributes: bytes) -> None:
        repeated = _count(COLUMNS_REPEATED, attributes)
        if VALUED.search(attributes):
            self.width += self.empty + repeated
            self.empty = 0
        else:
            self.empty += repeated

    def _end_row(self) -> None:
        self.rows += self.repeated
        self.read += self.width
        if self.width:
            self.last_row_with_value = self.rows
            self.widest = max(self.widest, self.width)
        self._start_row(1)

    def _end_sheet(self) -> None:
        self.cells += self.last_row_with_value * self.widest
        self._start_sheet()

    def _refuse_over_budget(self) -> None:
        cells = self.cells + self.read + self.width + self.last_row_with_value * self.widest
        if cells > self.budget.cells:
            raise Refused(
                f"member {self.member!r} asks for {cells:,} cells or more (repeated rows and "
                f"columns counted, sheets from A1 to their last value), over "
                f"{self.budget.describe_cells()}"
            )
        if self.spaces > self.budget.inflated:
            raise Refused(
                f"member {self.member!r} asks for {self.spaces:,} spaces or more (<text:s "
                f"text:c>), over {self.budget.describe()}"
            )
