"""Loading and saving ComparisonDatasets.

``load`` reads JSON Lines, JSON, CSV/TSV, Parquet or a ``Dataset.save_to_disk`` directory (or
takes a ``datasets.Dataset``, ``pyarrow.Table``, list of dicts or dict of columns), maps
differently named columns, flattens chat-message columns, validates every row and returns a
``datasets.Dataset`` with the columns of :mod:`pluralrm.data.schema`. Errors are
:class:`~pluralrm.errors.DataError` naming the file, the row, the field and the value:

- **row** is the 1-based line for JSON Lines and CSV/TSV (the CSV header is line 1, so data
  starts at line 2), and the 1-based record index for JSON, Parquet, saved datasets and
  in-memory data;
- ``on_bad_row="skip"`` keeps the good rows instead and warns (:class:`DataWarning`) with the
  number skipped and the first reasons; :func:`load_with_report` also returns them as a
  :class:`LoadReport`.

Validation rules are in :mod:`pluralrm.data.validate`, row numbering and formats in
:mod:`pluralrm.data.readers`, the rendering of chat messages in :mod:`pluralrm.data.dialogue`.
Nothing here needs the network: it works with ``HF_DATASETS_OFFLINE=1``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from pluralrm.data.badrows import DataWarning, LoadReport
from pluralrm.data.readers import FORMATS, format_from_suffix, read_source
from pluralrm.data.validate import to_comparisons
from pluralrm.errors import ConfigError, DataError

__all__ = ["DataWarning", "LoadReport", "load", "load_with_report", "save", "to_dataset"]


def load_with_report(
    source: Any,
    groups: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    on_bad_row: str = "error",
    format: str | None = None,
    extra: str = "error",
    split: str | None = None,
):
    """Loads comparisons and says what was kept.

    Args:
      source: a path (``.jsonl``/``.ndjson``, ``.json`` (an array of objects, ``{"data":
        [...]}``, or JSON Lines), ``.csv``, ``.tsv``, ``.parquet``, any of the text formats
        ``.gz``-compressed, or a saved dataset directory), a ``datasets.Dataset`` or
        ``DatasetDict``, a ``pyarrow.Table``, a list of dicts or a dict of columns.
      groups: the group attributes to keep, in order. ``None``: every column that is not
        reserved (``schema.RESERVED_COLUMNS``) is a group attribute.
      columns: ``{our_name: their_name}`` for columns named differently, e.g.
        ``{"chosen": "response_a", "rejected": "response_b", "country": "Country"}``.
      on_bad_row: ``"error"`` raises for the first bad row; ``"skip"`` drops bad rows and warns.
      format: one of ``readers.FORMATS``; default from the file name.
      extra: with ``groups`` given, what to do with other non-reserved columns: ``"error"``, or
        ``"ignore"`` (dropped, with a :class:`DataWarning` naming them).
      split: the split of a saved ``DatasetDict`` (or in-memory one) to load.

    Chat-message columns (TRL conversational format) are flattened to strings: with a
    ``prompt`` list, prompt = those messages; without, prompt = the messages ``chosen`` and
    ``rejected`` share from the start; chosen/rejected = the remaining (final assistant)
    messages. A prompt renders as ``"role: content"`` per message joined by a blank line; a
    response as its message contents joined by a blank line.

    Returns:
      ``(dataset, report)``: a ComparisonDataset (``prompt, chosen, rejected`` str, ``label``
      float64 (missing: 1.0), ``annotator_id`` str (missing: ""), ``weight`` float64 (missing:
      1.0), any of ``item_id, split, chosen_values, rejected_values``, then one str column per
      group attribute, "" where unknown) and a :class:`LoadReport`.

    Raises:
      DataError: a path that does not exist or is not what its name says, a missing required
        field, empty or non-string text, a label that is not a number in [0, 1], a weight that
        is not a finite number >= 0, a group attribute that is missing or undeclared.
      ConfigError: an unknown policy or format.
    """
    raw = read_source(source, format=format, split=split, columns=columns)
    table, report = to_comparisons(raw, groups=groups, extra=extra, on_bad_row=on_bad_row)
    return to_dataset(table), report


def load(
    source: Any,
    groups: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    on_bad_row: str = "error",
    format: str | None = None,
    extra: str = "error",
    split: str | None = None,
):
    """Loads comparisons into a ComparisonDataset; see :func:`load_with_report` for the arguments.

    Example:
      >>> data = load("prefs.jsonl", groups=["country", "language"])  # doctest: +SKIP
    """
    return load_with_report(source, groups, columns, on_bad_row, format, extra, split)[0]


def to_dataset(table: pa.Table):
    """Wraps an Arrow table as a ``datasets.Dataset`` without copying it."""
    import datasets
    from datasets.fingerprint import generate_random_fingerprint
    from datasets.table import InMemoryTable

    # datasets would otherwise hash the whole table (seconds per million rows) for a fingerprint
    # that only names cache files, which in-memory datasets never write.
    return datasets.Dataset(InMemoryTable(table), fingerprint=generate_random_fingerprint())


def save(dataset, path: str | Path, format: str | None = None) -> Path:
    """Writes a ComparisonDataset so that :func:`load` reads it back unchanged.

    Args:
      dataset: a ``datasets.Dataset``.
      path: the file (or, for ``format="hf"``, directory) to write; parents are created.
      format: one of ``readers.FORMATS``; default from the extension (a path without one is a
        saved-dataset directory). JSON is written as an array of objects; CSV cannot hold the
        list columns ``chosen_values``/``rejected_values``.

    Returns:
      The path written.
    """
    path = Path(path)
    fmt = format or _format_for_writing(path)
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {fmt!r}")
    from pluralrm.atomic import atomic_path

    with atomic_path(path) as tmp:  # nothing appears under path if writing fails
        if fmt == "hf":
            dataset.save_to_disk(str(tmp))
        elif fmt == "parquet":
            dataset.to_parquet(str(tmp))
        elif fmt == "jsonl":
            dataset.to_json(str(tmp), lines=True, force_ascii=False)
        elif fmt == "json":
            tmp.write_text(json.dumps(dataset.to_list(), ensure_ascii=False))
        else:
            lists = [c for c in dataset.column_names if c in ("chosen_values", "rejected_values")]
            if lists:
                raise DataError(f"CSV cannot hold the list column(s) {lists}; write JSON Lines or Parquet",
                                file=str(path), field=lists[0])
            dataset.to_csv(str(tmp), index=False, sep="\t" if fmt == "tsv" else ",")
    return path


def _format_for_writing(path: Path) -> str:
    if not path.suffix:
        return "hf"
    fmt = format_from_suffix(path)
    if fmt is None:
        raise ConfigError(f"cannot tell the format of {path}; pass format= one of {FORMATS}")
    return fmt
