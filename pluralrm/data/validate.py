"""Raw tables to validated comparison tables (the columns of ``pluralrm/data/schema.py``).

Checks run over whole Arrow columns at once (pyarrow compute and numpy); the message for a bad
row is only built for the rows that are reported (see :mod:`pluralrm.data.badrows`). Rules:

- ``prompt``, ``chosen``, ``rejected`` are required strings that are not empty or whitespace
  only. Chat-message lists (TRL's conversational format) are flattened first
  (:mod:`pluralrm.data.dialogue`); without a ``prompt`` column the shared leading messages are
  the prompt.
- ``label`` is a number in [0, 1] and ``weight`` a finite number >= 0; a missing one (column
  absent, key absent, null, or an empty CSV cell) is 1.0. Text that looks like a number counts
  as one only where every value is text (CSV).
- ``annotator_id``, ``item_id``, ``split`` and group attributes are single values cast to
  strings; missing values become ``""`` (unknown).
- With ``groups=None`` every non-reserved column is a group attribute. With ``groups=[...]``
  each named attribute must be a column, and any other non-reserved column is an undeclared
  group attribute: an error, or with ``extra="ignore"`` dropped with a :class:`DataWarning`.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluralrm.data.badrows import BadRows, DataWarning, LoadReport, RowProblem, check_policy, resolve
from pluralrm.data.dialogue import flatten_rows
from pluralrm.data.readers import RawTable
from pluralrm.data.schema import RESERVED_COLUMNS, TEXT_COLUMNS
from pluralrm.errors import ConfigError, DataError

EXTRA_POLICIES: tuple[str, ...] = ("error", "ignore")
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_LABEL_RULE = "must be a number in [0, 1] (P(chosen preferred); 0.5 = tie)"
_WEIGHT_RULE = "must be a finite number >= 0"


def to_comparisons(
    raw: RawTable,
    groups: Sequence[str] | None = None,
    extra: str = "error",
    on_bad_row: str = "error",
) -> tuple[pa.Table, LoadReport]:
    """Validates a raw table into comparison columns (module docstring).

    Returns:
      ``(table, report)``: the kept rows in column order core, optional, group attributes.
    """
    check_policy(on_bad_row)
    if extra not in EXTRA_POLICIES:
        raise ConfigError(f"extra must be one of {EXTRA_POLICIES}, got {extra!r}")
    t = raw.table
    n = t.num_rows
    if n == 0:
        raise DataError("has no rows", file=raw.source)
    group_columns, dropped = _group_columns(raw, groups, extra)
    bad = BadRows(n)
    bad.add_known(raw.problems)
    out = _text_columns(raw, bad)
    out["label"] = _number_column(raw, "label", bad, lambda v: (v >= 0) & (v <= 1), _LABEL_RULE)
    out["annotator_id"] = _string_column(raw, "annotator_id", bad)
    out["weight"] = _number_column(raw, "weight", bad, lambda v: np.isfinite(v) & (v >= 0), _WEIGHT_RULE)
    for name in ("item_id", "split"):
        if name in t.column_names:
            out[name] = _string_column(raw, name, bad)
    for name in ("chosen_values", "rejected_values"):
        if name in t.column_names:
            out[name] = _value_lists(raw, name, bad)
    for name in group_columns:
        out[name] = _string_column(raw, name, bad)
    keep, report = resolve(bad, on_bad_row, raw.source, raw.locate, dropped)
    table = pa.table(out)
    return (table if keep.all() else table.filter(pa.array(keep))), report


# ---------------------------------------------------------------------------- groups
def _group_columns(raw: RawTable, groups: Sequence[str] | None, extra: str) -> tuple[list[str], tuple[str, ...]]:
    names = raw.table.column_names
    others = [c for c in names if c not in RESERVED_COLUMNS]
    if groups is None:
        return others, ()
    groups = [groups] if isinstance(groups, str) else list(groups)
    for g in groups:
        if g in RESERVED_COLUMNS:
            raise ConfigError(f"{g!r} is a reserved column and cannot be a group attribute")
        if groups.count(g) > 1:
            raise ConfigError(f"groups= names {g!r} twice")
        if g not in names:
            raise DataError(f"the group attribute {g!r} is not a field of this data (fields: {names})",
                            file=raw.source, field=g)
    undeclared = tuple(c for c in others if c not in groups)
    if undeclared and extra == "error":
        raise DataError(f"undeclared group attribute {raw.name(undeclared[0])!r}: add it to groups=, "
                        "or pass extra='ignore' to drop undeclared columns",
                        file=raw.source, field=raw.name(undeclared[0]))
    if undeclared:
        warnings.warn(f"{raw.source or '<in-memory data>'}: dropped columns not declared in groups=: "
                      f"{', '.join(raw.name(c) for c in undeclared)}", DataWarning, stacklevel=3)
    return groups, undeclared


# ---------------------------------------------------------------------------- texts
def _text_columns(raw: RawTable, bad: BadRows) -> dict[str, pa.ChunkedArray]:
    t = raw.table
    cols = {c: t.column(c) if c in t.column_names else None for c in TEXT_COLUMNS}
    conversational = any(col is not None and pa.types.is_list(col.type) for col in cols.values())
    for c in TEXT_COLUMNS if not conversational else ("chosen", "rejected"):
        if cols[c] is None:
            raise DataError(f"missing required field {raw.name(c)!r} (fields: {t.column_names})",
                            file=raw.source, row=raw.locate(0), field=raw.name(c))
    if conversational:
        cols = _flatten_conversations(raw, cols, bad)
    return {c: text_column(raw.name(c), cols[c], bad) for c in TEXT_COLUMNS}


def _flatten_conversations(raw: RawTable, cols: dict, bad: BadRows) -> dict[str, pa.Array]:
    chosen, rejected = cols["chosen"].to_pylist(), cols["rejected"].to_pylist()
    prompt = cols["prompt"].to_pylist() if cols["prompt"] is not None else None
    prompt, problems = flatten_rows(prompt, chosen, rejected)
    bad.add_known({i: RowProblem(raw.name(p.field), p.reason, p.value) for i, p in problems.items()})
    return {name: _strings_or_null(values) for name, values in
            (("prompt", prompt), ("chosen", chosen), ("rejected", rejected))}


def _strings_or_null(values: list) -> pa.Array:
    return pa.array([v if isinstance(v, str) else None for v in values], type=pa.string())


def text_column(name: str, col: pa.ChunkedArray | pa.Array, bad: BadRows) -> pa.Array | pa.ChunkedArray:
    """Flags missing, non-string and blank texts of ``col`` (field ``name``); returns strings."""
    null = _np(pc.is_null(col))
    bad.add(null, lambda i: RowProblem(name, "missing required field"))
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        bad.add(~null, lambda i: RowProblem(name, "must be a string", col[i].as_py()))
        return pa.nulls(len(col), pa.string())
    empty = _np(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0).fill_null(False))
    bad.add(empty, lambda i: RowProblem(name, "text is empty or only whitespace", col[i].as_py()))
    return col.cast(pa.string())


# ---------------------------------------------------------------------------- numbers
def parse_numbers(col: pa.ChunkedArray | pa.Array, text: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column as float64.

    Args:
      col: ``[N]`` any Arrow type.
      text: accept strings that spell a number (CSV); an empty or blank string is missing.

    Returns:
      ``(values [N] float64 (NaN where missing or not a number), missing [N] bool,
      not_number [N] bool)``.
    """
    t = col.type
    missing = _np(pc.is_null(col))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = _np(pc.cast(col, pa.float64(), safe=False).fill_null(np.nan))  # big ints round
        return values, missing, np.zeros_like(missing)
    if text and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        trimmed = pc.utf8_trim_whitespace(col)
        missing |= _np(pc.equal(pc.utf8_length(trimmed), 0).fill_null(True))
        ok = pc.match_substring_regex(trimmed, _NUMBER).fill_null(False)
        spelled = pc.if_else(ok, trimmed, pa.scalar(None, trimmed.type))
        values = _np(pc.cast(spelled, pa.float64()).fill_null(np.nan))
        return values, missing, ~_np(ok) & ~missing
    values = np.full(len(col), np.nan)
    return values, missing, ~missing


def _number_column(raw: RawTable, column: str, bad: BadRows,
                   valid: Callable[[np.ndarray], np.ndarray], rule: str) -> pa.Array:
    t = raw.table
    if column not in t.column_names:
        return pa.array(np.ones(t.num_rows))
    name, col = raw.name(column), t.column(column)
    values, missing, not_number = parse_numbers(col, raw.numbers_as_text)
    bad.add(not_number, lambda i: RowProblem(name, f"is not a number; it {rule}", col[i].as_py()))
    with np.errstate(invalid="ignore"):
        out_of_range = ~valid(values) & ~missing & ~not_number
    bad.add(out_of_range, lambda i: RowProblem(name, rule, col[i].as_py()))
    values[missing] = 1.0
    return pa.array(values)


def _value_lists(raw: RawTable, column: str, bad: BadRows) -> pa.ChunkedArray | pa.Array:
    name, col = raw.name(column), raw.table.column(column)
    t = col.type
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.list_(pa.float64()))
    if pa.types.is_list(t) and (pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)):
        return col.cast(pa.list_(pa.float64()))
    bad.add(~_np(pc.is_null(col)), lambda i: RowProblem(name, "must be a list of numbers", col[i].as_py()))
    return pa.nulls(len(col), pa.list_(pa.float64()))


# ---------------------------------------------------------------------------- strings
def string_column(col: pa.ChunkedArray | pa.Array) -> tuple[pa.ChunkedArray | pa.Array | None, np.ndarray, np.ndarray]:
    """A column of single values as strings, missing -> ``""``.

    Returns:
      ``(strings, missing [N] bool, nested [N] bool)``: ``nested`` marks values that are lists
      or objects rather than single values; ``strings`` is None when no value could be cast.
    """
    t = col.type
    missing = _np(pc.is_null(col))
    if pa.types.is_null(t):
        return pa.array([""] * len(col), pa.string()), missing, np.zeros_like(missing)
    if not pa.types.is_nested(t):
        try:
            return pc.cast(col, pa.string()).fill_null(""), missing, np.zeros_like(missing)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            pass
    return None, missing, ~missing


def _string_column(raw: RawTable, column: str, bad: BadRows) -> pa.ChunkedArray | pa.Array:
    t = raw.table
    if column not in t.column_names:
        return pa.array([""] * t.num_rows, pa.string())
    name, col = raw.name(column), t.column(column)
    strings, _, nested = string_column(col)
    bad.add(nested, lambda i: RowProblem(name, "must be a single value (string or number), not a "
                                         "list or object", col[i].as_py()))
    return strings if strings is not None else pa.array([""] * len(col), pa.string())


def _np(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A writable numpy copy of an Arrow column."""
    return np.array(column.to_numpy(zero_copy_only=False))
