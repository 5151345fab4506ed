"""Resampling statistics: cluster bootstrap (percentile and BCa), permutation tests, and Holm /
Benjamini–Hochberg corrections.

**Bootstrap over clusters.** The resampled unit is a *cluster*: an annotator (all their votes
move together) or a comparison unit (all votes on one prompt and pair). A statistic is written
as a function of cluster weights ``[B, P]``: how many times each cluster was drawn in each
replicate (multinomial, ``Σ_p w_p = C``). Most statistics here are smooth functions of sums over
clusters (a mean is Σ value / Σ count), and :func:`bootstrap_sums` takes the per-cluster sums
``[C, K]`` directly: clusters with identical sums (the same *count pattern*, e.g. a unit with
3 votes of which 2 for the first response) are merged first, so a replicate draws P pattern
counts from one multinomial instead of C cluster indices, and the statistic is one
``[B, P] @ [P, K]`` product. 1,000 replicates over a million comparisons take seconds
(``benchmarks/calibration_bench.py``).

**Intervals.** Percentile, or BCa (Efron 1987; Efron & Tibshirani 1993, ch. 14) with the
acceleration from the delete-one-cluster jackknife (for sums: one vectorised evaluation).

**Permutation tests.** p = (1 + #{null ≥ observed}) / (B + 1), never 0 (Phipson & Smyth 2010).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import special

from pluralrm.errors import ConfigError

INTERVALS: tuple[str, ...] = ("percentile", "bca")
ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two-sided")


@dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap confidence interval for every entry of a statistic of shape S.

    Attributes:
      estimate: ``[*S]`` the statistic on the data.
      low, high: ``[*S]`` interval bounds (NaN where the replicates are all NaN).
      replicates: ``[B, *S]``.
      confidence: e.g. 0.95.
      method: ``"percentile"`` or ``"bca"``.
    """

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    replicates: np.ndarray
    confidence: float
    method: str


def multinomial_weights(multiplicity: np.ndarray, num_replicates: int, rng: np.random.Generator,
                        batch_size: int) -> Iterator[np.ndarray]:
    """Bootstrap draw counts per pattern, ``[b, P]`` float64 batches (b ≤ batch_size).

    Drawing C = Σ multiplicity clusters with replacement and counting the draws per pattern is
    one multinomial over patterns (probabilities multiplicity / C). With few patterns it is
    sampled directly; with many, by drawing C cluster indices (cost C per replicate either way).
    """
    multiplicity = np.asarray(multiplicity, dtype=np.int64)
    total = int(multiplicity.sum())
    patterns = multiplicity.shape[0]
    direct = patterns * 32 <= total
    pattern_of_cluster = None if direct or patterns == total else np.repeat(np.arange(patterns), multiplicity)
    for start in range(0, num_replicates, batch_size):
        b = min(batch_size, num_replicates - start)
        if direct:
            yield rng.multinomial(total, multiplicity / total, size=b).astype(np.float64)
            continue
        out = np.empty((b, patterns))
        for i in range(b):
            drawn = rng.integers(0, total, size=total)
            if pattern_of_cluster is not None:
                drawn = pattern_of_cluster[drawn]
            out[i] = np.bincount(drawn, minlength=patterns)
        yield out


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], multiplicity: np.ndarray | int,
              num_replicates: int = 1000, seed: int = 0, confidence: float = 0.95,
              method: str = "percentile", jackknife: np.ndarray | None = None,
              batch_size: int | None = None) -> BootstrapResult:
    """Cluster bootstrap of any statistic of cluster weights.

    Args:
      statistic: maps weights ``[b, P]`` (draws per cluster pattern; the data itself is
        ``multiplicity``) to ``[b, *S]``.
      multiplicity: ``[P]`` clusters per pattern, or the number of clusters C (one each).
      num_replicates: B.
      seed: for the random draws.
      confidence: two-sided level of the interval.
      method: ``"percentile"`` or ``"bca"``.
      jackknife: for BCa, ``[P, *S]`` the statistic with one cluster of each pattern left out;
        default: computed by calling ``statistic`` on ``multiplicity − e_p`` (P calls' worth of
        work, so pass it for large P; :func:`bootstrap_sums` does).
      batch_size: replicates per call of ``statistic`` (default: about 2·10⁷ weights a batch).

    Returns:
      BootstrapResult. Replicates where the statistic is NaN (e.g. a group left out of a
      resample) are ignored by the interval.
    """
    if method not in INTERVALS:
        raise ConfigError(f"bootstrap method must be one of {INTERVALS}, got {method!r}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if num_replicates < 1:
        raise ConfigError(f"bootstrap needs at least one replicate, got {num_replicates}")
    multiplicity = (np.ones(multiplicity, dtype=np.int64) if np.isscalar(multiplicity)
                    else np.asarray(multiplicity, dtype=np.int64))
    base = multiplicity.astype(np.float64)[None]
    estimate = np.asarray(statistic(base))[0]
    batch_size = batch_size or max(1, int(2e7 // max(multiplicity.shape[0], 1)))
    rng = np.random.default_rng(seed)
    replicates = np.concatenate([np.asarray(statistic(w)) for w in
                                 multinomial_weights(multiplicity, num_replicates, rng, batch_size)])
    if method == "percentile":
        low, high = percentile_interval(replicates, confidence)
    else:
        if jackknife is None:
            jackknife = _jackknife(statistic, multiplicity, batch_size)
        low, high = bca_interval(replicates, estimate, jackknife, multiplicity, confidence)
    return BootstrapResult(estimate, low, high, replicates, confidence, method)


def bootstrap_sums(sums: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                   num_replicates: int = 1000, seed: int = 0, confidence: float = 0.95,
                   method: str = "percentile") -> BootstrapResult:
    """Cluster bootstrap of a statistic of summed per-cluster quantities.

    Args:
      sums: ``[C, K]`` per-cluster sums (e.g. per unit: vote count, correct predictions, NLL).
      statistic: maps totals ``[b, K]`` to ``[b, *S]`` (e.g. ratios of totals).
      num_replicates, seed, confidence, method: as :func:`bootstrap`.

    Returns:
      BootstrapResult.
    """
    sums = np.asarray(sums, dtype=np.float64)
    sums = sums.reshape(sums.shape[0], -1)
    patterns, multiplicity = count_patterns(sums)
    total = multiplicity @ patterns
    jackknife = np.asarray(statistic(total[None] - patterns)) if method == "bca" else None
    return bootstrap(lambda w: statistic(w @ patterns), multiplicity, num_replicates, seed,
                     confidence, method, jackknife)


def count_patterns(sums: np.ndarray, probe: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``sums [C, K]`` and how often each occurs: ``(patterns [P, K], multiplicity [P])``.

    Merging only pays when rows repeat; a random probe of rows decides, so continuous sums (no
    repeats) skip the sort.
    """
    c = sums.shape[0]
    if c > 4 * probe:
        sample = sums[np.random.default_rng(0).choice(c, probe, replace=False)]
        if np.unique(sample, axis=0).shape[0] > probe // 2:
            return sums, np.ones(c, dtype=np.int64)
    return np.unique(sums, axis=0, return_counts=True)


def cluster_sums(cluster: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """Per-row terms ``[N, K]`` summed per cluster (any ids in ``cluster [N]``). Returns ``[C, K]``."""
    _, index = np.unique(np.asarray(cluster), return_inverse=True)
    index = index.reshape(-1)
    terms = np.asarray(terms, dtype=np.float64).reshape(index.size, -1)
    return np.stack([np.bincount(index, weights=terms[:, k]) for k in range(terms.shape[1])], 1)


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``replicates [B, *S]`` (NaN replicates ignored)."""
    alpha = (1.0 - confidence) / 2.0
    return _nan_quantiles(replicates, np.array([alpha, 1.0 - alpha]))


def bca_interval(replicates: np.ndarray, estimate: np.ndarray, jackknife: np.ndarray,
                 multiplicity: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected and accelerated interval (Efron & Tibshirani 1993, eqs. 14.9–14.15).

    Args:
      replicates: ``[B, *S]``.
      estimate: ``[*S]``.
      jackknife: ``[P, *S]`` leave-one-cluster-out values per pattern.
      multiplicity: ``[P]`` clusters per pattern (jackknife values repeat that often).
      confidence: two-sided level.

    Returns:
      ``(low, high)``, each ``[*S]``.
    """
    replicates = np.asarray(replicates, dtype=np.float64)
    valid = ~np.isnan(replicates)
    count = np.maximum(valid.sum(0), 1)
    below = ((replicates < estimate) & valid).sum(0) + 0.5 * ((replicates == estimate) & valid).sum(0)
    z0 = special.ndtri(np.clip(below / count, 1.0 / (count + 1), count / (count + 1)))
    m = np.asarray(multiplicity, dtype=np.float64).reshape((-1,) + (1,) * (np.ndim(jackknife) - 1))
    centre = (m * jackknife).sum(0) / m.sum()
    d = centre - jackknife
    with np.errstate(invalid="ignore", divide="ignore"):
        accel = (m * d**3).sum(0) / (6.0 * ((m * d**2).sum(0)) ** 1.5)
    accel = np.nan_to_num(accel)
    alpha = (1.0 - confidence) / 2.0
    levels = []
    for z in special.ndtri(np.array([alpha, 1.0 - alpha])):
        levels.append(special.ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z))))
    lows = _nan_quantiles(replicates, levels[0], per_entry=True)
    highs = _nan_quantiles(replicates, levels[1], per_entry=True)
    return lows, highs


def _nan_quantiles(replicates: np.ndarray, q: np.ndarray, per_entry: bool = False):
    """Quantiles of ``[B, *S]`` over B ignoring NaN: q ``[2]`` → two ``[*S]``; with
    ``per_entry``, q ``[*S]`` → one ``[*S]``."""
    x = np.sort(np.asarray(replicates, dtype=np.float64), axis=0)  # NaN sort last
    count = (~np.isnan(x)).sum(0)
    qs = np.asarray(q, dtype=np.float64)

    def at(level: np.ndarray) -> np.ndarray:
        position = np.clip(level * (count - 1), 0, np.maximum(count - 1, 0))
        lo = np.floor(position).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
        frac = position - lo
        take = lambda i: np.take_along_axis(x, i[None], axis=0)[0]  # noqa: E731
        return np.where(count > 0, take(lo) * (1 - frac) + take(hi) * frac, np.nan)

    if per_entry:
        return at(np.broadcast_to(qs, x.shape[1:]))
    return tuple(at(np.full(x.shape[1:], level)) for level in qs)


def _jackknife(statistic, multiplicity: np.ndarray, batch_size: int) -> np.ndarray:
    patterns = multiplicity.shape[0]
    out = []
    for start in range(0, patterns, batch_size):
        idx = np.arange(start, min(start + batch_size, patterns))
        w = np.repeat(multiplicity.astype(np.float64)[None], idx.size, axis=0)
        w[np.arange(idx.size), idx] -= 1.0
        out.append(np.asarray(statistic(w)))
    return np.concatenate(out)


# ------------------------------------------------------------------ permutation tests
@dataclass(frozen=True)
class PermutationResult:
    """A permutation test of a statistic of shape S.

    Attributes:
      observed: ``[*S]``.
      pvalue: ``[*S]``, (1 + k) / (B + 1) with k the null values at least as extreme.
      null: ``[B, *S]`` the statistic under permuted labels.
    """

    observed: np.ndarray
    pvalue: np.ndarray
    null: np.ndarray


def permutation_pvalue(observed: np.ndarray, null: np.ndarray, alternative: str = "greater") -> np.ndarray:
    """(1 + k) / (B + 1), with k the null values ``[B, *S]`` at least as extreme as observed.

    ``"two-sided"`` compares absolute values (for statistics centred at 0 under the null).
    NaN null values count as not extreme; a NaN observed value gives NaN.
    """
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    observed, null = np.asarray(observed, dtype=np.float64), np.asarray(null, dtype=np.float64)
    if alternative == "greater":
        extreme = null >= observed
    elif alternative == "less":
        extreme = null <= observed
    else:
        extreme = np.abs(null) >= np.abs(observed)
    p = (1.0 + extreme.sum(0)) / (null.shape[0] + 1.0)
    return np.where(np.isnan(observed), np.nan, p)


def permuted_labels(labels: np.ndarray, num_permutations: int, rng: np.random.Generator,
                    batch_size: int, strata: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Batches ``[b, n]`` of ``labels [n]`` shuffled, within equal ``strata [n]`` when given."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if strata is None:
        order, code = np.arange(n), np.zeros(n)
    else:
        order = np.argsort(np.asarray(strata), kind="stable")
        code = np.unique(np.asarray(strata)[order], return_inverse=True)[1].reshape(n).astype(np.float64)
    inverse = np.argsort(order)
    grouped = labels[order]
    for start in range(0, num_permutations, batch_size):
        b = min(batch_size, num_permutations - start)
        # random keys offset by stratum: sorting shuffles positions within each stratum only
        shuffle = np.argsort(rng.random((b, n)) + 2.0 * code[None], axis=1)
        yield grouped[shuffle][:, inverse]


def permutation_test(statistic: Callable[[np.ndarray], np.ndarray], labels: np.ndarray,
                     num_permutations: int = 1000, seed: int = 0, strata: np.ndarray | None = None,
                     alternative: str = "greater", batch_size: int = 64) -> PermutationResult:
    """Permutation test: how extreme is ``statistic(labels)`` among shuffled labels?

    Args:
      statistic: maps label assignments ``[b, n]`` to ``[b, *S]``.
      labels: ``[n]`` the observed assignment (e.g. each annotator's group).
      num_permutations: B.
      seed: for the shuffles.
      strata: optional ``[n]``; labels are shuffled only within equal strata.
      alternative: ``"greater"``, ``"less"`` or ``"two-sided"``.
      batch_size: permutations per call of ``statistic``.

    Returns:
      PermutationResult.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    observed = np.asarray(statistic(labels[None]))[0]
    null = np.concatenate([np.asarray(statistic(batch)) for batch in
                           permuted_labels(labels, num_permutations, rng, batch_size, strata)])
    return PermutationResult(observed, permutation_pvalue(observed, null, alternative), null)


# ------------------------------------------------------------------ multiple testing
def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), controlling the family-wise error rate.

    ``adj_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))`` over the m non-NaN p-values sorted
    ascending; NaN stays NaN. Reject where ``adj ≤ α``.
    """
    return _adjust(pvalues, step_down=True)


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values; Benjamini & Hochberg 1995), controlling
    the false discovery rate: ``adj_(i) = min_{j ≥ i} min(1, m p_(j) / j)``; NaN stays NaN."""
    return _adjust(pvalues, step_down=False)


def _adjust(pvalues: np.ndarray, step_down: bool) -> np.ndarray:
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat = p.reshape(-1)
    valid = np.flatnonzero(~np.isnan(flat))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(flat[valid], kind="stable")]
    ranked = flat[order]
    rank = np.arange(1, m + 1)
    if step_down:
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - rank + 1) * ranked))
    else:
        adjusted = np.minimum.accumulate(np.minimum(1.0, m * ranked / rank)[::-1])[::-1]
    result = out.reshape(-1)
    result[order] = adjusted
    return result.reshape(p.shape)
