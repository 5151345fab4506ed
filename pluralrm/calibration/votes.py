"""A ComparisonDataset's rows as orientation-free votes, with their group and annotator.

Every calibration measure works on the same view of the data: row i is a vote
``vote[i] = P(first ≻ second)`` on comparison unit ``unit[i]`` (from
:func:`pluralrm.data.pairs.canonicalize_dataset`: one prompt or item and one unordered pair of
responses), cast by annotator ``annotator[i]`` who belongs to group ``group[i]``. A row's group is
the combination of its values of the ``by`` attributes, labelled like
:meth:`pluralrm.data.schema.GroupSchema.group_labels` (``"country=NG,language=yo"``). Rows whose
``by`` value is unknown (``""``) have group ``-1`` and take part in no per-group measure.

:class:`GroupRates` then sums the votes per unit and group: the empirical preference rate of
each group on each unit, with its vote count, as dense ``[U, G]`` arrays (memory: about 24 bytes
per unit and group).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pluralrm.data.pairs import canonicalize_dataset
from pluralrm.data.schema import RESERVED_COLUMNS, clean_value
from pluralrm.errors import DataError


@dataclass(frozen=True)
class GroupVotes:
    """Rows as votes (see module docstring). N rows, U units, G groups, R annotators.

    Attributes:
      unit: ``[N]`` int64 unit id.
      vote: ``[N]`` float64, the row's P(unit's first response ≻ second); ties are 0.5.
      group: ``[N]`` int64 index into ``group_labels``, -1 when a ``by`` value is unknown.
      annotator: ``[N]`` int64 annotator index; a row without ``annotator_id`` is an
        annotator of its own.
      first_is_chosen: ``[N]`` bool, whether the row's ``chosen`` is the unit's first response.
      unit_row: ``[U]`` int64, a row of each unit (to show its texts).
      group_labels: G labels, most frequent first unless given.
      by: the group attributes.
    """

    unit: np.ndarray
    vote: np.ndarray
    group: np.ndarray
    annotator: np.ndarray
    first_is_chosen: np.ndarray
    unit_row: np.ndarray
    group_labels: tuple[str, ...]
    by: tuple[str, ...]

    @property
    def num_rows(self) -> int:
        return int(self.unit.shape[0])

    @property
    def num_units(self) -> int:
        return int(self.unit_row.shape[0])

    @property
    def num_groups(self) -> int:
        return len(self.group_labels)

    @property
    def num_annotators(self) -> int:
        return int(self.annotator.max()) + 1 if self.num_rows else 0

    def canonical(self, predictions: np.ndarray) -> np.ndarray:
        """Row predictions of P(chosen ≻ rejected), ``[N]`` or ``[N, G]``, as P(first ≻ second)."""
        flip = self.first_is_chosen.reshape((-1,) + (1,) * (predictions.ndim - 1))
        return np.where(flip, predictions, 1.0 - predictions)


def column(dataset, name: str) -> np.ndarray:
    """Column ``name`` of a ``datasets.Dataset`` as numpy, rows in dataset order. ``[N]``."""
    return dataset.with_format("arrow")[name].to_numpy(zero_copy_only=False)


def group_votes(dataset, by: str | Sequence[str], group_labels: Sequence[str] | None = None) -> GroupVotes:
    """Builds the vote view of a ComparisonDataset.

    Args:
      dataset: a ComparisonDataset (``datasets.Dataset``).
      by: the group attribute(s) defining a row's group.
      group_labels: the groups, in the order wanted (e.g. a model's ``group_labels``); groups in
        the data but not listed are an error. Default: the groups seen, most rows first.

    Returns:
      GroupVotes.

    Raises:
      DataError: a ``by`` attribute that is not a group column of the dataset, or a group of the
        data missing from ``group_labels``.
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by:
        raise DataError("calibration needs at least one group attribute in `by`", field="by")
    for name in by:
        if name not in dataset.column_names or name in RESERVED_COLUMNS:
            raise DataError(
                f"{name!r} is not a group attribute of the dataset (columns: {dataset.column_names})",
                field=name,
            )
    pairs = canonicalize_dataset(dataset)
    n = len(pairs.unit)
    known = np.ones(n, dtype=bool)
    codes, vocabularies = [], []
    for name in by:
        values = np.asarray([clean_value(v) for v in column(dataset, name)], dtype=object)
        known &= values != ""
        vocab, code = np.unique(values.astype(str), return_inverse=True)
        vocabularies.append(vocab)
        codes.append(code.reshape(n))
    combos, combo_index = np.unique(np.stack(codes, axis=1).reshape(n, len(by)), axis=0, return_inverse=True)
    combo_index = combo_index.reshape(n)
    labels = [",".join(f"{a}={vocabularies[j][c]}" for j, (a, c) in enumerate(zip(by, combo)))
              for combo in combos]
    combo_known = np.bincount(combo_index, weights=known, minlength=len(combos)) > 0
    counts = np.bincount(combo_index, minlength=len(combos))
    seen = [i for i in range(len(combos)) if combo_known[i]]
    if group_labels is None:
        order = sorted(seen, key=lambda i: (-counts[i], labels[i]))
        group_labels = tuple(labels[i] for i in order)
    else:
        group_labels = tuple(group_labels)
        missing = [labels[i] for i in seen if labels[i] not in group_labels]
        if missing:
            raise DataError(
                f"the data has groups {missing} that the predictions' group_labels do not list "
                f"({list(group_labels)}); give predictions for every group or filter the data",
                field="group_labels",
            )
    position = {label: g for g, label in enumerate(group_labels)}
    combo_group = np.array([position.get(label, -1) for label in labels], dtype=np.int64)
    group = np.where(known, combo_group[combo_index] if n else np.zeros(0, np.int64), -1)
    return GroupVotes(
        unit=pairs.unit,
        vote=pairs.vote,
        group=group.astype(np.int64),
        annotator=_annotator_index(column(dataset, "annotator_id") if "annotator_id" in dataset.column_names
                                   else np.full(n, "", dtype=object)),
        first_is_chosen=pairs.first_is_chosen,
        unit_row=pairs.unit_row,
        group_labels=group_labels,
        by=by,
    )


def _annotator_index(ids: np.ndarray) -> np.ndarray:
    """``[N]`` annotator index; each row with an empty id gets an index of its own."""
    ids = np.asarray(["" if v is None else str(v) for v in ids], dtype=str).reshape(-1)
    anonymous = ids == ""
    named, index = np.unique(ids[~anonymous], return_inverse=True)
    out = np.empty(ids.shape[0], dtype=np.int64)
    out[~anonymous] = index.reshape(-1)
    out[anonymous] = len(named) + np.arange(int(anonymous.sum()))
    return out


@dataclass(frozen=True)
class GroupRates:
    """Votes summed per unit and group, ``[U, G]`` each (``[..., U, G]`` for resampled weights).

    Attributes:
      count: number of votes (a weighted count under bootstrap weights).
      total: sum of votes.
      total_sq: sum of squared votes (for the within-cell variance of soft votes and ties).
    """

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    @property
    def rate(self) -> np.ndarray:
        """Empirical P(first ≻ second) per unit and group; NaN where a group has no vote."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / np.where(self.count > 0, self.count, 1), np.nan)

    @property
    def variance(self) -> np.ndarray:
        """Unbiased sample variance of the votes in each cell; NaN below two votes.

        For 0/1 votes this is ``n r (1 − r) / (n − 1)``; ``variance / count`` is then an unbiased
        estimate of the binomial variance of ``rate``.
        """
        n = self.count
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (self.total_sq - self.total**2 / np.where(n > 0, n, 1)) / (n - 1)
        return np.where(n >= 2, np.maximum(var, 0.0), np.nan)


def group_rates(votes: GroupVotes) -> GroupRates:
    """Sums votes per unit and group. Returns GroupRates with arrays ``[U, G]``."""
    keep = votes.group >= 0
    cell = votes.unit[keep] * votes.num_groups + votes.group[keep]
    size = votes.num_units * votes.num_groups
    x = votes.vote[keep]
    shape = (votes.num_units, votes.num_groups)
    return GroupRates(
        count=np.bincount(cell, minlength=size).astype(np.float64).reshape(shape),
        total=np.bincount(cell, weights=x, minlength=size).reshape(shape),
        total_sq=np.bincount(cell, weights=x * x, minlength=size).reshape(shape),
    )
