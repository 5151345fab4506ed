"""Cohen's kappa against scikit-learn; Fleiss' kappa against a hand-worked example."""
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from pluralrm.calibration.kappa import cohen_kappa, fleiss_kappa
from pluralrm.errors import ConfigError, DataError


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(4))
def test_cohen_matches_sklearn(weights, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, 80)
    b = np.where(rng.random(80) < 0.6, a, rng.integers(0, 5, 80))
    assert cohen_kappa(a, b, weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights), rel=1e-12)


def test_cohen_with_string_labels_and_label_order():
    a = np.array(["low", "mid", "high", "mid", "low", "high", "mid"])
    b = np.array(["low", "high", "high", "mid", "mid", "high", "low"])
    order = ["low", "mid", "high"]
    for weights in (None, "linear", "quadratic"):
        assert cohen_kappa(a, b, weights, labels=order) == pytest.approx(
            cohen_kappa_score(a, b, labels=order, weights=weights), rel=1e-12)


def test_cohen_degenerate_and_errors():
    assert np.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))
    assert cohen_kappa([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        cohen_kappa([0, 1], [1, 0], weights="cubic")
    with pytest.raises(DataError, match="differ in length"):
        cohen_kappa([0, 1], [1])
    with pytest.raises(DataError, match="not in"):
        cohen_kappa([0, 1, 2], [1, 0, 2], labels=[0, 1])


# Fleiss (1971)-style worked example from the literature (Wikipedia, "Fleiss' kappa"): 10
# subjects, 14 raters each, 5 categories. Worked by hand: p_j = (0.143, 0.200, 0.279, 0.150,
# 0.229), P̄ = 0.378, P̄_e = 0.213, kappa = 0.210.
WORKED = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def test_fleiss_hand_worked_example():
    n = 14
    p_i = ((WORKED**2).sum(1) - n) / (n * (n - 1))
    p_j = WORKED.sum(0) / WORKED.sum()
    np.testing.assert_allclose(p_j, [0.143, 0.200, 0.279, 0.150, 0.229], atol=1e-3)
    assert p_i.mean() == pytest.approx(0.378, abs=1e-3)
    assert (p_j**2).sum() == pytest.approx(0.213, abs=1e-3)
    assert fleiss_kappa(WORKED) == pytest.approx(0.210, abs=1e-3)
    assert fleiss_kappa(WORKED) == pytest.approx((p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum()), rel=1e-12)


def test_fleiss_equals_two_rater_scott_pi_and_perfect_agreement():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 50)
    b = np.where(rng.random(50) < 0.7, a, rng.integers(0, 3, 50))
    table = np.stack([np.bincount([x, y], minlength=3) for x, y in zip(a, b)])
    p = table.sum(0) / table.sum()
    scott_pi = ((a == b).mean() - (p**2).sum()) / (1 - (p**2).sum())
    assert fleiss_kappa(table) == pytest.approx(scott_pi, rel=1e-12)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)


def test_fleiss_requires_equal_raters():
    with pytest.raises(DataError, match="subject 2 has 2"):
        fleiss_kappa(np.array([[1, 2], [1, 1]]))
    with pytest.raises(DataError, match="at least two"):
        fleiss_kappa(np.array([[1, 0], [0, 1]]))
