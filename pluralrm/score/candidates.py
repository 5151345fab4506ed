"""Streaming reader of candidate files: (prompt, response[, group columns]) rows in chunks.

Reads JSONL (one object per line), CSV (header row) and Parquet (``iter_batches``) a chunk of
``chunk_size`` rows at a time, so memory stays constant in the size of the file. Rows are
numbered as :class:`~pluralrm.errors.DataError` does: the 1-based line for JSONL and CSV (the
line a CSV record starts on; the header is line 1), the 1-based record for Parquet.

Bad rows (invalid JSON, a missing or non-string prompt/response, a group value that is not a
string, a CSV record with the wrong number of fields, or whatever ``check`` rejects) follow
``on_bad_row``: ``"error"`` raises a DataError naming the file, row and field; ``"skip"`` drops
the row, counts it and keeps the first few errors for the report. A column missing from a CSV
header or Parquet schema, or a file that is not UTF-8, is an error of the whole file.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralrm.errors import ConfigError, DataError

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
BAD_ROW_POLICIES: tuple[str, ...] = ("error", "skip")
_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_KEEP_EXAMPLES = 5


def file_format(path: str | Path, given: str | None = None) -> str:
    """The format of ``path`` from ``given`` or its suffix (ConfigError if neither says)."""
    if given is not None:
        if given not in FORMATS:
            raise ConfigError(f"format must be one of {list(FORMATS)}, got {given!r}")
        return given
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell the format of {path} from its suffix; use .jsonl, .csv or .parquet")
    return fmt


@dataclass
class CandidateChunk:
    """A chunk of rows. ``rows``: 1-based row numbers ``[n]``; ``columns``: name → ``[n]`` values."""

    rows: list[int]
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, start: int, stop: int | None = None) -> "CandidateChunk":
        return CandidateChunk(self.rows[start:stop], {k: v[start:stop] for k, v in self.columns.items()})

    def extend(self, other: "CandidateChunk") -> "CandidateChunk":
        return CandidateChunk(self.rows + other.rows, {k: v + other.columns[k] for k, v in self.columns.items()})


@dataclass
class CandidateReader:
    """Iterates a candidate file in chunks (see module docstring).

    Args:
      path: the file; format: ``jsonl``/``csv``/``parquet`` (default: from the suffix).
      required: columns every row must have as strings (e.g. prompt and response).
      optional: string columns read when present (group attributes): missing → ``""``.
      keep: other columns carried through as they are (e.g. an id column); missing → None.
      chunk_size: rows per chunk; on_bad_row: ``"error"`` or ``"skip"``.
      check: extra per-row validation; raises DataError (field, value) for a bad row.

    After iteration, ``skipped`` counts skipped rows and ``bad_rows`` holds the first few
    errors. ``position``/``total`` measure progress (bytes for text files, rows for Parquet).
    """

    path: Path
    required: Sequence[str]
    optional: Sequence[str] = ()
    keep: Sequence[str] = ()
    chunk_size: int = 1024
    on_bad_row: str = "error"
    format: str | None = None
    check: Callable[[dict[str, Any]], None] | None = None
    skipped: int = field(default=0, init=False)
    bad_rows: list[DataError] = field(default_factory=list, init=False)
    position: int = field(default=0, init=False)
    total: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.format = file_format(self.path, self.format)
        if self.on_bad_row not in BAD_ROW_POLICIES:
            raise ConfigError(f"on_bad_row must be one of {list(BAD_ROW_POLICIES)}, got {self.on_bad_row!r}")
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if not self.path.is_file():
            raise DataError("no such file", file=str(self.path))

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.required, *self.optional, *self.keep]))

    def __iter__(self) -> Iterator[CandidateChunk]:
        records = {"jsonl": self._jsonl, "csv": self._csv, "parquet": self._parquet}[self.format]()
        chunk = self._empty()
        for row, record in records:
            try:
                values = self._validate(record)
            except DataError as e:
                self._bad(DataError(e.reason, file=str(self.path), row=row, field=e.field, value=e.value))
                continue
            chunk.rows.append(row)
            for k, v in values.items():
                chunk.columns[k].append(v)
            if len(chunk) >= self.chunk_size:
                yield chunk
                chunk = self._empty()
        if len(chunk):
            yield chunk

    # ------------------------------------------------------------------ per row
    def _empty(self) -> CandidateChunk:
        return CandidateChunk([], {c: [] for c in self.columns})

    def _validate(self, record: Any) -> dict[str, Any]:
        if isinstance(record, DataError):
            raise record
        if not isinstance(record, dict):
            raise DataError(f"a row must be an object with fields {list(self.required)}", value=record)
        out = {}
        for name in self.required:
            if name not in record or record[name] is None:
                raise DataError("required field is missing", field=name)
            if not isinstance(record[name], str):
                raise DataError("must be a string", field=name, value=record[name])
            out[name] = record[name]
        for name in self.optional:
            v = record.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int))):
                raise DataError("a group value must be a string", field=name, value=v)
            out[name] = "" if v is None else str(v)
        for name in self.keep:
            out.setdefault(name, record.get(name))
        if self.check is not None:
            self.check(out)
        return out

    def _bad(self, error: DataError) -> None:
        if self.on_bad_row == "error":
            raise error
        self.skipped += 1
        if len(self.bad_rows) < _KEEP_EXAMPLES:
            self.bad_rows.append(error)

    # ------------------------------------------------------------------ formats
    def _jsonl(self) -> Iterator[tuple[int, Any]]:
        self.total = self.path.stat().st_size
        with open(self.path, "rb") as f:
            for line_no, raw in enumerate(f, 1):
                self.position += len(raw)
                if not raw.strip():
                    continue
                try:
                    yield line_no, json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    yield line_no, DataError(f"invalid JSON: {e}")

    def _csv(self) -> Iterator[tuple[int, Any]]:
        self.total = self.path.stat().st_size
        old_limit = csv.field_size_limit()
        csv.field_size_limit(max(old_limit, 1 << 30))  # long responses: the default is 128 KiB
        try:
            with open(self.path, "rb") as f:
                reader = csv.reader(self._decoded_lines(f))
                try:
                    header = next(reader)
                except StopIteration:
                    return
                missing = [c for c in self.required if c not in header]
                if missing:
                    raise DataError(
                        f"the CSV header has no column {missing[0]!r} (columns: {header}); name the column "
                        "with --prompt-column/--response-column",
                        file=str(self.path), row=1, field=missing[0],
                    )
                while True:
                    start = reader.line_num + 1
                    try:
                        fields = next(reader)
                    except StopIteration:
                        return
                    except csv.Error as e:
                        yield start, DataError(f"malformed CSV record: {e}")
                        continue
                    if not fields:
                        continue
                    if len(fields) != len(header):
                        yield start, DataError(f"has {len(fields)} fields but the header has {len(header)}")
                        continue
                    yield start, dict(zip(header, fields))
        finally:
            csv.field_size_limit(old_limit)

    def _decoded_lines(self, f) -> Iterator[str]:
        for line_no, raw in enumerate(f, 1):
            self.position += len(raw)
            try:
                yield raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"the file is not UTF-8 text ({e.reason})", file=str(self.path), row=line_no) from None

    def _parquet(self) -> Iterator[tuple[int, Any]]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as e:  # pyarrow raises ArrowInvalid/OSError for non-Parquet input
            raise DataError(f"not a readable Parquet file ({e})", file=str(self.path)) from None
        names = pf.schema_arrow.names
        missing = [c for c in self.required if c not in names]
        if missing:
            raise DataError(
                f"the Parquet file has no column {missing[0]!r} (columns: {names}); name the column "
                "with --prompt-column/--response-column",
                file=str(self.path), field=missing[0],
            )
        self.total = pf.metadata.num_rows
        present = [c for c in self.columns if c in names]
        row = 0
        for batch in pf.iter_batches(batch_size=self.chunk_size, columns=present):
            cols = {c: batch.column(c).to_pylist() for c in present}
            for i in range(batch.num_rows):
                row += 1
                self.position = row
                yield row, {c: cols[c][i] for c in present}


__all__ = ["BAD_ROW_POLICIES", "CandidateChunk", "CandidateReader", "FORMATS", "file_format"]
