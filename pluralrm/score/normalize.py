"""Per-group standardisation of reward tables before rules that compare groups.

Why it matters: a reward model trained on pairwise comparisons (Bradley-Terry) only ever sees
differences r_g(a) − r_g(b) *within* a group g, so each group's reward is identified only up to
an additive constant c_g (and its scale reflects how consistently that group agreed with
itself, not how much it cares). A rule that compares *levels across groups* — ``worst`` (which
group is worst off?), ``quantile``, ``softmin`` — then depends on those arbitrary constants:
the "worst-off group" can simply be the one whose constant happened to come out lowest. A
per-group *center* (subtract each group's mean over a set of candidates) removes c_g; a
*zscore* also divides by each group's spread so that every group's preferences count on the
same scale (one group, one unit of "how much better than its own average"). Utilitarian means
over candidates of one prompt are unaffected by centering (the constants shift every candidate
alike) but are by scaling; ranking rules (Borda, majority) are unaffected by either, since each
group's ordering of the candidates does not change.

The statistics come either from the candidate set being ranked (the default; needs at least
two candidates to mean anything) or from a *reference set* of responses scored once, which
makes scores comparable across prompts and files.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pluralrm.errors import ConfigError, DataError

NORMALIZATIONS: tuple[str, ...] = ("none", "zscore", "center")


@dataclass(frozen=True)
class GroupStats:
    """Per-group location and spread of rewards over some set of responses.

    Attributes:
      mean: ``[G]`` mean reward per group.
      std: ``[G]`` population standard deviation per group.
      count: number of responses the statistics were computed over.
    """

    mean: np.ndarray
    std: np.ndarray
    count: int


def group_stats(scores: np.ndarray) -> GroupStats:
    """Per-group mean and standard deviation of ``scores: [M, G]`` (M >= 1)."""
    scores = check_table(scores)
    if len(scores) == 0:
        raise DataError("cannot compute group statistics over zero responses", field="reference")
    return GroupStats(scores.mean(axis=0), scores.std(axis=0), len(scores))


class StatsAccumulator:
    """Streaming per-group mean and variance (Chan et al.'s pairwise merge), for reference
    sets read in chunks with constant memory.

    Reference: Chan, Golub & LeVeque (1983), "Algorithms for computing the sample variance".
    """

    def __init__(self) -> None:
        self.count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    def update(self, scores: np.ndarray) -> None:
        """Adds a chunk ``scores: [m, G]``."""
        scores = check_table(scores)
        m = len(scores)
        if m == 0:
            return
        mean_b = scores.mean(axis=0)
        m2_b = ((scores - mean_b) ** 2).sum(axis=0)
        if self._mean is None:
            self.count, self._mean, self._m2 = m, mean_b, m2_b
            return
        n = self.count + m
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (m / n)
        self._m2 = self._m2 + m2_b + delta**2 * (self.count * m / n)
        self.count = n

    def result(self) -> GroupStats:
        if self._mean is None:
            raise DataError("the reference set has no rows to compute group statistics from", field="reference")
        return GroupStats(self._mean, np.sqrt(self._m2 / self.count), self.count)


def standardize(
    scores: np.ndarray,
    method: str = "none",
    reference: np.ndarray | GroupStats | None = None,
    sets: Sequence | np.ndarray | None = None,
) -> np.ndarray:
    """Per-group standardisation of a reward table (see the module docstring for why).

    Args:
      scores: ``[N, G]`` rewards of N responses under G groups.
      method: ``"none"`` (unchanged), ``"center"`` (s − μ_g) or ``"zscore"`` ((s − μ_g) / σ_g;
        a group with σ_g = 0 is only centred: it ranks every response alike).
      reference: statistics from a reference set (``[M, G]`` scores or :class:`GroupStats`);
        when None they are computed over each candidate set.
      sets: ``[N]`` labels of candidate sets (e.g. the prompt of each row); None = one set.
        Ignored when ``reference`` is given.

    Returns:
      ``[N, G]`` standardised rewards (float64).
    """
    if method not in NORMALIZATIONS:
        raise ConfigError(f"normalize must be one of {list(NORMALIZATIONS)}, got {method!r}")
    scores = check_table(scores)
    if method == "none":
        return scores
    if reference is not None:
        stats = reference if isinstance(reference, GroupStats) else group_stats(reference)
        if stats.mean.shape != (scores.shape[1],):
            raise DataError(
                f"reference statistics cover {stats.mean.shape[0]} groups but the scores have "
                f"{scores.shape[1]}",
                field="reference",
            )
        return _apply(scores, stats, method)
    out = np.empty_like(scores)
    for rows in set_indices(sets, len(scores)):
        out[rows] = _apply(scores[rows], group_stats(scores[rows]), method)
    return out


def _apply(scores: np.ndarray, stats: GroupStats, method: str) -> np.ndarray:
    centred = scores - stats.mean
    if method == "center":
        return centred
    return centred / np.where(stats.std > 0, stats.std, 1.0)


def set_indices(sets: Sequence | np.ndarray | None, n: int) -> list[np.ndarray]:
    """Row indices of each candidate set, in order of first appearance. ``sets: [N]`` labels."""
    if sets is None:
        return [np.arange(n)]
    labels = np.asarray(sets)
    if labels.shape != (n,):
        raise DataError(f"sets must have one label per row ({n}), got shape {labels.shape}", field="sets")
    if n == 0:
        return []
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rows = np.argsort(inverse, kind="stable")
    by_label = np.split(rows, np.cumsum(np.bincount(inverse))[:-1])
    return [by_label[k] for k in np.argsort(first, kind="stable")]


def check_table(scores: np.ndarray) -> np.ndarray:
    """Validates a reward table ``[N, G]`` (G >= 1, finite) and returns it as float64."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise DataError(f"scores must be a table [N, G] with G >= 1, got shape {scores.shape}", field="scores")
    if not np.all(np.isfinite(scores)):
        raise DataError("scores contain NaN or infinite values", field="scores")
    return scores


__all__ = [
    "GroupStats",
    "NORMALIZATIONS",
    "StatsAccumulator",
    "check_table",
    "group_stats",
    "set_indices",
    "standardize",
]
