"""DPL's losses (``pluralrm.losses``): hand-computed oracles, finite-difference gradients,
stability. Oracles are written out from the definitions (erf for Φ, sums over atom pairs)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pluralrm import losses


def phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


def test_mean_variance_hand_computed():
    # μ_c = 1, μ_r = 0, σ_c = σ_r = 1  ⇒  z = 1/√2, P = Φ(0.7071) = 0.76025
    s1 = inv_softplus(1.0)
    args = [jnp.array([x], jnp.float32) for x in (1.0, s1, 0.0, s1)]
    p = phi(1 / math.sqrt(2))
    assert abs(p - 0.760250) < 1e-5
    hard = losses.mean_variance(*args, jnp.array([1.0]))
    assert float(hard[0]) == pytest.approx(-math.log(p), rel=1e-5)
    soft = losses.mean_variance(*args, jnp.array([0.3]))
    assert float(soft[0]) == pytest.approx(-(0.3 * math.log(p) + 0.7 * math.log(1 - p)), rel=1e-5)
    # unequal spreads: σ_c = 2, σ_r = 0.5, μ gap −1  ⇒  z = −1/sqrt(4.25)
    args = [jnp.array([x], jnp.float32) for x in (0.0, inv_softplus(2.0), 1.0, inv_softplus(0.5))]
    p = phi(-1 / math.sqrt(4.25))
    assert float(losses.mean_variance(*args, jnp.array([1.0]))[0]) == pytest.approx(-math.log(p), rel=1e-5)
    # DPL's own training link: softplus(−z √(2π))
    z = -1 / math.sqrt(4.25)
    dpl = losses.mean_variance(*args, jnp.array([1.0]), link="dpl_logistic")
    assert float(dpl[0]) == pytest.approx(math.log1p(math.exp(-z * math.sqrt(2 * math.pi))), rel=1e-5)


def test_mean_variance_orientation_free():
    rng = np.random.default_rng(0)
    mc, sc, mr, sr = (jnp.asarray(rng.normal(size=6), jnp.float32) for _ in range(4))
    a = losses.normal_pair_logit(mc, jax.nn.softplus(sc), mr, jax.nn.softplus(sr))
    b = losses.normal_pair_logit(mr, jax.nn.softplus(sr), mc, jax.nn.softplus(sc))
    np.testing.assert_allclose(np.asarray(jax.nn.sigmoid(a) + jax.nn.sigmoid(b)), 1.0, atol=1e-6)


def test_variance_penalty_hand_computed():
    sc, sr = jnp.array([inv_softplus(1.0), inv_softplus(2.0)]), jnp.array([inv_softplus(0.5), inv_softplus(1.0)])
    # (1 + 0.25) and (4 + 1): mean 3.125; weights (1, 3): (1.25 + 15) / 4
    assert float(losses.variance_penalty(sc, sr)) == pytest.approx(3.125, rel=1e-5)
    assert float(losses.variance_penalty(sc, sr, jnp.array([1.0, 3.0]))) == pytest.approx(16.25 / 4, rel=1e-5)


def test_comparison_matrix_is_dpls():
    c = np.asarray(losses.comparison_matrix(3))
    np.testing.assert_array_equal(c, [[0.5, 1, 1], [0, 0.5, 1], [0, 0, 0.5]])


def test_categorical_hand_computed():
    pc, pr = np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.3, 0.2])
    # chosen atom above rejected: .3*.5 + .5*.5 + .5*.3 = .55; ties split: (.1 + .09 + .1)/2 = .145
    p = 0.695
    lc, lr = jnp.log(jnp.asarray([pc], jnp.float32)), jnp.log(jnp.asarray([pr], jnp.float32))
    assert float(losses.categorical(lc, lr, jnp.array([1.0]))[0]) == pytest.approx(-math.log(p), rel=1e-5)
    assert float(losses.categorical(lc, lr, jnp.array([0.25]))[0]) == pytest.approx(
        -(0.25 * math.log(p) + 0.75 * math.log(1 - p)), rel=1e-5)
    assert float(jax.nn.sigmoid(losses.categorical_pair_logit(lr, lc))[0]) == pytest.approx(1 - p, rel=1e-5)
    # identical distributions tie exactly
    assert float(losses.categorical_pair_logit(lc, lc)[0]) == pytest.approx(0.0, abs=1e-6)


def test_negative_entropy_of_mean_hand_computed():
    pc, pr = np.array([[0.2, 0.3, 0.5]]), np.array([[0.5, 0.3, 0.2]])
    m = np.array([0.35, 0.3, 0.35])
    want = float(np.sum(m * np.log(m)))
    got = losses.negative_entropy_of_mean(jnp.log(jnp.asarray(pc, jnp.float32)), jnp.log(jnp.asarray(pr, jnp.float32)))
    assert float(got) == pytest.approx(want, rel=1e-5)
    # a zero-probability atom contributes 0 (not NaN); weights count rows
    lc = jnp.log(jnp.asarray([[1.0, 0.0], [0.0, 1.0]], jnp.float32))
    got = losses.negative_entropy_of_mean(lc, lc, jnp.array([1.0, 0.0]))
    assert float(got) == pytest.approx(0.0, abs=1e-6)


def _check_grad(fn, x, eps=1e-2, tol=2e-3):
    grad = jax.grad(fn)(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        e = jnp.zeros_like(flat).at[i].set(eps).reshape(x.shape)
        numeric = (fn(x + e) - fn(x - e)) / (2 * eps)
        assert abs(float(grad.reshape(-1)[i]) - float(numeric)) < tol, (i, grad, numeric)


@pytest.mark.parametrize("link", ["probit", "dpl_logistic"])
def test_mean_variance_gradient_matches_finite_differences(link):
    x = jnp.array([[0.3, -0.2, -0.5, 0.4], [1.5, 0.8, -1.0, -0.3], [-0.4, 1.1, 0.2, 0.0]], jnp.float32)
    label = jnp.array([1.0, 0.3, 0.0], jnp.float32)

    def total(x):
        nll = jnp.sum(losses.mean_variance(x[:, 0], x[:, 1], x[:, 2], x[:, 3], label, link))
        return nll + 0.7 * losses.variance_penalty(x[:, 1], x[:, 3])

    _check_grad(total, x)


def test_categorical_gradient_matches_finite_differences():
    x = jax.random.normal(jax.random.key(3), (2, 2, 4))
    label = jnp.array([1.0, 0.4], jnp.float32)

    def total(x):
        return jnp.sum(losses.categorical(x[:, 0], x[:, 1], label)) + 0.1 * losses.negative_entropy_of_mean(x[:, 0], x[:, 1])

    _check_grad(total, x)


def test_stable_when_confident():
    # a very confident correct prediction costs ~0, a wrong one a lot; both finite with finite gradients
    mv = lambda m: jnp.sum(losses.mean_variance(m, jnp.full((2,), -20.0), -m, jnp.full((2,), -20.0),  # noqa: E731
                                                jnp.array([1.0, 0.0])))
    m = jnp.array([50.0, 50.0])
    assert np.isfinite(float(mv(m))) and np.all(np.isfinite(np.asarray(jax.grad(mv)(m))))
    big = jnp.array([[60.0, 0.0, 0.0], [0.0, 0.0, 60.0]])
    value = losses.categorical(big[::-1], big, jnp.array([1.0, 1.0]))
    assert float(value[0]) < 1e-6 and 20 < float(value[1]) < 1e3
    grad = jax.grad(lambda x: jnp.sum(losses.categorical(x[::-1], x, jnp.array([1.0, 1.0]))))(big)
    assert np.all(np.isfinite(np.asarray(grad)))
