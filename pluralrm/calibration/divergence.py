"""How far apart groups' preferences are, unit by unit, and how close a model is to each group.

On a comparison unit, group g's *preference distribution* is Bernoulli: it prefers the first
response with empirical rate ``r_ug = k_ug / n_ug`` (n votes, ties 0.5;
:class:`~pluralrm.calibration.votes.GroupRates`). Between two groups on a unit:

- Jensen–Shannon divergence (base 2, in [0, 1]) of the two Bernoulli distributions, and its
  square root, the JS distance (scipy's ``jensenshannon``);
- total variation ``|r_ua − r_ub|``.

:func:`pairwise_divergence` averages a measure over the units both groups rated at least
``min_votes`` times: each unit equally (``weighting="uniform"``) or by the effective number of
votes ``n_a n_b / (n_a + n_b)`` (``"votes"``; proportional to the precision of ``r_a − r_b``).
These raw averages are descriptive: with few votes per unit binomial noise inflates them (see
:mod:`~pluralrm.calibration.fidelity` for a noise-corrected measure and
:func:`group_difference_test` for a test).

Model-to-group alignment, following the opinion-alignment literature:

- OpinionQA *representativeness* (Santurkar et al. 2023, "Whose Opinions Do Language Models
  Reflect?", ICML, §3): ``1 − W1(D_model, D_group) / (N − 1)`` for an answer scale of N ordered
  options at positions 1..N, W1 the 1-D Wasserstein distance. A pairwise preference is a choice
  between N = 2 options at positions 0 and 1, so W1 = |q − r| and representativeness
  = 1 − |q − r| = 1 − total variation.
- GlobalOpinionQA *similarity* (Durmus et al. 2023, "Towards Measuring the Representation of
  Subjective Global Opinions in Language Models", §2.2): ``1 − JS distance`` (here base 2, so it
  lies in [0, 1]).
"""
from __future__ import annotations

import numpy as np
from scipy import special

from pluralrm.calibration.stats import PermutationResult, permutation_test
from pluralrm.calibration.tables import Table
from pluralrm.calibration.votes import GroupRates, GroupVotes
from pluralrm.errors import ConfigError

MEASURES: tuple[str, ...] = ("js", "tv")
WEIGHTINGS: tuple[str, ...] = ("uniform", "votes")


# ------------------------------------------------------------------ distribution distances
def js_divergence(p: np.ndarray, q: np.ndarray, axis: int = -1, base: float = 2.0) -> np.ndarray:
    """Jensen–Shannon divergence between distributions along ``axis`` (Lin 1991).

    ``JSD = ½ KL(p ‖ m) + ½ KL(q ‖ m)``, ``m = (p + q) / 2``; inputs are normalised to sum 1.
    """
    p, q = _normalise(p, axis), _normalise(q, axis)
    m = (p + q) / 2.0
    kl = lambda a: np.sum(special.rel_entr(a, m), axis=axis)  # noqa: E731
    return np.maximum((kl(p) + kl(q)) / (2.0 * np.log(base)), 0.0)


def js_distance(p: np.ndarray, q: np.ndarray, axis: int = -1, base: float = 2.0) -> np.ndarray:
    """√JSD, the JS distance (a metric; equals ``scipy.spatial.distance.jensenshannon``)."""
    return np.sqrt(js_divergence(p, q, axis, base))


def total_variation(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """Total variation distance ``½ Σ |p − q|`` along ``axis``."""
    return 0.5 * np.sum(np.abs(_normalise(p, axis) - _normalise(q, axis)), axis=axis)


def wasserstein_ordinal(p: np.ndarray, q: np.ndarray, support: np.ndarray | None = None,
                        axis: int = -1) -> np.ndarray:
    """1-D Wasserstein (earth mover's) distance between distributions on an ordered support.

    ``W1 = Σ_i |F_p(x_i) − F_q(x_i)| (x_{i+1} − x_i)`` with F the CDFs; ``support`` defaults to
    positions 0..N−1 (equals ``scipy.stats.wasserstein_distance(x, x, p, q)``).
    """
    p, q = np.moveaxis(_normalise(p, axis), axis, -1), np.moveaxis(_normalise(q, axis), axis, -1)
    n = p.shape[-1]
    support = np.arange(n, dtype=np.float64) if support is None else np.asarray(support, dtype=np.float64)
    cdf_gap = np.abs(np.cumsum(p - q, axis=-1))[..., :-1]
    return np.sum(cdf_gap * np.diff(support), axis=-1)


def opinionqa_representativeness(p: np.ndarray, q: np.ndarray, support: np.ndarray | None = None,
                                 axis: int = -1) -> np.ndarray:
    """``1 − W1(p, q) / (x_N − x_1)`` (Santurkar et al. 2023; positions 1..N give N − 1)."""
    n = np.shape(p)[axis]
    support = np.arange(n, dtype=np.float64) if support is None else np.asarray(support, dtype=np.float64)
    return 1.0 - wasserstein_ordinal(p, q, support, axis) / (support[-1] - support[0])


def globalopinionqa_similarity(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """``1 − JS distance`` (base 2) between distributions (Durmus et al. 2023)."""
    return 1.0 - js_distance(p, q, axis)


def bernoulli(rate: np.ndarray) -> np.ndarray:
    """Binary preference distribution ``[..., 2]``: (P(first ≻ second), P(second ≻ first))."""
    rate = np.asarray(rate, dtype=np.float64)
    return np.stack([rate, 1.0 - rate], axis=-1)


def binary_distance(rate_a: np.ndarray, rate_b: np.ndarray, measure: str) -> np.ndarray:
    """Distance between Bernoulli preference rates: ``"js"`` divergence or ``"tv"``."""
    if measure not in MEASURES:
        raise ConfigError(f"divergence measure must be one of {MEASURES}, got {measure!r}")
    a, b = np.asarray(rate_a, dtype=np.float64), np.asarray(rate_b, dtype=np.float64)
    if measure == "tv":
        return np.abs(a - b)
    # JSD of two Bernoullis = H(mixture) − mean entropy, in bits
    return np.maximum(_entropy((a + b) / 2.0) - (_entropy(a) + _entropy(b)) / 2.0, 0.0)


def _normalise(p: np.ndarray, axis: int) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return p / np.sum(p, axis=axis, keepdims=True)


# ------------------------------------------------------------------ groups on units
def pairwise_divergence(rates: GroupRates, measure: str = "js", min_votes: int = 1,
                        weighting: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
    """Mean between-group distance over the units both groups rated (module docstring).

    Args:
      rates: GroupRates ``[U, G]``.
      measure: ``"js"`` (Jensen–Shannon divergence) or ``"tv"`` (total variation).
      min_votes: a unit counts for a pair when each group has at least this many votes on it.
      weighting: ``"uniform"`` or ``"votes"``.

    Returns:
      ``(divergence [G, G], units [G, G])``: the mean (NaN without shared units; 0 on the
      diagonal) and the number of units it averages.
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    rate, n = rates.rate, rates.count
    g = rate.shape[1]
    ia, ib = np.triu_indices(g, k=1)
    eligible = (n[:, ia] >= min_votes) & (n[:, ib] >= min_votes)
    d = np.where(eligible, binary_distance(np.nan_to_num(rate[:, ia]), np.nan_to_num(rate[:, ib]), measure), 0.0)
    w = eligible * (1.0 if weighting == "uniform" else n[:, ia] * n[:, ib] / np.maximum(n[:, ia] + n[:, ib], 1))
    total, weight = (w * d).sum(0), w.sum(0)
    divergence, units = np.zeros((g, g)), np.zeros((g, g))
    with np.errstate(invalid="ignore", divide="ignore"):
        divergence[ia, ib] = divergence[ib, ia] = np.where(weight > 0, total / weight, np.nan)
    units[ia, ib] = units[ib, ia] = eligible.sum(0)
    units[np.diag_indices(g)] = (n >= min_votes).sum(0)
    return divergence, units


def unit_divergence(rates: GroupRates, min_votes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Between-group divergence per unit among groups with at least ``min_votes`` votes.

    The generalised Jensen–Shannon divergence with equal weights (Lin 1991):
    ``H(mean_g r_g) − mean_g H(r_g)`` with H the binary entropy in bits.

    Returns:
      ``(divergence [U], groups [U])``: NaN where fewer than two groups qualify.
    """
    eligible = rates.count >= min_votes
    k = eligible.sum(1)
    rate = np.where(eligible, np.nan_to_num(rates.rate), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = rate.sum(1) / np.maximum(k, 1)
        divergence = _entropy(mean) - np.where(eligible, _entropy(rate), 0.0).sum(1) / np.maximum(k, 1)
    return np.where(k >= 2, np.maximum(divergence, 0.0), np.nan), k


def _entropy(p: np.ndarray) -> np.ndarray:
    return (special.entr(p) + special.entr(1.0 - p)) / np.log(2.0)


def contested_units(dataset, votes: GroupVotes, rates: GroupRates, min_votes: int = 3, top: int = 20) -> Table:
    """The units groups disagree about most, for display.

    Args:
      dataset: the ComparisonDataset ``votes`` was built from (for the texts).
      votes, rates: its votes and per-group rates.
      min_votes: votes a group needs on a unit for its rate to count (so that one stray vote
        cannot make a unit look contested).
      top: how many units.

    Returns:
      Table ``contested``: unit, divergence (generalised JSD, bits), spread (max − min rate),
      groups (qualifying), the prompt and the unit's first and second response, and per group
      ``rate:<label>`` (P(first ≻ second), NaN below ``min_votes``) and ``n:<label>``.
    """
    divergence, k = unit_divergence(rates, min_votes)
    ranked = np.flatnonzero(~np.isnan(divergence))
    ranked = ranked[np.lexsort((ranked, -divergence[ranked]))][:top]
    eligible = rates.count[ranked] >= min_votes
    rate = np.where(eligible, rates.rate[ranked], np.nan)
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(rate, 1) - np.nanmin(rate, 1) if ranked.size else np.zeros(0)
    rows = votes.unit_row[ranked]
    texts = dataset.select(rows.tolist()) if ranked.size else None
    chosen = texts["chosen"] if texts is not None else []
    rejected = texts["rejected"] if texts is not None else []
    first = [c if votes.first_is_chosen[r] else j for c, j, r in zip(chosen, rejected, rows)]
    second = [j if votes.first_is_chosen[r] else c for c, j, r in zip(chosen, rejected, rows)]
    columns = {
        "unit": ranked,
        "divergence": divergence[ranked],
        "spread": spread,
        "groups": k[ranked],
        "prompt": np.asarray(list(texts["prompt"]) if texts is not None else [], dtype=object),
        "first": np.asarray(first, dtype=object),
        "second": np.asarray(second, dtype=object),
    }
    for g, label in enumerate(votes.group_labels):
        columns[f"rate:{label}"] = rate[:, g]
        columns[f"n:{label}"] = rates.count[ranked, g]
    return Table("contested", columns,
                 f"Units ranked by between-group divergence (generalised Jensen-Shannon, bits) among "
                 f"groups with at least {min_votes} votes; rate = P(first response preferred).")


def alignment(model: np.ndarray, rates: GroupRates, min_votes: int = 1,
              block: int = 65_536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How well the model's preference distribution represents each group's.

    Args:
      model: ``[U, M]`` the model's P(first ≻ second) per unit under M conditions (e.g. the
        model conditioned on each group; NaN where not available).
      rates: GroupRates ``[U, G]``.
      min_votes: votes a group needs on a unit for the unit to count.
      block: units processed at once (memory bound).

    Returns:
      ``(representativeness [M, G], similarity [M, G], units [M, G])``: OpinionQA
      representativeness and GlobalOpinionQA similarity (module docstring) averaged over the
      units where both are available.
    """
    model = np.asarray(model, dtype=np.float64)
    shape = (model.shape[1], rates.count.shape[1])
    rep, sim, units = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    rate = rates.rate
    for start in range(0, model.shape[0], block):
        q = model[start:start + block, :, None]                              # [u, M, 1]
        r = rate[start:start + block, None, :]                               # [u, 1, G]
        ok = np.isfinite(q) & (rates.count[start:start + block, None, :] >= min_votes)
        q, r = np.where(ok, q, 0.5), np.where(ok, r, 0.5)
        rep += np.where(ok, 1.0 - binary_distance(q, r, "tv"), 0.0).sum(0)
        sim += np.where(ok, 1.0 - np.sqrt(binary_distance(q, r, "js")), 0.0).sum(0)
        units += ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(units > 0, rep / units, np.nan), np.where(units > 0, sim / units, np.nan), units


def noise_corrected_gap(rates: GroupRates, a: int, b: int, min_votes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Unbiased per-unit estimate of the squared preference gap between groups a and b.

    ``(r_a − r_b)² − s²_a / n_a − s²_b / n_b`` with s² the cells' unbiased vote variances:
    E[(r_a − r_b)²] = (p_a − p_b)² + Var r_a + Var r_b, so subtracting unbiased variance
    estimates leaves an unbiased estimate of (p_a − p_b)². Works on ``[..., U, G]`` rates.

    Returns:
      ``(gap² [..., U], eligible [..., U])``; eligible: both groups have ``max(min_votes, 2)``
      votes (two are needed for a variance); gap² is 0 where not eligible.
    """
    need = max(min_votes, 2)
    n, rate, var = rates.count, rates.rate, rates.variance
    eligible = (n[..., a] >= need) & (n[..., b] >= need)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (rate[..., a] - rate[..., b]) ** 2 - var[..., a] / n[..., a] - var[..., b] / n[..., b]
    return np.where(eligible, gap, 0.0), eligible


def group_difference_test(votes: GroupVotes, a: int, b: int, num_permutations: int = 1000, seed: int = 0,
                          min_votes: int = 2) -> PermutationResult:
    """Permutation test of "groups a and b prefer differently".

    Statistic: the mean :func:`noise_corrected_gap` over units both groups rated (an unbiased
    estimate of the mean squared preference gap, ≈ 0 under the null). Null: the raters
    ((annotator, group) pairs) of a and b are reassigned between the two groups at random,
    group sizes kept, so the votes of one rater move together. One-sided (greater).

    Returns:
      PermutationResult with a scalar statistic.
    """
    from scipy import sparse

    keep = (votes.group == a) | (votes.group == b)
    pair = votes.annotator[keep] * 2 + (votes.group[keep] == b)
    raters, rater = np.unique(pair, return_inverse=True)
    rater = rater.reshape(-1)
    unit, x = votes.unit[keep], votes.vote[keep]
    u = votes.num_units
    cols = np.concatenate([unit, u + unit, 2 * u + unit])
    sums = sparse.csr_matrix((np.concatenate([np.ones_like(x), x, x * x]), (np.tile(rater, 3), cols)),
                             shape=(raters.size, 3 * u))
    total = np.asarray(sums.sum(0)).reshape(3, u)

    def statistic(labels: np.ndarray) -> np.ndarray:               # [p, R] of 0 (a) / 1 (b)
        side_b = np.asarray((sums.T @ labels.T.astype(np.float64)).T).reshape(-1, 3, u)
        both = np.stack([total[None] - side_b, side_b], axis=-1)     # [p, 3, U, 2]
        gap, eligible = noise_corrected_gap(GroupRates(both[:, 0], both[:, 1], both[:, 2]), 0, 1, min_votes)
        with np.errstate(invalid="ignore", divide="ignore"):
            return gap.sum(-1) / eligible.sum(-1)

    return permutation_test(statistic, (raters % 2).astype(np.int64), num_permutations, seed,
                            batch_size=max(1, min(64, int(2e7 // (6 * max(u, 1))))))
