"""Orientation-free comparison units.

Rows store comparisons as (chosen, rejected), so every hard label is 1.0 and two annotators
who disagree about the same two responses appear as two rows with the texts swapped. Agreement,
per-group preference rates and divergence need the *unit* (one prompt and one unordered pair of
responses) and each row's vote in a fixed orientation. ``canonicalize`` provides both:

- ``unit[i]``: an integer id shared by all rows that compare the same two responses to the same
  prompt (or the same ``item_id`` when the dataset has one), in order of first appearance;
- ``first_is_chosen[i]``: whether row i's ``chosen`` is the unit's canonical first response
  (the lexicographically smaller text), so ``vote = label if first_is_chosen else 1 - label``
  is row i's P(first ≻ second) and P(a ≻ b) = 1 − P(b ≻ a) holds by construction.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CanonicalPairs:
    """Rows mapped to orientation-free units (see module docstring).

    Attributes:
      unit: ``[N]`` int64 unit id per row.
      first_is_chosen: ``[N]`` bool.
      vote: ``[N]`` float64, P(unit's first response ≻ second) according to row i.
      num_units: U, the number of distinct units.
      unit_row: ``[U]`` int64, the first row of each unit (to recover its texts).
    """

    unit: np.ndarray
    first_is_chosen: np.ndarray
    vote: np.ndarray
    num_units: int
    unit_row: np.ndarray


def canonicalize(
    prompt: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    label: Sequence[float] | np.ndarray,
    item_id: Sequence[str] | None = None,
) -> CanonicalPairs:
    """Maps comparisons to orientation-free units.

    Args:
      prompt, chosen, rejected: the texts, N each.
      label: ``[N]`` P(chosen ≻ rejected).
      item_id: optional ``[N]`` item ids; when given, the unit key is (item_id, pair) instead of
        (prompt, pair), so the same pair under two items stays two units.

    Returns:
      CanonicalPairs.
    """
    n = len(chosen)
    label = np.asarray(label, dtype=np.float64).reshape(n)
    keys = item_id if item_id is not None else prompt
    first_is_chosen = np.fromiter((c <= r for c, r in zip(chosen, rejected)), dtype=bool, count=n)
    index: dict[tuple[str, str, str], int] = {}
    unit = np.empty(n, dtype=np.int64)
    unit_row: list[int] = []
    for i, (k, c, r, fc) in enumerate(zip(keys, chosen, rejected, first_is_chosen)):
        key = (k, c, r) if fc else (k, r, c)
        u = index.get(key)
        if u is None:
            u = index[key] = len(unit_row)
            unit_row.append(i)
        unit[i] = u
    vote = np.where(first_is_chosen, label, 1.0 - label)
    return CanonicalPairs(
        unit=unit,
        first_is_chosen=first_is_chosen,
        vote=vote,
        num_units=len(unit_row),
        unit_row=np.asarray(unit_row, dtype=np.int64),
    )


def canonicalize_dataset(dataset) -> CanonicalPairs:
    """``canonicalize`` over a ComparisonDataset's columns (uses ``item_id`` when present)."""
    cols = dataset.column_names
    # dataset[c][:] reads the whole column at once; iterating dataset[c] formats row by row
    return canonicalize(
        dataset["prompt"][:],
        dataset["chosen"][:],
        dataset["rejected"][:],
        dataset["label"][:],
        dataset["item_id"][:] if "item_id" in cols else None,
    )
