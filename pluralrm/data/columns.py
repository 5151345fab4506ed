"""Whole columns of a ``datasets.Dataset`` at Arrow speed.

``dataset[name]`` in ``datasets`` 5 is a lazy ``Column`` whose iteration formats one row at a
time (seconds per million rows); these helpers read the Arrow data instead, honouring any
``select``/``filter`` indices mapping.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def arrow_column(dataset, name: str) -> pa.ChunkedArray:
    """Column ``name`` of a ``datasets.Dataset`` as Arrow, rows in dataset order. ``[N]``."""
    return dataset.with_format("arrow")[name]


def value_codes(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a column's values, numbered in sorted value order.

    Sorted (not first-appearance) numbering makes the codes independent of row order.

    Args:
      values: ``[N]`` strings or numbers, no nulls.

    Returns:
      ``(uniques [U], codes [N] int64)`` with ``uniques[codes] == values``; ``uniques`` is an
      object array for strings.
    """
    uniques = pc.unique(values)
    uniques = uniques.take(pc.array_sort_indices(uniques))
    codes = pc.index_in(values, value_set=uniques).to_numpy(zero_copy_only=False).astype(np.int64)
    numeric = pa.types.is_integer(uniques.type) or pa.types.is_floating(uniques.type)
    return np.asarray(uniques.to_pylist(), dtype=None if numeric else object), codes
