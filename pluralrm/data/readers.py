"""Reading sources into Arrow tables that remember where every row came from.

A source is a path (JSON Lines, JSON, CSV/TSV, Parquet, a ``Dataset.save_to_disk`` directory,
a folder holding one ``data.*`` file such as ``pluralrm simulate --out``'s ``data.parquet``;
``.gz`` compression for the text formats) or in-memory data (a ``datasets.Dataset``, a
``pyarrow.Table``, a list of dicts or a dict of columns). :func:`read_source` returns a
:class:`RawTable`: the rows as Arrow columns, renamed to our column names, plus how to turn a
table row into the row number a user sees in an error:

- JSON Lines: the 1-based line number (blank lines are skipped but counted);
- CSV/TSV: the 1-based line number where the record starts, the header being line 1, so the
  first data row is line 2 (a quoted field spanning lines makes later rows start further down);
- JSON, Parquet, saved datasets and in-memory data: the 1-based record index.

Fast paths read with pyarrow's multithreaded readers; when those refuse a file (a line that is
not JSON, a column whose type changes between rows, a ragged CSV row, bytes that are not UTF-8)
a line-by-line pass reads what it can and records a :class:`RowProblem` for each record it
cannot, so that the bad-row policy downstream decides what happens. Line numbers for the fast
paths are only computed when an error needs one.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from pluralrm.data.badrows import RowProblem
from pluralrm.data.records import records_table
from pluralrm.errors import ConfigError, DataError

FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "tsv", "parquet", "hf")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
               ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_BLOCK = 1 << 24
# what reading a damaged file can raise (zlib.error: a corrupted .gz stream)
_READ_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class RawTable:
    """Rows read from a source, before validation.

    Attributes:
      table: one row per record; a record that could not be parsed is an all-null row whose
        problem is in ``problems``.
      source: the path, for messages (None for in-memory data).
      locate: table row (0-based) -> the row number users see (module docstring).
      problems: rows already known to be bad, by table row.
      names: our column name -> the column's name in the source (after ``columns=`` mapping).
      numbers_as_text: numbers arrive as text (CSV) and are parsed, not refused.
    """

    table: pa.Table
    source: str | None
    locate: Callable[[int], int]
    problems: Mapping[int, RowProblem] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    numbers_as_text: bool = False

    def name(self, column: str) -> str:
        return self.names.get(column, column)


def record_index(i: int) -> int:
    """Row numbering for sources without lines: the 1-based record index."""
    return i + 1


def read_source(
    source: Any,
    format: str | None = None,
    split: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> RawTable:
    """Reads a source (module docstring) and renames ``columns={ours: theirs}`` to our names."""
    rename = check_column_mapping(columns)
    if isinstance(source, (str, Path)):
        return rename_columns(_read_path(Path(source), format, split, rename), rename)
    if format is not None:
        raise ConfigError("format= applies to paths only; in-memory data has no file format")
    return rename_columns(_read_memory(source, split, rename), rename)


# ---------------------------------------------------------------------------- paths
def _read_path(path: Path, format: str | None, split: str | None, rename: dict[str, str]) -> RawTable:
    if not path.exists():
        raise DataError("no such file or directory; check the path", file=str(path))
    if format is None:
        path = folder_data_file(path)
    fmt = format or _detect_format(path)
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "hf":
        return _read_saved_dataset(path, split)
    if path.is_dir():
        raise DataError(f"is a directory, not a {fmt} file (a saved dataset directory has "
                        "dataset_info.json or dataset_dict.json)", file=str(path))
    if split is not None:
        raise ConfigError("split= applies to saved DatasetDict directories only")
    if fmt == "parquet":
        try:
            table = pq.read_table(path)
            table.column_names  # noqa: B018 -- names are decoded lazily and may not be UTF-8
            table.validate(full=True)  # nor may the strings of a damaged file
        except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
            raise DataError(f"is not a readable Parquet file ({e})", file=str(path)) from None
        return RawTable(table, str(path), record_index)
    if fmt == "json":
        return _read_json(path, rename)
    if fmt == "jsonl":
        return _read_jsonl(path, rename)
    return _read_csv(path, "\t" if fmt == "tsv" else ",", rename)


SAVED_DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


def folder_data_file(path: Path) -> Path:
    """The file a folder stands for: a folder that is not a saved dataset but holds exactly one
    ``data.<ext>`` file of a known format (``pluralrm simulate --out DIR`` writes
    ``DIR/data.parquet``) is read as that file; any other path is returned as it is."""
    if not path.is_dir() or any((path / marker).exists() for marker in SAVED_DATASET_MARKERS):
        return path
    candidates = [p for p in sorted(path.glob("data.*")) if p.is_file() and format_from_suffix(p)]
    return candidates[0] if len(candidates) == 1 else path


def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "hf"
    fmt = format_from_suffix(path)
    if fmt is None:
        raise DataError(f"cannot tell the format from the name; pass format= one of {FORMATS}",
                        file=str(path))
    return fmt


def format_from_suffix(path: Path) -> str | None:
    """The format a file name's extension implies (``.gz`` looked through), or None."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return _EXTENSIONS.get(suffixes[-1]) if suffixes else None


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _read_saved_dataset(path: Path, split: str | None) -> RawTable:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise DataError(f"is not a saved dataset directory ({e})", file=str(path)) from None
    return RawTable(_dataset_table(loaded, split, str(path)), str(path), record_index)


def _dataset_table(data: Any, split: str | None, source: str | None) -> pa.Table:
    import datasets

    if isinstance(data, datasets.DatasetDict):
        if split is None and len(data) == 1:
            split = next(iter(data))
        if split not in data:
            raise DataError(f"pick a split with split=; this DatasetDict has {list(data)}",
                            file=source, field="split", value=split)
        data = data[split]
    elif split is not None:
        raise ConfigError("split= applies to a DatasetDict; this is a single Dataset")
    return data.with_format("arrow")[:]


# ---------------------------------------------------------------------------- JSON Lines
def _read_jsonl(path: Path, rename: dict[str, str]) -> RawTable:
    if not _every_line_opens_an_object(path):
        # pyarrow's reader crashes the process on a first line of ``null`` and reads a later
        # ``null`` as an all-null record: lines that are not objects go through the per-line
        # parser, which names each of them.
        return _read_jsonl_by_line(path, rename)
    try:
        with _open_binary(path) as f:
            table = pa_json.read_json(f, read_options=pa_json.ReadOptions(block_size=_BLOCK))
        table.validate(full=True)  # pyarrow's JSON reader lets invalid UTF-8 through
    except (pa.ArrowInvalid, UnicodeDecodeError, *_READ_ERRORS):
        return _read_jsonl_by_line(path, rename)
    return RawTable(table, str(path), _LazyLines(lambda: _jsonl_lines(path)))


def _every_line_opens_an_object(path: Path) -> bool:
    """Whether every non-empty line starts with ``{`` (a vectorised scan, chunk by chunk)."""
    allowed = np.array([ord("{"), ord("\n"), ord("\r")], np.uint8)
    at_line_start = True
    try:
        with _open_binary(path) as f:
            while chunk := f.read(_BLOCK):
                data = np.frombuffer(chunk, np.uint8)
                starts = np.flatnonzero(data[:-1] == ord("\n")) + 1
                if at_line_start:
                    starts = np.concatenate([[0], starts])
                if not np.isin(data[starts], allowed).all():
                    return False
                at_line_start = data[-1] == ord("\n")
    except _READ_ERRORS:
        return False  # the per-line reader reports what cannot be read
    return True


def _jsonl_lines(path: Path) -> list[int]:
    with _open_binary(path) as f:
        return [n for n, line in enumerate(f, 1) if line.strip()]


def _read_jsonl_by_line(path: Path, rename: dict[str, str]) -> RawTable:
    records: list[dict] = []
    problems: dict[int, RowProblem] = {}
    lines: list[int] = []
    try:
        with _open_binary(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                lines.append(n)
                records.append(_parse_object(line, len(records), problems))
    except _READ_ERRORS as e:  # e.g. a .gz that is not gzip
        raise DataError(f"cannot be read ({e})", file=str(path)) from None
    return _from_records(records, problems, rename, str(path), lines.__getitem__)


def _parse_object(line: bytes, row: int, problems: dict[int, RowProblem]) -> dict:
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        problems[row] = RowProblem(None, f"is not valid JSON ({e})", line[:60])
        return {}
    if not isinstance(obj, dict):
        problems[row] = RowProblem(None, "must be a JSON object {...}", obj)
        return {}
    return obj


# ---------------------------------------------------------------------------- JSON
def _read_json(path: Path, rename: dict[str, str]) -> RawTable:
    with _open_binary(path) as f:
        try:
            raw = f.read()
        except _READ_ERRORS as e:
            raise DataError(f"cannot be read ({e})", file=str(path)) from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # several documents: JSON Lines named .json
            return _read_jsonl(path, rename)
        raise DataError(f"is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
                        file=str(path)) from None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"is not UTF-8 text (bad byte at line {line})", file=str(path)) from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not isinstance(doc, list):
        raise DataError("must hold an array of objects [...] or {\"data\": [...]}", file=str(path),
                        value=type(doc).__name__)
    problems: dict[int, RowProblem] = {}
    records = [r if isinstance(r, dict) else _not_object(i, r, problems) for i, r in enumerate(doc)]
    return _from_records(records, problems, rename, str(path), record_index)


def _not_object(row: int, value: Any, problems: dict[int, RowProblem]) -> dict:
    problems[row] = RowProblem(None, "must be a JSON object {...}", value)
    return {}


# ---------------------------------------------------------------------------- CSV
def _read_csv(path: Path, delimiter: str, rename: dict[str, str]) -> RawTable:
    header = _csv_header(path, delimiter)
    convert = pa_csv.ConvertOptions(column_types={h: pa.string() for h in header},
                                    strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        with _open_binary(path) as f:
            table = pa_csv.read_csv(
                f,
                read_options=pa_csv.ReadOptions(block_size=_BLOCK),
                parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=convert,
            )
    except (pa.ArrowInvalid, *_READ_ERRORS):
        return _read_csv_by_record(path, delimiter, header, rename)
    locate = _LazyLines(lambda: [start for start, _ in _csv_records(path, delimiter)][1:])
    return RawTable(table, str(path), locate, numbers_as_text=True)


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for every non-blank record, header first."""
    with _open_binary(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        end = 0
        for fields in reader:
            start, end = end + 1, reader.line_num
            if fields:
                yield start, fields


def _csv_header(path: Path, delimiter: str) -> list[str]:
    try:
        _, header = next(_csv_records(path, delimiter))
    except StopIteration:
        raise DataError("is empty: a CSV file needs a header line", file=str(path)) from None
    except (csv.Error, *_READ_ERRORS) as e:
        raise DataError(f"cannot be read as CSV ({e})", file=str(path), row=1) from None
    seen = set()
    for name in header:
        if name in seen or not name.strip():
            raise DataError("header names must be unique and non-empty", file=str(path), row=1,
                            field=name)
        seen.add(name)
    if any(_has_bad_bytes(h) for h in header):
        raise DataError("header is not UTF-8 text", file=str(path), row=1)
    return header


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _read_csv_by_record(path: Path, delimiter: str, header: list[str], rename: dict[str, str]) -> RawTable:
    records: list[dict] = []
    problems: dict[int, RowProblem] = {}
    lines: list[int] = []
    try:
        for start, fields in list(_csv_records(path, delimiter))[1:]:
            row = len(records)
            lines.append(start)
            if len(fields) != len(header):
                problems[row] = RowProblem(None, f"has {len(fields)} fields; the header has {len(header)}",
                                           delimiter.join(fields)[:60])
                fields = []
            elif any(_has_bad_bytes(v) for v in fields):
                problems[row] = RowProblem(None, "is not UTF-8 text", delimiter.join(fields)[:60])
                fields = []
            records.append(dict(zip(header, fields)))
    except csv.Error as e:
        raise DataError(f"cannot be read as CSV ({e})", file=str(path)) from None
    return _from_records(records, problems, rename, str(path), lines.__getitem__, numbers_as_text=True)


class _LazyLines:
    """Maps table rows to line numbers, scanning the file only when first asked."""

    def __init__(self, scan: Callable[[], list[int]]) -> None:
        self._scan = scan
        self._lines: list[int] | None = None

    def __call__(self, i: int) -> int:
        if self._lines is None:
            self._lines = self._scan()
        return self._lines[i] if i < len(self._lines) else i + 1


# ---------------------------------------------------------------------------- in memory
def _read_memory(data: Any, split: str | None, rename: dict[str, str]) -> RawTable:
    import datasets

    if isinstance(data, (datasets.Dataset, datasets.DatasetDict)):
        return RawTable(_dataset_table(data, split, None), None, record_index)
    if split is not None:
        raise ConfigError("split= applies to a DatasetDict")
    if isinstance(data, pa.Table):
        return RawTable(data, None, record_index)
    if isinstance(data, Mapping):
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise DataError(f"columns have different lengths {sorted(lengths)}")
        data = [dict(zip(data, values)) for values in zip(*data.values())]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        problems: dict[int, RowProblem] = {}
        records = [r if isinstance(r, Mapping) else _not_object(i, r, problems) for i, r in enumerate(data)]
        return _from_records(records, problems, rename, None, record_index)
    raise DataError(f"cannot load a {type(data).__name__}; give a path, a datasets.Dataset, "
                    "a pyarrow.Table, a list of dicts or a dict of columns")


def _from_records(records: Sequence[Mapping], problems: dict[int, RowProblem], rename: dict[str, str],
                  source: str | None, locate: Callable[[int], int], numbers_as_text: bool = False) -> RawTable:
    table = records_table(records, problems, rename, numbers_as_text)
    return RawTable(table, source, locate, problems, numbers_as_text=numbers_as_text)


# ---------------------------------------------------------------------------- renaming
def check_column_mapping(columns: Mapping[str, str] | None) -> dict[str, str]:
    """``columns=`` ({our name: their name}) as a dict; ConfigError if two of ours map to one of theirs."""
    rename = dict(columns or {})
    theirs = list(rename.values())
    for dup in {t for t in theirs if theirs.count(t) > 1}:
        raise ConfigError(f"columns= maps {dup!r} to several of our columns")
    return rename


def rename_columns(raw: RawTable, rename: dict[str, str]) -> RawTable:
    """``raw`` with their column names replaced by ours (DataError naming a missing column)."""
    names = raw.table.column_names
    for our, theirs in rename.items():
        if theirs not in names:
            raise DataError(f"columns= maps {theirs!r} to {our!r}, but there is no such column "
                            f"(columns: {names})", file=raw.source, field=theirs)
        if our in names and our not in rename.values() and our != theirs:
            raise DataError(f"columns= maps {theirs!r} to {our!r}, but {our!r} is a column too; "
                            "drop one of them or map it elsewhere", file=raw.source, field=our)
    if not rename:
        return raw
    ours = {theirs: our for our, theirs in rename.items()}
    table = raw.table.rename_columns([ours.get(c, c) for c in names])
    return RawTable(table, raw.source, raw.locate, raw.problems, {**raw.names, **rename},
                    raw.numbers_as_text)
