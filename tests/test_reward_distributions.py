"""Quantiles and moments on raw outputs (``pluralrm.reward_distributions``) against hand
computations and DPL's own numpy implementation."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from pluralrm import reward_distributions as rd
from pluralrm.errors import ConfigError


def dpl_categorical_quantile(logits: np.ndarray, alpha: float) -> np.ndarray:
    """DPL's ``get_reward_quantile`` (hidden_context/summarize_results.py), verbatim in numpy."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    reward_probs = z / z.sum(axis=1, keepdims=True)
    cdf = np.zeros((reward_probs.shape[0], reward_probs.shape[1] + 1))
    cdf[:, 1:] = np.cumsum(reward_probs, axis=1)
    i = np.argmax(cdf >= alpha, axis=1) - 1
    b = np.arange(reward_probs.shape[0])
    remainder = (alpha - cdf[b, i]) / (cdf[b, i + 1] - cdf[b, i])
    return (i + remainder) / reward_probs.shape[1]


def test_mean_variance_quantile_hand_computed():
    s = math.log(math.expm1(2.0))  # softplus(s) = 2
    out = np.array([[1.0, s], [0.0, s]], np.float32)
    q = np.asarray(rd.reward_quantile(out, 0.1, "mean_variance"))
    # Φ⁻¹(0.1) = −1.2815516
    np.testing.assert_allclose(q, [1 - 2 * 1.2815516, -2 * 1.2815516], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(rd.reward_quantile(out, 0.5, "mean_variance")), [1.0, 0.0], atol=1e-6)
    mean, std = rd.reward_moments(out, "mean_variance")
    np.testing.assert_allclose(np.asarray(std), [2.0, 2.0], rtol=1e-6)


def test_normal_kind_takes_sigma_directly():
    out = np.array([[3.0, 0.5]], np.float32)
    assert float(rd.reward_quantile(out, 0.975, "normal")[0]) == pytest.approx(3 + 1.959964 * 0.5, rel=1e-5)


def test_categorical_quantile_on_atom_boundary():
    logits = np.log(np.array([[0.25, 0.25, 0.5]], np.float32))
    # cdf = (.25, .5, 1): α = .5 ends atom 1 exactly → (1 + 1)/3; α = .25 ends atom 0 → 1/3
    assert float(rd.categorical_quantile(logits, 0.5)[0]) == pytest.approx(2 / 3, abs=1e-6)
    assert float(rd.categorical_quantile(logits, 0.25)[0]) == pytest.approx(1 / 3, abs=1e-6)
    # inside atom 1: (1 + (0.375 − 0.25)/0.25)/3 = 0.5; inside atom 2: (2 + (0.75 − 0.5)/0.5)/3
    assert float(rd.categorical_quantile(logits, 0.375)[0]) == pytest.approx(0.5, abs=1e-6)
    assert float(rd.categorical_quantile(logits, 0.75)[0]) == pytest.approx(2.5 / 3, abs=1e-6)
    # continuous across the boundary
    lo, hi = (float(rd.categorical_quantile(logits, a)[0]) for a in (0.5 - 1e-4, 0.5 + 1e-4))
    assert abs(lo - hi) < 1e-3


def test_categorical_quantile_point_mass():
    logits = np.full((1, 4), -np.inf, np.float32)
    logits[0, 2] = 0.0
    for alpha in (1e-3, 0.3, 0.999):
        assert float(rd.categorical_quantile(logits, alpha)[0]) == pytest.approx((2 + alpha) / 4, abs=1e-6)
    mean, std = rd.categorical_moments(logits)
    assert float(mean[0]) == pytest.approx(2 / 3) and float(std[0]) == pytest.approx(0.0, abs=1e-6)
    # point mass on the first and the last atom
    first = np.array([[0.0, -np.inf, -np.inf]], np.float32)
    assert float(rd.categorical_quantile(first, 0.5)[0]) == pytest.approx(0.5 / 3, abs=1e-6)
    last = np.array([[-np.inf, -np.inf, 0.0]], np.float32)
    assert float(rd.categorical_quantile(last, 0.99)[0]) == pytest.approx(2.99 / 3, abs=1e-6)


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.37, 0.5, 0.9])
def test_categorical_quantile_equals_dpl(alpha):
    logits = np.random.default_rng(1).normal(size=(50, 10)).astype(np.float32) * 2
    ours = np.asarray(rd.categorical_quantile(logits, alpha))
    np.testing.assert_allclose(ours, dpl_categorical_quantile(logits.astype(np.float64), alpha), atol=2e-6)


def test_categorical_moments_hand_computed():
    logits = np.log(np.array([[0.2, 0.3, 0.5]], np.float32))
    mean, std = rd.categorical_moments(logits)
    # atoms 0, .5, 1: mean .65; E[x²] = .3·.25 + .5 = .575; var = .575 − .4225 = .1525
    assert float(mean[0]) == pytest.approx(0.65, rel=1e-6)
    assert float(std[0]) == pytest.approx(math.sqrt(0.1525), rel=1e-5)


def test_quantile_broadcasts_over_groups():
    logits = np.random.default_rng(2).normal(size=(3, 4, 10)).astype(np.float32)
    q = np.asarray(rd.reward_quantile(logits, 0.2, "categorical"))
    assert q.shape == (3, 4)
    np.testing.assert_allclose(q[1], np.asarray(rd.categorical_quantile(logits[1], 0.2)), atol=1e-7)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, "a"])
def test_alpha_outside_unit_interval_refused(alpha):
    with pytest.raises(ConfigError, match="risk"):
        rd.reward_quantile(jnp.zeros((1, 2)), alpha, "mean_variance")


def test_wrong_shape_refused():
    with pytest.raises(ConfigError, match="last axis of 2"):
        rd.reward_quantile(np.zeros((2, 3), np.float32), 0.1, "mean_variance")
