"""Streaming table output that appears only when complete.

:class:`AtomicTableWriter` writes chunks of rows to a temporary file next to the destination
and renames it over the destination when the ``with`` block ends without an error; on an
error (or Ctrl-C) the temporary file is removed, so a failed run never leaves a partial
output behind — and never clobbers an older complete one.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pluralrm.score.candidates import file_format

# column kinds -> Arrow types (Parquet) and JSON/CSV rendering
KINDS: tuple[str, ...] = ("int", "float", "bool", "str")


class AtomicTableWriter:
    """Writes ``{column: [values]}`` chunks to JSONL, CSV or Parquet (from the suffix).

    Args:
      path: the destination.
      schema: ordered ``column -> kind`` (``int``, ``float``, ``bool``, ``str``); every chunk
        has exactly these columns.
      format: ``jsonl``/``csv``/``parquet`` (default: from the suffix).
    """

    def __init__(self, path: str | Path, schema: Mapping[str, str], format: str | None = None):
        self.path = Path(path).absolute()
        self.format = file_format(self.path, format)
        self.schema = dict(schema)
        self.rows = 0
        self.tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        self._file: Any = None
        self._writer: Any = None

    def __enter__(self) -> "AtomicTableWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.tmp, self._arrow_schema())
        else:
            self._file = open(self.tmp, "w", encoding="utf-8", newline="")
            if self.format == "csv":
                self._writer = csv.writer(self._file)
                self._writer.writerow(list(self.schema))
        return self

    def write(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Appends one chunk (columns exactly as in the schema, equally long)."""
        names = list(self.schema)
        n = len(columns[names[0]]) if names else 0
        if self.format == "parquet":
            import pyarrow as pa

            self._writer.write_table(pa.table({c: list(columns[c]) for c in names}, schema=self._arrow_schema()))
        elif self.format == "csv":
            self._writer.writerows(zip(*(columns[c] for c in names)))
        else:
            for i in range(n):
                row = {c: _json_value(columns[c][i]) for c in names}
                self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.rows += n

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._writer is not None and self.format == "parquet":
                self._writer.close()
            if self._file is not None:
                self._file.close()
        finally:
            if exc_type is None:
                os.replace(self.tmp, self.path)
            else:
                self.tmp.unlink(missing_ok=True)

    def _arrow_schema(self):
        import pyarrow as pa

        types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
        return pa.schema([(c, types[k]) for c, k in self.schema.items()])


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


__all__ = ["AtomicTableWriter", "KINDS"]
