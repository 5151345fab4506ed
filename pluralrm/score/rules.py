"""Aggregation rules: one score per candidate from its rewards under G groups.

Each rule is a social-welfare function (cardinal rules: each candidate's row ``[G]`` alone)
or a voting rule (ranking rules: each group ranks a *candidate set*, e.g. the responses to one
prompt, and the rankings are combined). Groups' rewards are comparable across groups only up
to per-group constants; see :mod:`pluralrm.score.normalize` and ``normalize=`` below.

================  ========  ================================================================
rule              kind      meaning
================  ========  ================================================================
``mean``          cardinal  utilitarian: every group counts equally (average utility)
``weighted``      cardinal  population-weighted utilitarian: groups count by population share
``worst``         cardinal  Rawlsian maxmin (egalitarian): as good as for the worst-off group
``quantile``      cardinal  the q-quantile group: maxmin that forgives the worst q share
``softmin``       cardinal  −τ log Σ_g w_g e^{−s_g/τ}: maxmin as τ→0, utilitarian as τ→∞
``borda``         ranking   Borda count: points (candidates beaten) summed over groups
``majority``      ranking   Copeland: pairwise majorities of groups; contests won (+½ ties)
================  ========  ================================================================

References: Sen (1970), *Collective Choice and Social Welfare* (welfare functions);
Rawls (1971) (maxmin); Borda (1781); Copeland (1951); and for reward models, Bakker et al.
(2022) "Fine-tuning language models to find agreement among humans with diverse preferences".
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pluralrm.errors import ConfigError
from pluralrm.score.normalize import GroupStats, check_table, set_indices, standardize


# ----------------------------------------------------------------------------- cardinal rules
def mean_score(scores: np.ndarray, weights: None = None) -> np.ndarray:
    """Utilitarian mean over groups. ``scores: [N, G]`` → ``[N]``."""
    return scores.mean(axis=1)


def weighted_mean_score(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Population-weighted mean Σ_g w_g s_g / Σ_g w_g. ``scores: [N, G]``, ``weights: [G]`` → ``[N]``."""
    return scores @ weights / weights.sum()


def worst_score(scores: np.ndarray, weights: None = None) -> np.ndarray:
    """Maxmin (Rawls): the minimum over groups. ``scores: [N, G]`` → ``[N]``."""
    return scores.min(axis=1)


def quantile_group(scores: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Index of the q-quantile group of each row (weighted lower quantile, "inverted CDF").

    Groups sorted by score (ties in group order); F_k is the weight share of the first k+1;
    the quantile group is the first with F_k >= q and positive weight. q = 0 is the worst
    group, q = 1 the best; unweighted, this is ``np.quantile(..., method="inverted_cdf")``.

    Returns:
      ``[N]`` group indices.
    """
    order = np.argsort(scores, axis=1, kind="stable")  # [N, G]
    w_sorted = weights[order]
    cumulative = np.cumsum(w_sorted, axis=1)
    share = cumulative / cumulative[:, -1:]  # exactly 1 from the last positive weight on, whatever the rounding
    first = np.argmax((share >= q) & (w_sorted > 0), axis=1)
    return np.take_along_axis(order, first[:, None], axis=1)[:, 0]


def quantile_score(scores: np.ndarray, weights: np.ndarray, q: float = 0.1) -> np.ndarray:
    """The q-quantile of each row's group scores (see :func:`quantile_group`). → ``[N]``."""
    g = quantile_group(scores, weights, q)
    return np.take_along_axis(scores, g[:, None], axis=1)[:, 0]


def softmin_shares(scores: np.ndarray, weights: np.ndarray, temperature: float) -> np.ndarray:
    """π_g ∝ w_g exp(−s_g/τ): each group's share of the soft minimum, ``[N, G]`` (rows sum to 1).

    π is the gradient of :func:`softmin_score` with respect to the group scores.
    """
    logits = _log_weights(weights) - scores / temperature
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def softmin_score(scores: np.ndarray, weights: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Soft minimum −τ log Σ_g w̄_g exp(−s_g/τ) with w̄ = w / Σw. → ``[N]``.

    Tends to the minimum over groups with positive weight as τ → 0 and to the weighted mean
    as τ → ∞ (a log-sum-exp "Kolm-Pollak" egalitarian welfare; Kolm 1976).
    """
    logits = _log_weights(weights / weights.sum()) - scores / temperature  # [N, G]
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return -temperature * lse


def _log_weights(weights: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(weights)


# ----------------------------------------------------------------------------- ranking rules
def borda_points(scores: np.ndarray) -> np.ndarray:
    """Per-group Borda points of one candidate set: the number of candidates each one beats
    in that group's ranking, ties counting ½. ``scores: [n, G]`` → ``[n, G]`` in [0, n−1]."""
    beats = scores[:, None, :] > scores[None, :, :]  # [n, n, G]
    ties = scores[:, None, :] == scores[None, :, :]
    return beats.sum(axis=1) + 0.5 * (ties.sum(axis=1) - 1)


def borda_score(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Borda count Σ_g w_g · points_g over one candidate set (w = 1 per group unweighted). → ``[n]``."""
    return borda_points(scores) @ weights


def pairwise_preferences(scores: np.ndarray) -> np.ndarray:
    """P[i, j, g] = [s_ig > s_jg] + ½[s_ig = s_jg]: does group g prefer candidate i to j?

    ``scores: [n, G]`` → ``[n, n, G]`` with a zero diagonal.
    """
    prefer = (scores[:, None, :] > scores[None, :, :]) + 0.5 * (scores[:, None, :] == scores[None, :, :])
    idx = np.arange(len(scores))
    prefer[idx, idx, :] = 0.0
    return prefer


def pairwise_support(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """S[i, j] = Σ_g w_g P[i, j, g]: the group weight preferring candidate i to j. → ``[n, n]``."""
    return pairwise_preferences(scores) @ weights


def copeland_from_support(support: np.ndarray) -> np.ndarray:
    """Copeland score from pairwise support ``[n, n]``: contests won + ½ per tied contest → ``[n]``."""
    wins = (support > support.T).sum(axis=1)
    ties = (support == support.T).sum(axis=1) - 1  # minus the diagonal
    return wins + 0.5 * ties


def majority_score(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Copeland score of each candidate under pairwise majorities of groups. → ``[n]``.

    A candidate that a (weighted) majority of groups prefers to every other one — a Condorcet
    winner — scores n − 1 and wins.
    """
    return copeland_from_support(pairwise_support(scores, weights))


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Rule:
    """An aggregation rule.

    Attributes:
      name: the name ``aggregate`` takes.
      kind: ``"cardinal"`` (each row alone) or ``"ranking"`` (a candidate set at a time).
      meaning: one line: what the rule means in social-choice terms.
      fn: ``fn(scores [n, G], weights [G] | None, **params) -> [n]``.
      weights: ``"none"`` (takes no weights), ``"optional"`` or ``"required"``.
      params: parameter names and their defaults.
    """

    name: str
    kind: str
    meaning: str
    fn: Callable[..., np.ndarray]
    weights: str = "optional"
    params: Mapping[str, float] = field(default_factory=dict)


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("mean", "cardinal", "utilitarian: every group counts equally", mean_score, "none"),
        Rule("weighted", "cardinal", "population-weighted utilitarian: groups count by their share",
             weighted_mean_score, "required"),
        Rule("worst", "cardinal", "Rawlsian maxmin (egalitarian): as good as for the worst-off group",
             worst_score, "none"),
        Rule("quantile", "cardinal", "q-quantile group: maxmin that forgives the worst q share of groups",
             quantile_score, params={"q": 0.1}),
        Rule("softmin", "cardinal", "soft maxmin −τ log Σ w e^(−s/τ): maxmin as τ→0, utilitarian as τ→∞",
             softmin_score, params={"temperature": 1.0}),
        Rule("borda", "ranking", "Borda count: candidates beaten in each group's ranking, summed over groups",
             borda_score),
        Rule("majority", "ranking", "Copeland: pairwise contests won by a majority of groups (+½ per tie)",
             majority_score),
    )
}


def get_rule(name: str) -> Rule:
    """The rule called ``name`` (ConfigError listing the rules otherwise)."""
    if name not in RULES:
        raise ConfigError(f"unknown aggregation rule {name!r}; choose one of {list(RULES)}")
    return RULES[name]


def resolve_params(rule: Rule, params: Mapping[str, Any]) -> dict[str, float]:
    """The rule's parameters with defaults filled in, validated (ConfigError names the parameter)."""
    unknown = sorted(set(params) - set(rule.params))
    if unknown:
        takes = f"takes {sorted(rule.params)}" if rule.params else "takes no parameters"
        raise ConfigError(f"rule {rule.name!r} {takes}; got {unknown[0]!r}")
    out = {k: float(params.get(k, v)) for k, v in rule.params.items()}
    if "q" in out and not 0.0 <= out["q"] <= 1.0:
        raise ConfigError(f"quantile q must be in [0, 1], got {out['q']}")
    if "temperature" in out and not (np.isfinite(out["temperature"]) and out["temperature"] > 0):
        raise ConfigError(f"softmin temperature must be a positive number, got {out['temperature']}")
    return out


def resolve_weights(rule: Rule, weights: Sequence[float] | np.ndarray | None, num_groups: int) -> np.ndarray | None:
    """Checked group weights ``[G]`` for ``rule``: None for unweighted rules, uniform (1 each) by
    default for rules with optional weights."""
    if rule.weights == "none":
        if weights is not None:
            raise ConfigError(
                f"rule {rule.name!r} weighs every group equally and takes no weights"
                + ("; use 'weighted' for a population-weighted mean" if rule.name == "mean" else "")
            )
        return None
    if weights is None:
        if rule.weights == "required":
            raise ConfigError(
                f"rule {rule.name!r} needs group weights, e.g. the population shares "
                "pluralrm.score.population_weights(model.schema)"
            )
        return np.ones(num_groups)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (num_groups,):
        raise ConfigError(f"weights must have one entry per group ({num_groups}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"weights must be finite, >= 0 and not all 0, got {w.tolist()[:10]}")
    return w


def aggregate(
    scores: np.ndarray,
    rule: str,
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    sets: Sequence | np.ndarray | None = None,
    normalize: str = "none",
    reference: np.ndarray | GroupStats | None = None,
    **params: float,
) -> np.ndarray:
    """Aggregates a reward table over groups with a social-choice rule (see module docstring).

    Args:
      scores: ``[N, G]`` rewards of N candidates under G groups.
      rule: one of :data:`RULES` (``mean``, ``weighted``, ``worst``, ``quantile``,
        ``softmin``, ``borda``, ``majority``).
      weights: ``[G]`` non-negative group weights (``weighted`` needs them; ``quantile``,
        ``softmin``, ``borda``, ``majority`` default to equal weights; ``mean`` and ``worst``
        take none). Population shares: :func:`pluralrm.score.population_weights`.
      sets: ``[N]`` candidate-set labels (e.g. each row's prompt): ranking rules rank within
        each set, and per-set normalisation uses each set's statistics. None = one set.
      normalize: per-group standardisation first: ``"none"``, ``"center"``, ``"zscore"``
        (:func:`pluralrm.score.normalize.standardize`).
      reference: ``[M, G]`` scores of a reference set or its :class:`GroupStats`, used for
        normalisation instead of the candidate sets.
      **params: rule parameters: ``q`` (quantile, default 0.1), ``temperature`` (softmin,
        default 1.0).

    Returns:
      ``[N]`` aggregate scores (higher is better); ranking rules give Borda points or Copeland
      scores within each set.
    """
    spec = get_rule(rule)
    params = resolve_params(spec, params)
    table = check_table(scores)
    candidate_sets = set_indices(sets, len(table))
    table = standardize(table, normalize, reference, sets)
    w = resolve_weights(spec, weights, table.shape[1])
    if spec.kind == "cardinal":
        return spec.fn(table, w, **params)
    out = np.zeros(len(table))
    for rows in candidate_sets:
        out[rows] = spec.fn(table[rows], w, **params)
    return out


__all__ = [
    "RULES",
    "Rule",
    "aggregate",
    "borda_points",
    "borda_score",
    "copeland_from_support",
    "get_rule",
    "majority_score",
    "mean_score",
    "pairwise_preferences",
    "pairwise_support",
    "quantile_group",
    "quantile_score",
    "resolve_params",
    "resolve_weights",
    "softmin_score",
    "softmin_shares",
    "weighted_mean_score",
    "worst_score",
]
