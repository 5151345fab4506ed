"""Fidelity to disagreement: does the model reproduce *how groups differ*, not just the average?

Per comparison unit u and group g, the data give an empirical preference rate ``r_ug`` from
``n_ug`` votes (:class:`~pluralrm.calibration.votes.GroupRates`) and the model gives ``q_ug``,
its P(first ≻ second) conditioned on g (:func:`unit_group_predictions`).

**Correlation.** Pearson and Spearman correlation, over units, between the model's and the
data's group differences: ``q_ua − q_ub`` vs ``r_ua − r_ub`` for every pair of groups, and each
group's deviation from the other groups pooled, ``q_ug − q_u,−g`` vs ``r_ug − r_u,−g``. The
empirical side is noisy, so these correlations are attenuated towards 0 even for a perfect model.

**Disagreement retention** = predicted between-group divergence / true between-group divergence,
with squared preference gaps as the divergence:

    overall:   Σ_u Σ_{a<b} (q_ua − q_ub)²   /  Σ_u Σ_{a<b} [(r_ua − r_ub)² − s²_ua/n_ua − s²_ub/n_ub]
    group g:   Σ_u (q_ug − q_u,−g)²         /  Σ_u [(r_ug − r_u,−g)² − s²_ug/n_ug − V̂_u,−g]

(s² the unbiased variance of a cell's votes; ``r_u,−g`` the other groups' votes pooled with
V̂ = Σ_h n_uh s²_uh / n_u,−g² the estimated variance of that pooled rate; ``q_u,−g`` the model's
predictions pooled with the same vote counts as weights). Only cells with at least
``max(min_votes, 2)`` votes take part.

Why correct the denominator: with few votes per unit the raw empirical gap is inflated by
binomial noise, E[(r_a − r_b)²] = (p_a − p_b)² + p_a(1 − p_a)/n_a + p_b(1 − p_b)/n_b. With three
votes per group and p ≈ ½ the noise term is ≈ 0.17, several times a typical true squared gap,
so the raw ratio would make every model — even one predicting the true group probabilities —
look as if it washed out most of the disagreement. Subtracting unbiased estimates of the noise
(its expected value when the groups do not differ) leaves an unbiased estimate of Σ (p_a − p_b)²,
so a model predicting the true group probabilities has retention ≈ 1, a pooled model that
ignores the group has retention exactly 0, and a model exaggerating differences exceeds 1. The
ratio is NaN when the corrected denominator is ≤ 0 (no detectable between-group difference).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from pluralrm.calibration.votes import GroupRates, GroupVotes
from pluralrm.errors import DataError


def unit_group_predictions(votes: GroupVotes, predictions: np.ndarray | None = None,
                           group_predictions: np.ndarray | None = None) -> np.ndarray:
    """The model's P(first ≻ second) per unit and group, ``[U, G]``.

    Args:
      votes: GroupVotes.
      predictions: ``[N]`` P(chosen ≻ rejected) of each row under the row's own group; gives
        ``q_ug`` for the cells that have votes (NaN elsewhere).
      group_predictions: ``[N, G]`` P(chosen ≻ rejected) of each row under every group
        (columns in ``votes.group_labels`` order); gives every cell of a unit with a row.

    Returns:
      ``[U, G]``: the mean over a cell's (or unit's) rows, in canonical orientation.
    """
    u, g = votes.num_units, votes.num_groups
    if group_predictions is not None:
        q = votes.canonical(np.asarray(group_predictions, dtype=np.float64))
        rows = np.bincount(votes.unit, minlength=u)
        sums = np.stack([np.bincount(votes.unit, weights=q[:, j], minlength=u) for j in range(g)], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rows[:, None] > 0, sums / rows[:, None], np.nan)
    if predictions is None:
        raise DataError("unit_group_predictions needs predictions or group_predictions")
    q = votes.canonical(np.asarray(predictions, dtype=np.float64))
    keep = votes.group >= 0
    cell = votes.unit[keep] * g + votes.group[keep]
    rows = np.bincount(cell, minlength=u * g)
    sums = np.bincount(cell, weights=q[keep], minlength=u * g)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, sums / rows, np.nan).reshape(u, g)


@dataclass(frozen=True)
class PooledRest:
    """Per unit and group g: the other groups' eligible cells pooled (see module docstring).

    Attributes (all ``[..., U, G]``): eligible (g's own cell takes part), own_rate,
    own_noise (s²/n), own_model, rest_count, rest_rate, rest_noise (V̂), rest_model.
    """

    eligible: np.ndarray
    own_rate: np.ndarray
    own_noise: np.ndarray
    own_model: np.ndarray
    rest_count: np.ndarray
    rest_rate: np.ndarray
    rest_noise: np.ndarray
    rest_model: np.ndarray


def pooled_rest(model: np.ndarray, rates: GroupRates, min_votes: int = 2) -> PooledRest:
    """Each group's cell against the other groups pooled, on ``[..., U, G]`` arrays."""
    need = max(min_votes, 2)
    n = rates.count
    eligible = (n >= need) & np.isfinite(model)
    weight = np.where(eligible, n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        own_rate = np.where(eligible, rates.total / np.where(eligible, n, 1.0), 0.0)
        own_noise = np.where(eligible, rates.variance / np.where(eligible, n, 1.0), 0.0)
        own_model = np.where(eligible, model, 0.0)
        totals = [x.sum(-1, keepdims=True) - x for x in
                  (weight, weight * own_rate, weight * own_noise * weight, weight * own_model)]
        rest_n = totals[0]
        safe = np.where(rest_n > 0, rest_n, 1.0)
        return PooledRest(eligible, own_rate, own_noise, own_model, rest_n, totals[1] / safe,
                          totals[2] / safe**2, totals[3] / safe)


def retention_terms(model: np.ndarray, rates: GroupRates, min_votes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit numerator and denominator terms of disagreement retention.

    Args:
      model: ``[..., U, G]`` q_ug (NaN where unknown; such cells are left out).
      rates: GroupRates ``[..., U, G]``.
      min_votes: votes a cell needs (at least 2).

    Returns:
      ``(num [..., U, G + 1], den [..., U, G + 1])``: columns 0..G−1 per group (against the
      rest pooled), column G overall (all pairs of eligible cells). Sums over units give the
      ratio's numerator and denominator (so units can be resampled).
    """
    rest = pooled_rest(model, rates, min_votes)
    use = rest.eligible & (rest.rest_count > 0)
    group_num = np.where(use, (rest.own_model - rest.rest_model) ** 2, 0.0)
    group_den = np.where(use, (rest.own_rate - rest.rest_rate) ** 2 - rest.own_noise - rest.rest_noise, 0.0)
    e = rest.eligible.sum(-1)
    q, r = rest.own_model, rest.own_rate
    pair_num = e * (q**2).sum(-1) - q.sum(-1) ** 2            # Σ_{a<b} (q_a − q_b)²
    pair_den = e * (r**2).sum(-1) - r.sum(-1) ** 2 - np.maximum(e - 1, 0) * rest.own_noise.sum(-1)
    num = np.concatenate([group_num, np.where(e >= 2, pair_num, 0.0)[..., None]], -1)
    den = np.concatenate([group_den, np.where(e >= 2, pair_den, 0.0)[..., None]], -1)
    return num, den


def retention_ratio(num_total: np.ndarray, den_total: np.ndarray) -> np.ndarray:
    """Σ num / Σ den, NaN where the corrected denominator is ≤ 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den_total > 0, num_total / np.where(den_total > 0, den_total, 1.0), np.nan)


def disagreement_retention(model: np.ndarray, rates: GroupRates, min_votes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Disagreement retention per group and overall (module docstring).

    Returns:
      ``(retention [G + 1], units [G + 1])``: per group then overall, and the units behind each.
    """
    num, den = retention_terms(model, rates, min_votes)
    rest = pooled_rest(model, rates, min_votes)
    units = np.concatenate([(rest.eligible & (rest.rest_count > 0)).sum(-2),
                            (rest.eligible.sum(-1) >= 2).sum(-1, keepdims=True)], -1)
    return retention_ratio(num.sum(-2), den.sum(-2)), units


@dataclass(frozen=True)
class DifferenceCorrelation:
    """Correlations between predicted and empirical group differences over units.

    Attributes:
      pair_pearson, pair_spearman, pair_units: ``[G, G]`` for q_a − q_b vs r_a − r_b (NaN on
        the diagonal and below 3 units).
      group_pearson, group_spearman, group_units: ``[G]`` for each group against the rest.
    """

    pair_pearson: np.ndarray
    pair_spearman: np.ndarray
    pair_units: np.ndarray
    group_pearson: np.ndarray
    group_spearman: np.ndarray
    group_units: np.ndarray


def difference_correlation(model: np.ndarray, rates: GroupRates, min_votes: int = 1) -> DifferenceCorrelation:
    """Pearson and Spearman correlations of predicted vs empirical group differences.

    Args:
      model: ``[U, G]`` q_ug.
      rates: GroupRates ``[U, G]``.
      min_votes: votes a cell needs to take part (1 is fine: noise attenuates, not biases, the
        sign of a correlation).

    Returns:
      DifferenceCorrelation.
    """
    n, rate = rates.count, rates.rate
    ok = (n >= min_votes) & np.isfinite(model)
    g = n.shape[1]
    pearson, spearman, units = np.full((g, g), np.nan), np.full((g, g), np.nan), np.zeros((g, g))
    for a, b in zip(*np.triu_indices(g, k=1)):
        both = ok[:, a] & ok[:, b]
        x, y = model[both, a] - model[both, b], rate[both, a] - rate[both, b]
        r_pearson, r_spearman = _correlations(x, y)
        pearson[a, b] = pearson[b, a] = r_pearson
        spearman[a, b] = spearman[b, a] = r_spearman
        units[a, b] = units[b, a] = both.sum()
    weight = np.where(ok, n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rest_n = weight.sum(1, keepdims=True) - weight
        rest_r = ((weight * np.nan_to_num(rate)).sum(1, keepdims=True) - weight * np.nan_to_num(rate)) / rest_n
        rest_q = ((weight * np.nan_to_num(model)).sum(1, keepdims=True) - weight * np.nan_to_num(model)) / rest_n
    use = ok & (rest_n > 0)
    group_corr = [_correlations((model - rest_q)[use[:, j], j], (rate - rest_r)[use[:, j], j]) for j in range(g)]
    return DifferenceCorrelation(pearson, spearman, units,
                                 np.array([c[0] for c in group_corr]), np.array([c[1] for c in group_corr]),
                                 use.sum(0).astype(np.float64))


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman) or NaN with fewer than 3 points or a constant side."""
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return float(np.corrcoef(x, y)[0, 1]), float(np.corrcoef(scipy_stats.rankdata(x), scipy_stats.rankdata(y))[0, 1])
