"""Bootstrap coverage, permutation p-values, Holm and Benjamini–Hochberg."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from pluralrm.calibration.stats import (
    benjamini_hochberg,
    bootstrap,
    bootstrap_sums,
    holm,
    multinomial_weights,
    permutation_pvalue,
    permutation_test,
)
from pluralrm.errors import ConfigError


def test_multinomial_weights_draw_every_cluster_count():
    rng = np.random.default_rng(0)
    for multiplicity in (np.ones(50, dtype=int), np.array([400, 3, 97])):      # index and direct paths
        weights = np.concatenate(list(multinomial_weights(multiplicity, 300, rng, 64)))
        assert weights.shape == (300, multiplicity.size)
        np.testing.assert_array_equal(weights.sum(1), multiplicity.sum())
        assert (np.abs(weights.mean(0) - multiplicity) <= 4 * np.sqrt(multiplicity / 300)).all()


def test_pattern_compression_keeps_the_estimate():
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 4, 500).astype(float)
    wins = rng.binomial(counts.astype(int), 0.7).astype(float)
    sums = np.stack([counts, wins], 1)                      # few distinct (n, k) patterns
    result = bootstrap_sums(sums, lambda t: t[:, 1] / t[:, 0], 400, seed=0)
    assert result.estimate == pytest.approx(wins.sum() / counts.sum())
    assert result.low < result.estimate < result.high
    assert result.replicates.shape == (400,)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_intervals_cover_the_truth_at_the_nominal_rate(method):
    # clustered data: 80 clusters of 1-5 Bernoulli votes with a cluster effect; statistic = rate
    rng = np.random.default_rng(123)
    trials, hits = 300, 0
    for _ in range(trials):
        size = rng.integers(1, 6, 80)
        p = np.clip(0.6 + rng.normal(0, 0.15, 80), 0, 1)
        wins = rng.binomial(size, p)
        truth = 0.6      # E[wins] / E[size] with p independent of size
        result = bootstrap_sums(np.stack([size, wins], 1).astype(float), lambda t: t[:, 1] / t[:, 0], 300,
                                seed=int(rng.integers(1 << 30)), method=method)
        hits += result.low <= truth <= result.high
    assert 0.90 <= hits / trials <= 0.985


def test_bca_equals_percentile_for_a_symmetric_statistic_and_generic_jackknife():
    rng = np.random.default_rng(5)
    x = rng.normal(size=400)

    def mean(w):
        return (w @ x) / w.sum(1)

    pct = bootstrap(mean, x.size, 2000, seed=1, method="percentile")
    bca = bootstrap(mean, x.size, 2000, seed=1, method="bca")     # jackknife computed by bootstrap
    assert bca.low == pytest.approx(pct.low, abs=0.02) and bca.high == pytest.approx(pct.high, abs=0.02)
    ref = scipy_stats.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", random_state=0).confidence_interval
    assert bca.low == pytest.approx(ref.low, abs=0.02) and bca.high == pytest.approx(ref.high, abs=0.02)


def test_bca_corrects_a_skewed_statistic_like_scipy():
    rng = np.random.default_rng(6)
    x = rng.exponential(size=60)
    sums = np.stack([np.ones_like(x), x, x * x], 1)

    def variance(t):
        return t[:, 2] / t[:, 0] - (t[:, 1] / t[:, 0]) ** 2

    ours = bootstrap_sums(sums, variance, 4000, seed=2, method="bca")
    ref = scipy_stats.bootstrap((x,), lambda v: np.var(v), n_resamples=4000, method="BCa",
                                random_state=3).confidence_interval
    assert ours.low == pytest.approx(ref.low, rel=0.1) and ours.high == pytest.approx(ref.high, rel=0.1)


def test_bootstrap_rejects_bad_settings():
    with pytest.raises(ConfigError):
        bootstrap(lambda w: w.sum(1), 5, 10, method="basic")
    with pytest.raises(ConfigError):
        bootstrap(lambda w: w.sum(1), 5, 10, confidence=1.5)


def test_permutation_pvalue_is_never_zero():
    assert permutation_pvalue(10.0, np.zeros(99)) == pytest.approx(0.01)
    assert permutation_pvalue(-1.0, np.zeros(99)) == pytest.approx(1.0)
    assert permutation_pvalue(-3.0, np.array([1.0, -4.0, 2.0]), "two-sided") == pytest.approx(0.5)
    assert np.isnan(permutation_pvalue(np.nan, np.zeros(9)))


def test_permutation_pvalues_are_uniform_under_the_null():
    rng = np.random.default_rng(7)
    values = rng.normal(size=(400, 30))        # 400 null datasets: two groups of 15, no difference
    labels = np.repeat([0, 1], 15)
    pvalues = []
    for row in values:
        stat = lambda lab: (lab * row).sum(1) / 15 - ((1 - lab) * row).sum(1) / 15  # noqa: E731
        pvalues.append(permutation_test(stat, labels, 99, seed=int(rng.integers(1 << 30))).pvalue)
    pvalues = np.array(pvalues)
    assert pvalues.min() >= 0.01
    assert 0.02 <= (pvalues <= 0.05).mean() <= 0.085
    assert scipy_stats.kstest(pvalues, "uniform").pvalue > 0.001


def test_permutations_stay_within_strata():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    strata = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    seen = []
    permutation_test(lambda lab: (seen.append(lab), lab[:, :1].astype(float))[1], labels, 50, strata=strata)
    for batch in seen[1:]:
        for row in batch:
            assert sorted(row[strata == 1]) == [0, 1, 2, 3] and sorted(row[strata == 0]) == [0, 1, 2, 3]


def test_holm_and_bh_hand_values():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 × 4, 3, 2, 1 → 0.02, 0.03, 0.06, 0.04 → running max
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    # BH: × 4/1, 4/2, 4/3, 4/4 → 0.02, 0.02, 0.04, 0.04 → running min from the top
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(holm([0.5, np.nan, 0.6]), [1.0, np.nan, 1.0])
    np.testing.assert_allclose(benjamini_hochberg([0.5, np.nan, 0.6]), [0.6, np.nan, 0.6])
    assert holm(np.array([])).shape == (0,)
