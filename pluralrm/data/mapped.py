"""Large comparison files without holding them in memory.

``load_mapped`` validates a file exactly as :func:`pluralrm.data.load` does, but writes the kept
rows to an Arrow file and returns a ``datasets.Dataset`` memory-mapped from it: the rows live in
the page cache, which the OS can reclaim, not in the process's heap. Parquet files are read and
validated in chunks of ``chunk_rows``, so the process never holds more than one chunk — memory is
flat in the file's size. Saved dataset directories are memory-mapped already and are returned as
they are loaded. Other formats (JSONL, CSV, JSON) are validated whole and then spilled, so their
*steady-state* memory is flat but loading still peaks with the file's size: convert them once to
Parquet (``pluralrm.data.save(dataset, "data.parquet")``) for flat memory throughout.

Row numbers in errors are the file's own (a chunk's rows are offset by the rows before it).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pluralrm.data.badrows import DataWarning, LoadReport
from pluralrm.data.readers import RawTable, check_column_mapping, folder_data_file, format_from_suffix, rename_columns
from pluralrm.data.validate import to_comparisons
from pluralrm.errors import DataError

DEFAULT_CHUNK_ROWS = 1 << 18


def load_mapped(
    source: str | Path,
    cache_file: str | Path,
    groups: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    on_bad_row: str = "error",
    extra: str = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
):
    """Validated comparisons from ``source``, memory-mapped from ``cache_file``.

    Args:
      source: a file path (Parquet is streamed; see the module docstring for other formats).
      cache_file: where the validated Arrow rows are written (created or replaced).
      groups, columns, on_bad_row, extra: as :func:`pluralrm.data.load`.
      chunk_rows: rows read and validated at a time (Parquet).

    Returns:
      ``(dataset, report)``: a memory-mapped ComparisonDataset and the combined LoadReport.
    """
    import datasets

    from pluralrm.data.io import load_with_report

    source, cache_file = folder_data_file(Path(source)), Path(cache_file)
    if format_from_suffix(source) != "parquet":
        dataset, report = load_with_report(source, groups, columns, on_bad_row, extra=extra)
        if not isinstance(dataset.data, datasets.table.MemoryMappedTable):
            _write_stream(cache_file, [dataset.data.table])
            dataset = datasets.Dataset.from_file(str(cache_file))
        return dataset, report
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"is not a readable Parquet file ({e})", file=str(source)) from None
    rename = check_column_mapping(columns)
    reports: list[LoadReport] = []

    def chunks():
        offset = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            raw = rename_columns(RawTable(table, str(source), lambda i, start=offset: start + i + 1), rename)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)  # one combined warning below
                out, report = to_comparisons(raw, groups=groups, extra=extra, on_bad_row=on_bad_row)
            reports.append(report)
            offset += table.num_rows
            yield out

    _write_stream(cache_file, chunks(), source)
    report = LoadReport(
        str(source),
        sum(r.rows_read for r in reports),
        sum(r.rows_kept for r in reports),
        tuple(e for r in reports for e in r.problems)[:5],
        reports[0].dropped_columns if reports else (),
    )
    if report.rows_skipped or report.dropped_columns:
        warnings.warn(report.to_text(), DataWarning, stacklevel=2)
    return datasets.Dataset.from_file(str(cache_file)), report


def _write_stream(path: Path, tables, source: Path | None = None) -> None:
    """Writes tables (one schema, cast to the first's) as an Arrow IPC stream, atomically."""
    from pluralrm.atomic import atomic_path

    with atomic_path(path) as tmp:  # a failed or interrupted write leaves nothing behind
        writer = None
        try:
            for table in tables:
                if writer is None:
                    schema = table.schema
                    writer = pa.ipc.new_stream(str(tmp), schema)
                writer.write_table(table.cast(schema))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise DataError("has no rows", file=str(source or path))
