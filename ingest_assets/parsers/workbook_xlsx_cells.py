"""An .xlsx sheet's cells as calamine will read them, scanned in pieces as the member inflates:
the last row and column with a value (its grid is A1 to there), the cells with a value and the
shared strings, each refused as soon as it is over the budget."""

import operator
import re

from ingest_assets.parsers.columns import column_index
from ingest_assets.parsers.workbook_budget import Budget, Refused, refuse_grid

LONGEST_TAG = 1 << 20
EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384

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
    return column_index(letters.decode("ascii"))


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
                    references = [self._reference(v, row_only=True) for v in self._refs(attributes)]
                    rows = [row for row, _ in references if row is not None]
                    if rows:
                        self.row = max(rows)
                if closing or empty:
                    self.row, self.column = self.row + 1, 0
            elif not closing:
                self._exact_cell(attributes, empty)

    def _exact_cell(self, attributes: bytes, empty: bool) -> None:
        references = [self._reference(v) for v in self._refs(attributes)]
        found = [(r, c) for r, c in references if r is not None and c is not None]
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
            refuse_grid(
                f"sheet part {self.member!r}", self.last_row + 1, self.last_column + 1, self.budget
            )
