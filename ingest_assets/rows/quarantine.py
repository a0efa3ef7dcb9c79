"""The quarantine table: rejected rows as the source has them (values as text), where in the
source they are (`source_ref`: a row, or a spreadsheet cell) and why (`reason_code`, `reason`).
Pure: no Dagster, no I/O.
"""

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ingest_assets.parsers.base import CELL_COLUMN, HIDDEN_COLUMNS, ROW_COLUMN, CellMap
from ingest_assets.rows.convert import text_of

REASON, REASON_CODE, SOURCE_REF = "reason", "reason_code", "source_ref"  # quarantine columns
CONFLICTING_DUPLICATE = "conflicting_duplicate"  # the reason code of a key with two values


def _source_ref(row: int, column: str | None, cell: str | None, cells: CellMap | None) -> str:
    """Where a rejected row is in the source: its cell, its row in a sheet, or its row."""
    if cell:
        return cell
    if cells is None or cells.get("sheet") is None:
        return f"row {row}"
    sheet, letters = cells["sheet"], cells.get("columns", {})
    return f"'{sheet}'!{letters[column]}{row}" if column in letters else f"'{sheet}'!row {row}"


def rejected_rows(
    rows: pa.Table,
    reasons: Sequence[str],
    codes: Sequence[str],
    columns: Sequence[str | None],
    cells: CellMap | None,
) -> pa.Table:
    """The quarantine table: source row, where in the source, why, and the values as text."""
    row_numbers = rows[ROW_COLUMN].cast(pa.int64()).to_pylist()
    cell_refs = (
        rows[CELL_COLUMN].to_pylist()
        if CELL_COLUMN in rows.column_names
        else [None] * rows.num_rows
    )
    refs = [
        _source_ref(n, c, cell, cells)
        for n, c, cell in zip(row_numbers, columns, cell_refs, strict=True)
    ]
    data = {
        ROW_COLUMN: pa.array(row_numbers, pa.int64()),
        SOURCE_REF: pa.array(refs, pa.string()),
        REASON_CODE: pa.array([str(c) for c in codes], pa.string()),
        REASON: pa.array([str(r) for r in reasons], pa.string()),
    }
    for name in rows.column_names:
        if name not in HIDDEN_COLUMNS:
            data[name] = text_of(rows[name])
    return pa.table(data)


def conflict_reasons(groups: Iterable[Sequence[int]], row_of: Mapping[int, int]) -> dict[int, str]:
    """The reason of each row of a key seen with different values, by position: `groups` holds
    the positions of each such key's rows, in order, and `row_of` their source row numbers."""
    reasons: dict[int, str] = {}
    for positions in groups:
        rows = ", ".join(str(row_of[p]) for p in positions)
        reasons.update(
            dict.fromkeys(positions, f"primary key repeated with different values (rows {rows})")
        )
    return reasons


def conflicting_rows(source: pa.Table, reasons: Sequence[str], cells: CellMap | None) -> pa.Table:
    """The quarantine table of the `source` rows of keys seen with different values."""
    count = source.num_rows
    return rejected_rows(source, reasons, [CONFLICTING_DUPLICATE] * count, [None] * count, cells)


class Rejections:
    """Why each row is rejected (the first reason found), with a code and the offending column."""

    def __init__(self, rows: int):
        self.reason = np.full(rows, None, dtype=object)
        self.code = np.full(rows, None, dtype=object)
        self.column = np.full(rows, None, dtype=object)
        self.flagged = np.zeros(rows, dtype=bool)

    def add(
        self,
        positions: np.ndarray,
        reason: str | list[str],
        code: str | list[str],
        column: str | None,
    ) -> None:
        """Rows at `positions` rejected, with a reason and code each (or one for all), unless
        they were already."""
        if not len(positions):
            return
        reasons = np.full(len(positions), None, dtype=object)
        reasons[:] = reason if isinstance(reason, list) else [reason] * len(positions)
        codes = np.full(len(positions), None, dtype=object)
        codes[:] = code if isinstance(code, list) else [code] * len(positions)
        new = ~self.flagged[positions]
        chosen = positions[new]
        self.flagged[chosen] = True
        self.reason[chosen] = reasons[new]
        self.code[chosen] = codes[new]
        self.column[chosen] = column

    def bad(self) -> np.ndarray:
        return self.flagged

    def table(self, source: pa.Table, cells: CellMap | None) -> pa.Table:
        positions = np.flatnonzero(self.bad())
        rows = source.take(pa.array(positions, pa.int64()))
        return rejected_rows(
            rows,
            self.reason[positions].tolist(),
            self.code[positions].tolist(),
            self.column[positions].tolist(),
            cells,
        )
