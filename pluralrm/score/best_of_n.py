"""Best-of-n selection across groups, with the group that decided it.

:func:`select` is the pure part (a reward table in, a :class:`Selection` out);
:func:`best_of_n` scores the candidates with a model first.

The *decisive group* of a selection is defined per rule:

- ``mean`` / ``weighted``: the group contributing most to the chosen candidate's lead over
  the runner-up, argmax_g w̄_g (s_chosen,g − s_runner-up,g) (w̄ = 1/G for ``mean``).
- ``worst``: the worst-off group under the chosen candidate, argmin_g s_chosen,g (its score is
  the aggregate).
- ``quantile``: the q-quantile group under the chosen candidate (its score is the aggregate).
- ``softmin``: the group with the largest share π_g ∝ w_g e^{−s_chosen,g/τ} of the soft
  minimum (π is the aggregate's gradient; this is the worst-off group as τ → 0).
- ``borda`` / ``majority``: the *pivotal* group: one whose removal (weight set to 0) changes
  the winner. Among several, the heaviest (then the first in order); None when no single
  group's removal changes the winner.

Ties between candidates go to the lower index; between groups, to the earlier group.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pluralrm.errors import DataError
from pluralrm.score.normalize import GroupStats, standardize
from pluralrm.score.rules import (
    borda_points,
    copeland_from_support,
    get_rule,
    pairwise_preferences,
    quantile_group,
    resolve_params,
    resolve_weights,
    softmin_shares,
)
from pluralrm.score.table import GroupSpec, group_scores, is_single_spec, population_weights


@dataclass(frozen=True)
class Selection:
    """The outcome of aggregating a candidate set.

    Attributes:
      index: the chosen candidate.
      scores: ``[n]`` aggregate score of each candidate under ``rule``.
      table: ``[n, K]`` per-group rewards as the model gave them.
      normalized: ``[n, K]`` the table the rule saw (after per-group standardisation).
      group_labels: the K groups' labels.
      rule: the aggregation rule.
      weights: ``[K]`` the group weights used (None for unweighted rules).
      decisive_group: index of the decisive group (module docstring), or None.
      decisive_reason: one sentence saying why that group decided (or why none did).
    """

    index: int
    scores: np.ndarray
    table: np.ndarray
    normalized: np.ndarray
    group_labels: list[str]
    rule: str
    weights: np.ndarray | None
    decisive_group: int | None
    decisive_reason: str

    @property
    def decisive_label(self) -> str | None:
        return None if self.decisive_group is None else self.group_labels[self.decisive_group]


@dataclass(frozen=True)
class BestOfN(Selection):
    """A :class:`Selection` over text candidates; ``candidate`` is the chosen text."""

    candidate: str = ""


def select(
    table: np.ndarray,
    rule: str = "mean",
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    group_labels: Sequence[str] | None = None,
    normalize: str = "none",
    reference: np.ndarray | GroupStats | None = None,
    **params: float,
) -> Selection:
    """Chooses the best of n candidates from their reward table ``[n, K]`` (one candidate set).

    Args as :func:`pluralrm.score.aggregate`; ``group_labels`` name the K columns.
    """
    spec = get_rule(rule)
    params = resolve_params(spec, params)
    raw = np.asarray(table, dtype=np.float64)
    if raw.ndim != 2 or len(raw) == 0:
        raise DataError(f"need a table [n, K] of at least one candidate, got shape {raw.shape}", field="candidates")
    norm = standardize(raw, normalize, reference)
    w = resolve_weights(spec, weights, norm.shape[1])
    scores = spec.fn(norm, w, **params)
    chosen = int(np.argmax(scores))
    labels = list(group_labels) if group_labels is not None else [f"group {g}" for g in range(norm.shape[1])]
    if len(labels) != norm.shape[1]:
        raise DataError(f"{len(labels)} group labels for {norm.shape[1]} columns", field="group_labels")
    g, reason = _decisive(norm, scores, chosen, rule, w, params, labels)
    return Selection(chosen, scores, raw, norm, labels, rule, w, g, reason)


def best_of_n(
    model: Any,
    prompt: str,
    candidates: Sequence[str],
    groups: GroupSpec | Sequence[GroupSpec] | None = None,
    rule: str = "mean",
    weights: Sequence[float] | np.ndarray | str | None = None,
    *,
    normalize: str = "none",
    reference: np.ndarray | GroupStats | None = None,
    fallback: str = "pooled",
    risk: float | None = None,
    **params: float,
) -> BestOfN:
    """Scores n candidate responses to one prompt and picks the best under ``rule``.

    Args:
      model: a RewardModel.
      prompt: the prompt; candidates: its n candidate responses.
      groups: None = every group of the model's schema; one spec (``"country=NG"``) = best
        for that group; a list of specs = aggregate over those groups.
      rule, normalize, reference, **params: as :func:`pluralrm.score.aggregate`.
      weights: ``[K]`` group weights, or ``"population"`` for the groups' training shares
        (the default for ``rule="weighted"``).
      fallback: unseen group values: ``"pooled"`` (warns naming the value), ``"error"``,
        ``"nearest"``.
      risk: α in (0, 1): rank by the lower α-quantile of each candidate's predicted reward
        distribution (risk-sensitive best-of-n; distributional heads only), None = the mean.

    Returns:
      :class:`BestOfN`: chosen index and text, aggregate scores ``[n]``, the per-group table
      ``[n, K]`` and the decisive group.
    """
    candidates = list(candidates)
    if not candidates:
        raise DataError("best_of_n needs at least one candidate", field="candidates")
    table, labels = group_scores(model, [prompt] * len(candidates), candidates, groups, fallback, risk)
    if (isinstance(weights, str) and weights == "population") or (weights is None and rule == "weighted"):
        specs = None if groups is None else ([groups] if is_single_spec(groups) else list(groups))
        weights = population_weights(model.schema, specs)
    s = select(table, rule, weights, group_labels=labels, normalize=normalize, reference=reference, **params)
    return BestOfN(**s.__dict__, candidate=candidates[s.index])


# ----------------------------------------------------------------------------- decisive group
def _decisive(norm, scores, chosen, rule, w, params, labels) -> tuple[int | None, str]:
    row = norm[chosen : chosen + 1]  # [1, K]
    if rule == "worst":
        g = int(np.argmin(row[0]))
        return g, f"{labels[g]} is the worst-off group under candidate {chosen} (its score {row[0, g]:.4g} is the aggregate)"
    if rule == "quantile":
        g = int(quantile_group(row, w, params["q"])[0])
        return g, f"{labels[g]} is the q={params['q']:g} quantile group under candidate {chosen}"
    if rule == "softmin":
        share = softmin_shares(row, w, params["temperature"])[0]
        g = int(np.argmax(share))
        return g, f"{labels[g]} holds the largest share ({share[g]:.3f}) of candidate {chosen}'s soft minimum"
    if rule in ("mean", "weighted"):
        return _largest_contribution(norm, scores, chosen, w, labels)
    return _pivotal(norm, chosen, rule, w, labels)


def _largest_contribution(norm, scores, chosen, w, labels) -> tuple[int | None, str]:
    if len(norm) < 2:
        return None, "there is only one candidate"
    others = np.where(np.arange(len(scores)) == chosen, -np.inf, scores)
    runner_up = int(np.argmax(others))
    share = np.full(norm.shape[1], 1.0 / norm.shape[1]) if w is None else w / w.sum()
    contribution = share * (norm[chosen] - norm[runner_up])  # [K], sums to the lead
    g = int(np.argmax(contribution))
    return g, (
        f"{labels[g]} contributes most ({contribution[g]:+.4g} of {contribution.sum():+.4g}) to candidate "
        f"{chosen}'s lead over the runner-up {runner_up}"
    )


def _pivotal(norm, chosen, rule, w, labels) -> tuple[int | None, str]:
    """The heaviest group whose removal changes the winner of a ranking rule (or None)."""
    if rule == "borda":
        points = borda_points(norm)  # [n, K]
        without = (points @ w)[:, None] - points * w[None, :]  # [n, K]: Borda totals without g
        winners = np.argmax(without, axis=0)  # [K]
    else:
        prefer = pairwise_preferences(norm)  # [n, n, K]
        support = prefer @ w  # [n, n]
        winners = np.array(
            [np.argmax(copeland_from_support(support - w[g] * prefer[:, :, g])) for g in range(norm.shape[1])]
        )
    pivotal = np.flatnonzero(winners != chosen)
    if pivotal.size == 0:
        return None, f"no single group's removal changes the winner (candidate {chosen})"
    g = int(pivotal[np.argmax(w[pivotal])])
    return g, f"without {labels[g]}, candidate {int(winners[g])} would win instead of candidate {chosen}"


__all__ = ["BestOfN", "Selection", "best_of_n", "select"]
