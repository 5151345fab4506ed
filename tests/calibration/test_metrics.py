"""Calibration metrics against scikit-learn; orientation-freeness; temperature scaling."""
import numpy as np
import pytest
from scipy import optimize, special
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

from pluralrm.calibration import metrics as met
from pluralrm.errors import ConfigError, DataError


def random_pairs(seed=0, n=2000):
    """Probabilities and hard labels in a random orientation, mildly miscalibrated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < special.expit(0.7 * z)).astype(float)
    return special.expit(z), y


def test_brier_nll_accuracy_match_sklearn():
    p, y = random_pairs()
    assert met.brier(p, y) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert met.nll(p, y) == pytest.approx(log_loss(y, p), rel=1e-12)
    assert met.accuracy(p, y) == pytest.approx(((p > 0.5) == (y == 1)).mean())


def test_metrics_are_orientation_free():
    p, y = random_pairs(1)
    flip = np.random.default_rng(2).random(p.size) < 0.5
    q, t = np.where(flip, 1 - p, p), np.where(flip, 1 - y, y)
    for fn in (met.accuracy, met.nll, met.brier, met.expected_calibration_error):
        assert fn(q, t) == pytest.approx(fn(p, y), rel=1e-12)
    # with (chosen, rejected) ordering every hard label is 1: the same numbers
    chosen_first = np.where(y == 1, p, 1 - p)
    assert met.expected_calibration_error(chosen_first, np.ones_like(y)) == pytest.approx(
        met.expected_calibration_error(p, y), rel=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_symmetric_reliability_matches_sklearn_calibration_curve(strategy):
    p, y = random_pairs(3)
    diagram = met.reliability_diagram(p, y, num_bins=8, strategy=strategy, mode="symmetric")
    prob_true, prob_pred = calibration_curve(np.concatenate([y, 1 - y]), np.concatenate([p, 1 - p]),
                                             n_bins=8, strategy=strategy)
    full = diagram.count > 0
    np.testing.assert_allclose(diagram.accuracy[full], prob_true, rtol=1e-12)
    np.testing.assert_allclose(diagram.confidence[full], prob_pred, rtol=1e-12)


def test_top_label_bins_are_the_upper_half_of_sklearn_bins():
    p, y = random_pairs(4)
    p = np.where(np.isclose(p, 0.5), 0.51, p)           # keep confidences off the 0.5 edge
    diagram = met.reliability_diagram(p, y, num_bins=5)
    confidence, correct = met.top_label(p, y)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=10)
    np.testing.assert_allclose(diagram.accuracy, prob_true[-5:], rtol=1e-12)
    np.testing.assert_allclose(diagram.confidence, prob_pred[-5:], rtol=1e-12)
    gaps = np.abs(diagram.accuracy - diagram.confidence)
    assert diagram.ece == pytest.approx((diagram.count * gaps).sum() / p.size)


def test_ece_hand_example_and_soft_labels():
    p = np.array([0.9, 0.8, 0.3, 0.55])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    # confidences 0.9, 0.8, 0.7, 0.55; correct 1, 0, 1, 1; two bins over [0.5, 1]: (0.55, 0.7) and (0.8, 0.9)
    expected = (2 * abs(1.0 - 0.625) + 2 * abs(0.5 - 0.85)) / 4
    assert met.expected_calibration_error(p, y, num_bins=2) == pytest.approx(expected)
    soft = np.array([0.9, 0.8, 0.3, 0.55])
    assert met.accuracy(p, soft) == pytest.approx(np.mean([0.9, 0.8, 0.7, 0.55]))
    assert met.nll(np.array([0.5]), np.array([0.3])) == pytest.approx(np.log(2))


def test_calibration_terms_sum_to_the_metrics():
    p, y = random_pairs(5, 500)
    edges = np.linspace(0.5, 1.0, 11)
    acc, nll, brier, ece = met.calibration_from_totals(met.calibration_terms(p, y, edges).sum(0))
    assert acc == pytest.approx(met.accuracy(p, y))
    assert nll == pytest.approx(met.nll(p, y))
    assert brier == pytest.approx(met.brier(p, y))
    assert ece == pytest.approx(met.expected_calibration_error(p, y, 10))


def test_bad_probabilities_are_user_errors():
    with pytest.raises(DataError, match="row 2"):
        met.brier([0.5, 1.5], [1.0, 1.0])
    with pytest.raises(DataError, match="3 labels"):
        met.nll([0.5, 0.5], [1.0, 1.0, 1.0])
    with pytest.raises(ConfigError):
        met.reliability_diagram([0.5], [1.0], mode="classwise")


def test_temperature_recovers_the_planted_temperature():
    rng = np.random.default_rng(8)
    z = rng.normal(0, 3, 20000)
    y = (rng.random(z.size) < special.expit(z / 2.5)).astype(float)
    t = met.fit_temperature(z, y)
    assert t == pytest.approx(2.5, rel=0.05)
    # the optimum of a convex 1-D problem: matches a bounded scalar search on log T
    ref = optimize.minimize_scalar(lambda s: met.nll(special.expit(z / np.exp(s)), y), bounds=(-3, 3),
                                   method="bounded", options={"xatol": 1e-10})
    assert t == pytest.approx(np.exp(ref.x), rel=1e-4)
    scaled = met.apply_temperature(z, t)
    assert met.nll(scaled, y) <= met.nll(special.expit(z), y)


def test_per_group_temperatures_and_edge_cases():
    rng = np.random.default_rng(9)
    z = rng.normal(0, 2, 6000)
    group = np.repeat([0, 1, 2], 2000)
    planted = np.array([0.5, 1.0, 3.0])
    y = (rng.random(z.size) < special.expit(z / planted[group])).astype(float)
    t = met.fit_temperatures(z, y, group, num_groups=4, min_count=10)
    np.testing.assert_allclose(t[:3], planted, rtol=0.15)
    assert t[3] == pytest.approx(met.fit_temperature(z, y))       # empty group → pooled
    np.testing.assert_allclose(met.apply_temperature(z, t, group), special.expit(z / t[group]))
    assert met.fit_temperature(z, (z < 0).astype(float)) == np.inf     # anti-correlated: predict 1/2
    assert met.fit_temperature(z, (z > 0).astype(float)) < 1e-3     # separable: T → 0
    assert met.apply_temperature(np.array([3.0]), np.inf)[0] == 0.5
    with pytest.raises(ConfigError):
        met.apply_temperature(z, -1.0)
