"""Divergences against scipy; group rates on units; contested units; group difference test."""
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from pluralrm.calibration import divergence as div
from pluralrm.calibration.votes import GroupRates, group_rates, group_votes
from pluralrm.errors import ConfigError


def test_js_and_wasserstein_match_scipy():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(5), 20), rng.dirichlet(np.ones(5), 20)
    np.testing.assert_allclose(div.js_distance(p, q), jensenshannon(p, q, axis=1, base=2), rtol=1e-10)
    np.testing.assert_allclose(div.js_divergence(p, q), jensenshannon(p, q, axis=1, base=2) ** 2, rtol=1e-10)
    support = np.array([0.0, 1.0, 2.5, 3.0, 7.0])
    for i in range(20):
        assert div.wasserstein_ordinal(p[i], q[i], support) == pytest.approx(
            wasserstein_distance(support, support, p[i], q[i]), rel=1e-10)
        assert div.wasserstein_ordinal(p[i], q[i]) == pytest.approx(
            wasserstein_distance(np.arange(5), np.arange(5), p[i], q[i]), rel=1e-10)
    np.testing.assert_allclose(div.total_variation(p, q), 0.5 * np.abs(p - q).sum(1))


def test_opinion_alignment_measures():
    # OpinionQA on a 5-option scale at positions 1..5: 1 − W1 / 4
    p, q = np.array([1.0, 0, 0, 0, 0]), np.array([0, 0, 0, 0, 1.0])
    assert div.opinionqa_representativeness(p, q) == pytest.approx(0.0)
    assert div.opinionqa_representativeness(p, p) == pytest.approx(1.0)
    # binary choice, N = 2: representativeness = 1 − |q − r| = 1 − total variation
    a, b = div.bernoulli(np.array([0.8, 0.3])), div.bernoulli(np.array([0.5, 0.3]))
    np.testing.assert_allclose(div.opinionqa_representativeness(a, b), [0.7, 1.0])
    np.testing.assert_allclose(div.globalopinionqa_similarity(a, b), 1 - jensenshannon(a, b, axis=1, base=2))
    np.testing.assert_allclose(div.binary_distance(np.array([0.8]), np.array([0.5]), "js"),
                               jensenshannon([0.8, 0.2], [0.5, 0.5], base=2) ** 2)
    with pytest.raises(ConfigError):
        div.binary_distance(0.1, 0.2, "kl")


def rates(count, total):
    count, total = np.asarray(count, float), np.asarray(total, float)
    return GroupRates(count, total, total)          # 0/1 votes: Σx² = Σx


def test_pairwise_divergence_by_hand():
    r = rates([[4, 4, 0], [2, 6, 3], [1, 1, 1]], [[4, 0, 0], [1, 3, 3], [1, 0, 0]])
    tv, units = div.pairwise_divergence(r, "tv", min_votes=2)
    # groups 0-1 share units 0 and 1: |1 − 0| and |0.5 − 0.5|; 0-2 and 1-2 share unit 1 only
    assert tv[0, 1] == pytest.approx(0.5) and tv[0, 2] == pytest.approx(0.5) and tv[1, 2] == pytest.approx(0.5)
    np.testing.assert_array_equal(units, [[2, 2, 1], [2, 2, 1], [1, 1, 1]])
    weighted, _ = div.pairwise_divergence(r, "tv", min_votes=2, weighting="votes")
    assert weighted[0, 1] == pytest.approx((2.0 * 1.0 + 1.5 * 0.0) / (2.0 + 1.5))   # n_a n_b / (n_a + n_b)
    js, _ = div.pairwise_divergence(r, "js", min_votes=1)
    assert js[0, 1] == pytest.approx(np.mean([1.0, 0.0, 1.0]))      # unit 2: one vote each, 1 vs 0


def test_unit_divergence_is_the_generalised_jsd():
    r = rates([[5, 5, 5], [5, 5, 1]], [[5, 0, 5], [2, 2, 1]])
    d, k = div.unit_divergence(r, min_votes=3)
    np.testing.assert_array_equal(k, [3, 2])
    mean = np.array([2 / 3, 1 / 3])
    ent = lambda x: -(x * np.log2(x)).sum()  # noqa: E731
    assert d[0] == pytest.approx(ent(mean))               # H(mixture) − mean H(point masses) = H(mixture)
    assert d[1] == pytest.approx(0.0)


def test_contested_units_show_texts_in_canonical_order(society):
    votes = group_votes(society.dataset, "country")
    r = group_rates(votes)
    table = div.contested_units(society.dataset, votes, r, min_votes=3, top=5)
    assert table.num_rows == 5
    assert (np.diff(table.columns["divergence"]) <= 0).all()
    for i, u in enumerate(table.columns["unit"]):
        row = votes.unit_row[u]
        assert table.columns["prompt"][i] == society.dataset[int(row)]["prompt"]
        assert table.columns["first"][i] < table.columns["second"][i]     # the canonical first response
    first_label = f"rate:{votes.group_labels[0]}"
    np.testing.assert_allclose(table.columns[first_label], r.rate[table.columns["unit"], 0])
    strict = div.contested_units(society.dataset, votes, r, min_votes=99, top=5)
    assert strict.num_rows == 0


def test_noise_corrected_gap_is_unbiased():
    rng = np.random.default_rng(0)
    p = np.array([0.3, 0.6])
    n = np.array([3, 5])
    votes = [rng.binomial(1, p[g], size=(200000, n[g])) for g in range(2)]
    count = np.stack([np.full(200000, n[0]), np.full(200000, n[1])], 1).astype(float)
    total = np.stack([v.sum(1) for v in votes], 1).astype(float)
    gap, eligible = div.noise_corrected_gap(GroupRates(count, total, total), 0, 1)
    assert eligible.all()
    assert gap.mean() == pytest.approx((p[0] - p[1]) ** 2, abs=0.003)
    raw = (total[:, 0] / n[0] - total[:, 1] / n[1]) ** 2
    assert raw.mean() > 2 * (p[0] - p[1]) ** 2                    # the noise the correction removes


def test_group_difference_test(society_factory):
    different = society_factory(num_units=80, spread=1.5, seed=3)
    votes = group_votes(different.dataset, "country")
    result = div.group_difference_test(votes, 0, 1, num_permutations=99, seed=0)
    assert result.pvalue == pytest.approx(0.01) and result.observed > 0.02
    same = group_votes(society_factory(num_units=80, spread=0.0, seed=3).dataset, "country")
    result = div.group_difference_test(same, 0, 1, num_permutations=99, seed=0)
    assert result.pvalue > 0.01 and abs(result.observed) < 0.02


def test_alignment_prefers_the_matching_group(society):
    votes = group_votes(society.dataset, "country")
    r = group_rates(votes)
    truth = society.truth[:, [society.groups.index(label.split("=")[1]) for label in votes.group_labels]]
    rep, sim, units = div.alignment(truth, r)
    assert rep.shape == sim.shape == (3, 3)
    assert (np.diag(rep) > rep.max(0) - 1e-12).all()              # the diagonal is each column's best
    assert (units == votes.num_units).all()
