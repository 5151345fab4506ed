"""Python records (dicts) to an Arrow table, keeping every row even when a value is wrong.

``pyarrow`` refuses a column whose values do not share a type (a label that is ``"x"`` in one
row and ``0.5`` in the others). Here such a value becomes null and a :class:`RowProblem` for
its row, so that the bad-row policy decides what happens. What a value should be depends on
the column it lands in (after renaming): a string for the texts, a number for ``label`` and
``weight``, a list of numbers for the value columns, a single value for everything else.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pluralrm.data.badrows import RowProblem
from pluralrm.data.dialogue import flatten_rows

# How each of our columns is coerced; every other column is "scalar".
_KINDS = {"prompt": "text", "chosen": "text", "rejected": "text", "label": "number",
          "weight": "number", "chosen_values": "list", "rejected_values": "list"}


def records_table(
    records: Sequence[Mapping],
    problems: dict[int, RowProblem],
    rename: Mapping[str, str],
    numbers_as_text: bool = False,
) -> pa.Table:
    """Records to Arrow; a value that breaks its column's type becomes null plus a problem.

    Args:
      records: N dicts (missing keys are nulls).
      problems: table row -> problem; updated in place.
      rename: ``{ours: theirs}``: which of our columns each source column becomes.
      numbers_as_text: every value is text (CSV): keep all columns as strings.

    Returns:
      An N-row table with one column per key seen, in order of first appearance.
    """
    ours = {theirs: our for our, theirs in rename.items()}
    keys: dict[str, None] = {}
    for r in records:
        keys.update(dict.fromkeys(r))
    values = {key: [r.get(key) for r in records] for key in keys}
    if not numbers_as_text:
        _flatten_messages(values, rename, problems)
    columns = {}
    for key, column in values.items():
        kind = "text" if numbers_as_text else _KINDS.get(ours.get(key, key), "scalar")
        columns[str(key)] = _column(column, kind, str(key), problems)
    if not columns:  # keep N rows even without a column
        return pa.table({"_": pa.nulls(len(records))}).select([])
    return pa.table(columns)


def _flatten_messages(values: dict[str, list], rename: Mapping[str, str], problems: dict[int, RowProblem]) -> None:
    """Chat-message lists in the text columns to strings (:func:`dialogue.flatten_rows`)."""
    theirs = {our: rename.get(our, our) for our in ("prompt", "chosen", "rejected")}
    if theirs["chosen"] not in values or theirs["rejected"] not in values:
        return
    texts = [values.get(theirs[c], []) for c in ("prompt", "chosen", "rejected")]
    if not any(isinstance(v, list) for column in texts for v in column):
        return
    prompt, found = flatten_rows(values.get(theirs["prompt"]), values[theirs["chosen"]], values[theirs["rejected"]])
    values[theirs["prompt"]] = prompt
    for i, p in found.items():
        problems.setdefault(i, RowProblem(theirs[p.field], p.reason, p.value))


def _column(values: list, kind: str, name: str, problems: dict[int, RowProblem]) -> pa.Array:
    try:
        array = pa.array(values)
        if _fits(array.type, kind) and not (kind in ("number", "list") and _has_bool(values)):
            return array  # (pyarrow would turn True into 1.0 next to numbers)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        pass
    clean = []
    for i, v in enumerate(values):
        ok = v is None or _value_fits(v, kind)
        if not ok:
            problems.setdefault(i, RowProblem(name, _EXPECTED[kind], v))
        clean.append(_coerce(v, kind) if ok and v is not None else None)
    return pa.array(clean, type=_TYPES[kind])


def _has_bool(values: list) -> bool:
    return any(isinstance(v, bool) or (isinstance(v, list) and any(isinstance(x, bool) for x in v))
               for v in values)


def _fits(t: pa.DataType, kind: str) -> bool:
    if pa.types.is_null(t):
        return True
    if kind == "text":
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_list(t)
    if kind == "number":
        return pa.types.is_integer(t) or pa.types.is_floating(t)
    if kind == "list":
        return pa.types.is_list(t) and (pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type))
    return True


def _value_fits(v: Any, kind: str) -> bool:
    if kind == "text":
        return isinstance(v, str)
    if kind == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "list":
        return isinstance(v, list) and all(_value_fits(x, "number") for x in v)
    return isinstance(v, (str, int, float, bool))


def _coerce(v: Any, kind: str) -> Any:
    if kind == "number":
        return _float(v)
    if kind == "list":
        return [_float(x) for x in v]
    if kind == "scalar" and not isinstance(v, str):
        return str(v).lower() if isinstance(v, bool) else str(v)
    return v


def _float(v: int | float) -> float:
    try:
        return float(v)
    except OverflowError:  # an integer beyond float range; validation refuses it as non-finite
        return float("inf") if v > 0 else float("-inf")


_EXPECTED = {"text": "must be a string", "number": "is not a number",
             "list": "must be a list of numbers", "scalar": "must be a single value (string or number)"}
_TYPES = {"text": pa.string(), "number": pa.float64(), "list": pa.list_(pa.float64()), "scalar": pa.string()}
