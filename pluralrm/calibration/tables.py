"""The tables a calibration report is made of: named columns or a labelled matrix, each
convertible to a pandas DataFrame and to JSON-safe Python values (NaN and ±inf become null)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """Numpy scalars and arrays, tuples and mappings → plain Python; non-finite floats → None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()] if value.ndim else json_safe(value.item())
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@dataclass(frozen=True)
class Table:
    """Rows of named columns, all of one length.

    Attributes:
      name: short identifier (``"calibration"``).
      columns: column name → ``[rows]`` array (numbers or strings), in display order.
      description: one or two sentences saying what the numbers are.
    """

    name: str
    columns: Mapping[str, np.ndarray]
    description: str = ""
    _length: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        columns = {k: np.asarray(v) for k, v in self.columns.items()}
        lengths = {k: v.shape[0] for k, v in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"table {self.name!r}: columns differ in length {lengths}")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "_length", next(iter(lengths.values()), 0))

    @property
    def num_rows(self) -> int:
        return self._length

    def rows(self) -> list[dict[str, Any]]:
        """The table as a list of JSON-safe row dicts."""
        cols = {k: json_safe(v) for k, v in self.columns.items()}
        return [{k: cols[k][i] for k in cols} for i in range(self.num_rows)]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "columns": {k: json_safe(v) for k, v in self.columns.items()}}

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({k: v for k, v in self.columns.items()})


@dataclass(frozen=True)
class Matrix:
    """A labelled matrix (e.g. group × group agreement).

    Attributes:
      name: short identifier.
      row_labels, col_labels: labels of the R rows and C columns.
      values: ``[R, C]`` float64.
      description: what the numbers are.
    """

    name: str
    row_labels: Sequence[str]
    col_labels: Sequence[str]
    values: np.ndarray
    description: str = ""

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.shape != (len(self.row_labels), len(self.col_labels)):
            raise ValueError(f"matrix {self.name!r}: values {values.shape} do not fit "
                             f"{len(self.row_labels)} x {len(self.col_labels)} labels")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "row_labels", tuple(self.row_labels))
        object.__setattr__(self, "col_labels", tuple(self.col_labels))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "row_labels": list(self.row_labels),
                "col_labels": list(self.col_labels), "values": json_safe(self.values)}

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.values, index=list(self.row_labels), columns=list(self.col_labels))
