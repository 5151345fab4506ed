"""Fidelity to disagreement on synthetic data with planted group differences."""
import numpy as np
import pytest

from pluralrm.calibration.fidelity import (
    difference_correlation,
    disagreement_retention,
    retention_terms,
    unit_group_predictions,
)
from pluralrm.calibration.votes import group_rates, group_votes


@pytest.fixture(scope="module")
def planted():
    from calibration_helpers import make_society, simulate_rates

    society = make_society(num_units=300, votes_per_group=4, spread=1.0, seed=11)
    labels = tuple(f"country={g}" for g in society.groups)
    votes = group_votes(society.dataset, "country", labels)
    truth, rates = simulate_rates(num_units=20000, votes_per_group=6, seed=11)
    return society, votes, truth, rates


def test_true_probabilities_retain_the_disagreement(planted):
    _, _, truth, rates = planted
    retention, units = disagreement_retention(truth, rates)
    np.testing.assert_allclose(retention, 1.0, atol=0.06)
    np.testing.assert_array_equal(units, 20000)
    # the raw (uncorrected) ratio would call the true model a washout
    raw = ((truth[:, 0] - truth[:, 1]) ** 2).sum() / ((rates.rate[:, 0] - rates.rate[:, 1]) ** 2).sum()
    assert raw < 0.6


def test_true_predictions_on_a_dataset(planted):
    society, votes, _, _ = planted
    model = unit_group_predictions(votes, predictions=society.true_predictions())
    np.testing.assert_allclose(model, society.truth)
    retention, _ = disagreement_retention(model, group_rates(votes))
    assert 0.6 < retention[-1] < 1.5


def test_pooled_model_retains_nothing_and_exaggeration_exceeds_one(planted):
    _, _, truth, rates = planted
    pooled = np.repeat(truth.mean(1, keepdims=True), 3, axis=1)
    retention, _ = disagreement_retention(pooled, rates)
    np.testing.assert_allclose(retention, 0.0, atol=1e-12)
    centre = truth.mean(1, keepdims=True)
    exaggerated = np.clip(centre + 1.5 * (truth - centre), 0, 1)
    assert (disagreement_retention(exaggerated, rates)[0] > 1.5).all()


def test_group_predictions_give_the_same_model_table(planted):
    society, votes, _, _ = planted
    from_groups = unit_group_predictions(votes, group_predictions=society.true_group_predictions())
    np.testing.assert_allclose(from_groups, society.truth)


def test_retention_terms_batch_and_sum(planted):
    _, _, truth, rates = planted
    num, den = retention_terms(truth, rates)
    assert num.shape == den.shape == (20000, 4)
    batched, _ = retention_terms(np.stack([truth] * 2), type(rates)(*(np.stack([x] * 2) for x in
                                                                    (rates.count, rates.total, rates.total_sq))))
    np.testing.assert_allclose(batched[1], num)
    # overall = Σ over pairs of the per-pair noise-corrected gaps
    from pluralrm.calibration.divergence import noise_corrected_gap

    pairs = sum(noise_corrected_gap(rates, a, b)[0] for a, b in ((0, 1), (0, 2), (1, 2)))
    np.testing.assert_allclose(den[:, 3], pairs, atol=1e-12)


def test_difference_correlation(planted):
    _, _, truth, rates = planted
    corr = difference_correlation(truth, rates)
    assert (corr.pair_pearson[np.triu_indices(3, 1)] > 0.5).all()
    assert (corr.group_spearman > 0.5).all()
    pooled = np.repeat(truth.mean(1, keepdims=True), 3, axis=1)
    assert np.isnan(difference_correlation(pooled, rates).pair_pearson).all()
    noise = np.random.default_rng(0).random(truth.shape)
    assert np.abs(difference_correlation(noise, rates).group_pearson).max() < 0.1
