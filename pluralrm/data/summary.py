"""What a ComparisonDataset holds, in numbers: sizes, groups, labels, between-group disagreement.

The disagreement figure per group attribute is descriptive, not a test: over the units
(prompt + unordered response pair, :mod:`pluralrm.data.pairs`) that received votes from at
least two known values of the attribute, the mean of the *spread* of the groups' empirical
preference rates, ``max_g rate_g − min_g rate_g`` (rates from
:func:`pluralrm.data.convert.preference_rates`). It is 0 when every group votes the same way on
every shared unit and 1 when, on every shared unit, some group always prefers one response
and another group always the other. With few votes per group it is inflated by sampling noise
(one vote per group gives spreads of 0 or 1); ``pluralrm.calibration`` has the tests.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from pluralrm.data.columns import arrow_column
from pluralrm.data.convert import preference_rates
from pluralrm.data.pairs import canonicalize_dataset
from pluralrm.data.schema import group_attributes

_SHOWN_VALUES = 8


@dataclass(frozen=True)
class LabelCounts:
    """Rows by label kind: ``hard`` (0 or 1), ``ties`` (0.5), ``soft`` (anything else)."""

    hard: int
    ties: int
    soft: int


@dataclass(frozen=True)
class GroupDisagreement:
    """Between-group disagreement on one attribute (module docstring).

    Attributes:
      attribute: the group attribute.
      units: units with votes from at least two known values of it.
      mean_spread: mean over those units of max − min group preference rate (NaN if none).
    """

    attribute: str
    units: int
    mean_spread: float


@dataclass(frozen=True)
class DatasetSummary:
    """Counts that describe a ComparisonDataset.

    Attributes:
      comparisons: rows.
      annotators: distinct non-empty ``annotator_id`` values.
      units: distinct comparison units (prompt or item id + unordered pair of responses).
      group_values: per group attribute, ``{value: rows}``, most frequent first ("" = unknown).
      labels: label kinds.
      disagreement: one :class:`GroupDisagreement` per group attribute.
    """

    comparisons: int
    annotators: int
    units: int
    group_values: Mapping[str, Mapping[str, int]]
    labels: LabelCounts
    disagreement: tuple[GroupDisagreement, ...]

    def to_text(self) -> str:
        """A plain-text table for terminals and logs."""
        w = max([len("comparisons"), *map(len, self.group_values)])
        lines = [
            f"{'comparisons':<{w}}  {self.comparisons:,}",
            f"{'annotators':<{w}}  {self.annotators:,}",
            f"{'units':<{w}}  {self.units:,}",
            f"{'labels':<{w}}  hard {self.labels.hard:,} · ties {self.labels.ties:,} · soft {self.labels.soft:,}",
        ]
        for attribute, counts in self.group_values.items():
            shown = ", ".join(f"{v or '<unknown>'} {c:,}" for v, c in list(counts.items())[:_SHOWN_VALUES])
            more = len(counts) - _SHOWN_VALUES
            lines.append(f"{attribute:<{w}}  {len(counts)} values: {shown}" + (f", +{more} more" if more > 0 else ""))
        if self.disagreement:
            lines.append("between-group disagreement (mean max−min group preference rate over units "
                         "voted on by ≥2 groups):")
            for d in self.disagreement:
                figure = "n/a (no unit has votes from two groups)" if d.units == 0 else \
                    f"{d.mean_spread:.3f} over {d.units:,} units"
                lines.append(f"  {d.attribute:<{w}}  {figure}")
        return "\n".join(lines)


def summarize(dataset) -> DatasetSummary:
    """Counts rows, annotators, units, group values, label kinds and between-group disagreement.

    Args:
      dataset: a ComparisonDataset.

    Returns:
      A :class:`DatasetSummary`.
    """
    pairs = canonicalize_dataset(dataset)
    label = arrow_column(dataset, "label").to_numpy()
    hard = int(np.sum((label == 0.0) | (label == 1.0)))
    ties = int(np.sum(label == 0.5))
    attributes = group_attributes(dataset)
    group_values = {a: _value_counts(arrow_column(dataset, a)) for a in attributes}
    disagreement = tuple(
        GroupDisagreement(a, *group_spread(preference_rates(dataset, by=[a], pairs=pairs), a))
        for a in attributes
    )
    return DatasetSummary(
        comparisons=dataset.num_rows,
        annotators=len(set(pc.unique(arrow_column(dataset, "annotator_id")).to_pylist()) - {""}),
        units=pairs.num_units,
        group_values=group_values,
        labels=LabelCounts(hard, ties, dataset.num_rows - hard - ties),
        disagreement=disagreement,
    )


def _value_counts(column) -> dict[str, int]:
    """``{value: rows}``, most frequent first (ties by value)."""
    counts = pc.value_counts(column).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: (-c["counts"], c["values"]))}


def group_spread(rates: Mapping[str, np.ndarray], attribute: str) -> tuple[int, float]:
    """Mean over units of max − min group rate, over units with ≥2 known values.

    Args:
      rates: :func:`~pluralrm.data.convert.preference_rates` output with ``by=[attribute]``
        (rows sorted by unit).
      attribute: the attribute; rows with the unknown value ``""`` are left out.

    Returns:
      ``(units, mean_spread)``; ``(0, nan)`` when no unit has two known values.
    """
    known = rates[attribute] != ""
    unit, rate = rates["unit"][known], rates["rate"][known]
    if unit.size == 0:
        return 0, float("nan")
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    counts = np.diff(np.r_[starts, unit.size])
    spread = np.maximum.reduceat(rate, starts) - np.minimum.reduceat(rate, starts)
    shared = counts >= 2
    if not shared.any():
        return 0, float("nan")
    return int(shared.sum()), float(spread[shared].mean())
