"""Agreement within and between annotator groups.

Raters agree about a comparison unit when their votes (P(first ≻ second), ties 0.5; see
:mod:`pluralrm.calibration.votes`) are close. Three group-level measures build on Krippendorff's
alpha (:mod:`~pluralrm.calibration.alpha`) and Cohen's/Fleiss' kappa
(:mod:`~pluralrm.calibration.kappa`), re-exported here:

**Within-group agreement (IRR).** Krippendorff's alpha over the votes of one group's raters.

**Cross-group agreement (xRR).** The cross-replication reliability κ_x of Wong, Paritosh &
Aroyo (2021, "Cross-replication Reliability — An Empirical Approach to Interpreting Inter-rater
Reliability", ACL; the reference implementation is google-research/cross-replication-reliability,
``XrrMetrics.WITH_MISSING_DATA``): treating group a and group b as two replications, on the U_ab
units both rated,

    d_o = Σ_u (n_ua + n_ub) / (n_ua n_ub) · Σ_{i ∈ a_u, j ∈ b_u} δ²(x_i, x_j) / Σ_u (n_ua + n_ub)
    d_e = Σ_{i ∈ a, j ∈ b} δ²(x_i, x_j) / (N_a N_b)        (votes of all shared units)
    κ_x = 1 − d_o / d_e

δ² is alpha's distance at the chosen level (ordinal mid-ranks from both groups' votes pooled).
With one vote per group per unit, κ_x is Cohen's kappa between the groups (quadratic-weighted at
the interval level). The **agreement matrix** [G, G] holds IRR (alpha within group a) on the
diagonal and κ_x(a, b) off it; :func:`normalized_xrr` divides κ_x by √(IRR_a IRR_b) (Wong et al.
2021, §3: xRR relative to what the two groups' own reliabilities allow).

**Group Association Index.** GAI(g) = IRR(g) / XRR(g, ḡ): the in-group agreement of group g
over its cross-group agreement with everyone else ḡ (all other known groups together); GAI > 1
means g's raters agree among themselves more than with outsiders (Prabhakaran, Homan, Aroyo et
al. 2024, "GRASP: A Disagreement Analysis Framework to Assess Group Associations in
Perspectives", NAACL; arXiv:2311.05074). As there, its significance is a permutation test that
reassigns raters to groups at random keeping group sizes (:func:`gai_permutation_test`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralrm.calibration.alpha import (
    LEVELS,
    alpha_from_counts,
    alpha_from_votes,
    check_level,
    distance_matrix,
    krippendorff_alpha,
    value_counts,
)
from pluralrm.calibration.kappa import cohen_kappa, fleiss_kappa
from pluralrm.calibration.stats import PermutationResult, permutation_test
from pluralrm.calibration.votes import GroupVotes, column
from pluralrm.data.pairs import canonicalize_dataset
from pluralrm.errors import DataError

__all__ = [
    "LEVELS",
    "GroupValueCounts",
    "ReliabilityMatrix",
    "agreement_matrix",
    "alpha_from_counts",
    "alpha_from_votes",
    "cohen_kappa",
    "cross_group_kappa",
    "fleiss_kappa",
    "gai_permutation_test",
    "group_association_index",
    "group_value_counts",
    "krippendorff_alpha",
    "normalized_xrr",
    "reliability_matrix",
    "value_counts",
    "within_group_alpha",
]

MAX_VALUES = 64
MAX_MATRIX_CELLS = 500_000_000


@dataclass(frozen=True)
class ReliabilityMatrix:
    """Votes as a ``[raters, units]`` reliability matrix (NaN = not rated).

    Attributes:
      data: ``[R, U]`` float64, rater r's P(first ≻ second) for unit u (the mean if they voted
        more than once on it).
      annotators: R rater names (``annotator_id``; ``"row <i>"`` for a row without one).
      unit_row: ``[U]`` a row of each unit, to show its texts.
    """

    data: np.ndarray
    annotators: tuple[str, ...]
    unit_row: np.ndarray


def reliability_matrix(dataset) -> ReliabilityMatrix:
    """Builds the rater × unit matrix of a ComparisonDataset, votes in canonical orientation.

    For large data prefer ``alpha_from_votes(votes.unit, votes.vote, level)``, which never builds
    the (mostly empty) matrix.
    """
    pairs = canonicalize_dataset(dataset)
    n = pairs.unit.shape[0]
    ids = (column(dataset, "annotator_id") if "annotator_id" in dataset.column_names
           else np.full(n, "", dtype=object))
    names = np.array([str(v) if v not in (None, "") else f"row {i + 1}" for i, v in enumerate(ids)], dtype=str)
    annotators, rater = np.unique(names, return_inverse=True)
    rater = rater.reshape(n)
    if annotators.size * pairs.num_units > MAX_MATRIX_CELLS:
        raise DataError(f"a {annotators.size} x {pairs.num_units} reliability matrix is too large; "
                        "use alpha_from_votes(unit, vote, level) on the votes instead")
    cell = rater * pairs.num_units + pairs.unit
    size = annotators.size * pairs.num_units
    count = np.bincount(cell, minlength=size)
    total = np.bincount(cell, weights=pairs.vote, minlength=size)
    with np.errstate(invalid="ignore"):
        data = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return ReliabilityMatrix(data.reshape(annotators.size, pairs.num_units), tuple(annotators.tolist()),
                             pairs.unit_row)


@dataclass(frozen=True)
class GroupValueCounts:
    """Per unit and group, how many votes took each value.

    Attributes:
      counts: ``[U, G, V]`` float64.
      values: ``[V]`` the distinct vote values, ascending.
    """

    counts: np.ndarray
    values: np.ndarray


def group_value_counts(votes: GroupVotes) -> GroupValueCounts:
    """Counts each group's votes per unit and value (rows of unknown group left out).

    Raises:
      DataError: more than 64 distinct vote values (agreement treats votes as a small set of
        values; round soft labels, e.g. to 0.1, first).
    """
    keep = votes.group >= 0
    values = np.unique(votes.vote[keep])
    if values.size > MAX_VALUES:
        raise DataError(f"agreement needs a small set of vote values; the labels take {values.size} "
                        f"distinct values (more than {MAX_VALUES}); round soft labels first", field="label")
    counts, values = value_counts(votes.unit[keep] * votes.num_groups + votes.group[keep], votes.vote[keep],
                                  num_units=votes.num_units * votes.num_groups, values=values)
    return GroupValueCounts(counts.reshape(votes.num_units, votes.num_groups, values.size), values)


def within_group_alpha(counts: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """Krippendorff's alpha within each group: ``counts [..., U, G, V]`` → ``[..., G]``."""
    return alpha_from_counts(np.moveaxis(counts, -2, -3), values, level)


def cross_group_kappa(counts_a: np.ndarray, counts_b: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """Cross-replication reliability κ_x between two groups (module docstring).

    Args:
      counts_a, counts_b: ``[..., U, V]`` the two groups' value counts per unit.
      values: ``[V]`` ascending.
      level: level of measurement for δ².

    Returns:
      κ_x ``[...]``; NaN without shared units or without variation.
    """
    check_level(level)
    n_a, n_b = counts_a.sum(-1), counts_b.sum(-1)
    shared = (n_a > 0) & (n_b > 0)
    a = counts_a * shared[..., None]
    b = counts_b * shared[..., None]
    margin_a, margin_b = a.sum(-2), b.sum(-2)
    delta = distance_matrix(values, margin_a + margin_b, level)
    cross = np.einsum("...uc,...ck,...uk->...u", a, delta, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(shared, (n_a + n_b) / np.where(shared, n_a * n_b, 1.0), 0.0)
        observed = (scale * cross).sum(-1) / (margin_a.sum(-1) + margin_b.sum(-1))
        expected = np.einsum("...c,...ck,...k->...", margin_a, delta, margin_b) / (
            margin_a.sum(-1) * margin_b.sum(-1))
        return np.where(expected > 1e-12, 1.0 - observed / np.where(expected > 1e-12, expected, 1.0), np.nan)


def agreement_matrix(counts: np.ndarray, values: np.ndarray, level: str, max_block: int = 20_000_000) -> np.ndarray:
    """Cross-group agreement matrix ``[G, G]``: alpha within group on the diagonal, κ_x between
    groups off it (module docstring).

    Args:
      counts: ``[U, G, V]`` (:func:`group_value_counts`).
      values: ``[V]``.
      level: level of measurement.
      max_block: the most count entries processed at once (memory bound).
    """
    num_groups = counts.shape[1]
    out = np.full((num_groups, num_groups), np.nan)
    out[np.diag_indices(num_groups)] = within_group_alpha(counts, values, level)
    ia, ib = np.triu_indices(num_groups, k=1)
    step = max(1, max_block // max(counts.shape[0] * counts.shape[2], 1))
    for start in range(0, ia.size, step):
        a, b = ia[start:start + step], ib[start:start + step]
        kappa = cross_group_kappa(np.moveaxis(counts[:, a], 1, 0), np.moveaxis(counts[:, b], 1, 0), values, level)
        out[a, b] = out[b, a] = kappa
    return out


def normalized_xrr(matrix: np.ndarray) -> np.ndarray:
    """κ_x(a, b) / √(IRR_a IRR_b) for an :func:`agreement_matrix` (NaN where an IRR ≤ 0)."""
    irr = np.diag(matrix)
    scale = np.sqrt(np.where(irr > 0, irr, np.nan))
    out = matrix / np.outer(scale, scale)
    out[np.diag_indices_from(out)] = np.where(irr > 0, 1.0, np.nan)
    return out


def group_association_index(counts: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """GAI(g) = IRR(g) / XRR(g, everyone else) per group: ``counts [..., U, G, V]`` → ``[..., G]``."""
    irr = within_group_alpha(counts, values, level)
    own = np.moveaxis(counts, -2, -3)                      # [..., G, U, V]
    rest = own.sum(-3, keepdims=True) - own
    xrr = cross_group_kappa(own, rest, values, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        return irr / xrr


def gai_permutation_test(votes: GroupVotes, level: str = "interval", num_permutations: int = 1000,
                         seed: int = 0, alternative: str = "greater") -> PermutationResult:
    """GAI per group with permutation p-values (raters shuffled across groups, sizes kept).

    A rater is an (annotator, group) pair, so an annotator listed under two groups is two raters.

    Args:
      votes: GroupVotes.
      level: level of measurement.
      num_permutations: B.
      seed: for the shuffles.
      alternative: ``"greater"`` tests in-group cohesion above chance.

    Returns:
      PermutationResult with ``observed`` = GAI ``[G]``.
    """
    from scipy import sparse

    keep = votes.group >= 0
    values = group_value_counts(votes).values
    code = np.searchsorted(values, votes.vote[keep])
    pair = votes.annotator[keep] * votes.num_groups + votes.group[keep]
    raters, rater = np.unique(pair, return_inverse=True)
    rater = rater.reshape(-1)
    width = votes.num_units * values.size
    by_rater = sparse.csr_matrix((np.ones(rater.size), (rater, votes.unit[keep] * values.size + code)),
                                 shape=(raters.size, width))
    rater_group = raters % votes.num_groups
    shape = (votes.num_groups, votes.num_units, values.size)

    def statistic(assignments: np.ndarray) -> np.ndarray:       # [b, R] → [b, G]
        b = assignments.shape[0]
        onehot = np.zeros((b * votes.num_groups, raters.size))
        onehot[(np.arange(b)[:, None] * votes.num_groups + assignments).reshape(-1),
               np.tile(np.arange(raters.size), b)] = 1.0
        counts = np.asarray((by_rater.T @ onehot.T).T).reshape((b,) + shape)
        return group_association_index(np.moveaxis(counts, 1, 2), values, level)

    batch = max(1, int(2e7 // max(votes.num_groups * width, 1)))
    return permutation_test(statistic, rater_group, num_permutations, seed, alternative=alternative,
                            batch_size=min(batch, 64))
