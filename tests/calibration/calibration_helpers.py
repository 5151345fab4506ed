"""A tiny synthetic society for calibration tests: planted per-unit group preference rates and
several annotators per group voting by Bernoulli draws."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Society:
    """Synthetic comparisons with their ground truth.

    Attributes:
      dataset: ComparisonDataset (``country`` is the group attribute).
      truth: ``[U, G]`` planted P(unit's first response ≻ second) per group.
      groups: G country codes (group g is ``country=<groups[g]>``).
      row_unit, row_group: ``[N]`` each row's planted unit and group index.
      first_is_chosen: ``[N]`` whether the row's chosen text is the unit's first response.
    """

    dataset: object
    truth: np.ndarray
    groups: tuple[str, ...]
    row_unit: np.ndarray
    row_group: np.ndarray
    first_is_chosen: np.ndarray

    def true_predictions(self) -> np.ndarray:
        """``[N]`` the planted P(chosen ≻ rejected) of each row under its own group."""
        p = self.truth[self.row_unit, self.row_group]
        return np.where(self.first_is_chosen, p, 1.0 - p)

    def true_group_predictions(self) -> np.ndarray:
        """``[N, G]`` the planted P(chosen ≻ rejected) of each row under every group."""
        p = self.truth[self.row_unit]
        return np.where(self.first_is_chosen[:, None], p, 1.0 - p)


def make_society(num_units: int = 200, groups: tuple[str, ...] = ("NG", "US", "IN"), votes_per_group: int = 4,
                 annotators_per_group: int = 12, spread: float = 1.0, seed: int = 0, tie_rate: float = 0.0,
                 missing_group_rate: float = 0.0) -> Society:
    """Units with base preference μ_u ~ N(0, 1.5²) and group offsets δ_ug ~ N(0, spread²):
    p_ug = σ(μ_u + δ_ug); each group casts ``votes_per_group`` votes per unit from distinct
    annotators of that group (different ones on different units)."""
    import datasets

    rng = np.random.default_rng(seed)
    g = len(groups)
    truth = 1.0 / (1.0 + np.exp(-(rng.normal(0, 1.5, (num_units, 1)) + rng.normal(0, spread, (num_units, g)))))
    shape = (num_units, g, votes_per_group)
    unit = np.broadcast_to(np.arange(num_units)[:, None, None], shape).reshape(-1)
    group = np.broadcast_to(np.arange(g)[None, :, None], shape).reshape(-1)
    # distinct annotators of the group on each unit
    rater = np.argsort(rng.random((num_units, g, annotators_per_group)), axis=-1)[..., :votes_per_group].reshape(-1)
    wins = rng.random(unit.size) < truth[unit, group]
    tie = rng.random(unit.size) < tie_rate
    first_is_chosen = np.where(tie, rng.random(unit.size) < 0.5, wins)
    first = np.char.add("answer A to question ", unit.astype(str))
    second = np.char.add("answer B to question ", unit.astype(str))
    countries = np.asarray(groups)[group]
    countries = np.where(rng.random(unit.size) < missing_group_rate, "", countries)
    rows = {
        "prompt": np.char.add("question ", unit.astype(str)).tolist(),
        "chosen": np.where(first_is_chosen, first, second).tolist(),
        "rejected": np.where(first_is_chosen, second, first).tolist(),
        "label": np.where(tie, 0.5, 1.0).tolist(),
        "annotator_id": np.char.add(np.char.add(np.asarray(groups)[group], "-"), rater.astype(str)).tolist(),
        "weight": [1.0] * unit.size,
        "country": countries.tolist(),
    }
    return Society(datasets.Dataset.from_dict(rows), truth, tuple(groups), unit, group, first_is_chosen)


def simulate_rates(num_units: int, num_groups: int = 3, votes_per_group: int = 6, spread: float = 1.0,
                   seed: int = 0):
    """Planted ``truth [U, G]`` and the GroupRates of ``votes_per_group`` Bernoulli votes per cell,
    drawn directly (no dataset): for statistics of rates only."""
    from pluralrm.calibration.votes import GroupRates

    rng = np.random.default_rng(seed)
    truth = 1.0 / (1.0 + np.exp(-(rng.normal(0, 1.5, (num_units, 1)) + rng.normal(0, spread, (num_units, num_groups)))))
    count = np.full(truth.shape, float(votes_per_group))
    total = rng.binomial(votes_per_group, truth).astype(float)
    return truth, GroupRates(count, total, total)


