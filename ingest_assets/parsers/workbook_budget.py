"""The budget a workbook is checked against, and the refusal when it is over.

One budget bounds both the archive and the grid: `source.inflated_limit` is what the archive may
inflate to, and what a sheet's grid may cost at CELL_BYTES a cell.
"""

from dataclasses import dataclass

from ingest_assets.parsers.columns import column_letters
from ingest_resources.errors import DataError

# What one grid cell costs from calamine to the DataFrame: 32 bytes in Rust's grid (an .xls
# sheet's is cloned when read: 64), 8 for its slot in Python's row list, 8 more in pandas'
# converted rows and its object column (measured: 65,536 x 256 .xls cells peak at 1.5 GB).
CELL_BYTES = 100


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


def cell_name(row: int, column: int) -> str:
    """(0, 0) -> A1."""
    return f"{column_letters(column)}{row + 1}"


def refuse_grid(where: str, rows: int, columns: int, budget: Budget) -> None:
    """A sheet's grid is A1 to its last row and column with a value, whatever lies between."""
    if rows * columns > budget.cells:
        last = cell_name(rows - 1, columns - 1)
        raise Refused(
            f"{where} has a value at {last}: its grid A1:{last} is {rows * columns:,} cells "
            f"({rows:,} rows x {columns:,} columns), over {budget.describe_cells()}"
        )
