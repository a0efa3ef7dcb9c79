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
import zipfile

from ingest_assets.parsers.base import ParseContext
from ingest_assets.parsers.workbook_budget import Budget, Refused
from ingest_assets.parsers.workbook_xls import OLE_MAGIC, check_xls
from ingest_assets.parsers.workbook_xlsx import check_xlsx


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
    ole = data[:8] == OLE_MAGIC
    if ole:
        check_xls(data, budget)
    if zipfile.is_zipfile(io.BytesIO(data)):  # (an .xls may hold a zip: its theme)
        check_xlsx(data, budget, embedded=ole)
