"""Arrow columns built without a Python list: an array made from a Python `range` or list costs
about 0.5 s a million rows. Pure: no pandas, no Dagster."""

import numpy as np
import pyarrow as pa


def row_numbers(first: int, count: int) -> pa.Array:
    """first, first + 1, ... as int64."""
    return pa.array(np.arange(first, first + count, dtype=np.int64))
