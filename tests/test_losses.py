import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pluralrm import losses

jax.config.update("jax_enable_x64", False)

SCALAR_LOSSES = ["bradley_terry", "davidson", "rao_kupper"]


@pytest.mark.parametrize("kind", SCALAR_LOSSES)
def test_gradient_matches_finite_differences(kind):
    gap = jnp.array([-3.0, -0.7, 0.0, 0.4, 2.5], jnp.float32)
    label = jnp.array([1.0, 0.0, 0.5, 0.8, 1.0], jnp.float32)

    def total(g):
        return jnp.sum(losses.pair_loss(g, label, kind, margin=0.1))

    grad = jax.grad(total)(gap)
    eps = 1e-2
    for i in range(len(gap)):
        e = jnp.zeros_like(gap).at[i].set(eps)
        numeric = (total(gap + e) - total(gap - e)) / (2 * eps)
        assert abs(float(grad[i]) - float(numeric)) < 2e-3


@pytest.mark.parametrize("kind", SCALAR_LOSSES)
def test_stable_at_huge_gaps(kind):
    gap = jnp.array([-1e4, 1e4, -1e4, 1e4], jnp.float32)
    label = jnp.array([1.0, 0.0, 0.5, 1.0], jnp.float32)
    value = losses.pair_loss(gap, label, kind)
    grad = jax.grad(lambda g: jnp.sum(losses.pair_loss(g, label, kind)))(gap)
    assert bool(jnp.all(jnp.isfinite(value))) and bool(jnp.all(jnp.isfinite(grad)))
    # a correct confident prediction costs ~0, a wrong one ~|gap|
    assert float(value[3]) < 1e-3
    assert float(value[0]) > 1e3


def test_mixture_loss_stable_and_reduces_to_bt():
    gaps = jnp.array([[1e4, -1e4], [0.3, 0.3]], jnp.float32)
    log_w = jnp.log(jnp.array([[0.5, 0.5], [0.2, 0.8]], jnp.float32))
    label = jnp.array([1.0, 1.0], jnp.float32)
    value = losses.mixture_bradley_terry(gaps, log_w, label)
    assert bool(jnp.all(jnp.isfinite(value)))
    # equal gaps: the mixture is plain Bradley–Terry
    np.testing.assert_allclose(value[1], losses.bradley_terry(gaps[1, :1], label[1:])[0], rtol=1e-6)
    # half the mass on a prototype that is certain and right: P = 0.5 → loss log 2
    np.testing.assert_allclose(value[0], math.log(2.0), rtol=1e-5)


@pytest.mark.parametrize("kind, param", [("davidson", 0.3), ("rao_kupper", 0.4)])
def test_tie_models_are_distributions(kind, param):
    gap = jnp.linspace(-5, 5, 11)
    fn = losses.davidson if kind == "davidson" else losses.rao_kupper
    p_win = jnp.exp(-fn(gap, jnp.ones_like(gap), param))
    p_loss = jnp.exp(-fn(gap, jnp.zeros_like(gap), param))
    p_tie = jnp.exp(-fn(gap, jnp.full_like(gap, 0.5), param))
    np.testing.assert_allclose(p_win + p_loss + p_tie, 1.0, rtol=1e-5)
    assert bool(jnp.all(p_tie > 0))


def test_davidson_closed_form():
    nu, gap = 0.7, 1.3
    z = math.exp(gap / 2) + math.exp(-gap / 2) + nu
    got = float(losses.davidson(jnp.array([gap]), jnp.array([0.5]), math.log(nu))[0])
    assert abs(got - (-math.log(nu / z))) < 1e-5


def test_bradley_terry_recovers_true_utilities_up_to_a_shift():
    """Soft labels σ(u_i − u_j) on all pairs: the BT likelihood is minimised at u + c."""
    rng = np.random.default_rng(0)
    true_u = rng.normal(size=12)
    i, j = np.triu_indices(12, k=1)
    label = jnp.asarray(1 / (1 + np.exp(-(true_u[i] - true_u[j]))), jnp.float32)

    def objective(u):
        return jnp.mean(losses.bradley_terry(u[i] - u[j], label))

    u = jnp.zeros(12)
    grad = jax.jit(jax.grad(objective))
    for _ in range(4000):
        u = u - 2.0 * grad(u)
    recovered = np.asarray(u) - np.mean(np.asarray(u))
    np.testing.assert_allclose(recovered, true_u - true_u.mean(), atol=2e-3)


def test_margin_shifts_the_decision():
    gap = jnp.array([0.5])
    assert float(losses.bradley_terry(gap, jnp.ones(1), margin=1.0)[0]) > float(losses.bradley_terry(gap, jnp.ones(1))[0])


def test_weighted_mean():
    x = jnp.array([1.0, 3.0])
    assert float(losses.weighted_mean(x, jnp.array([1.0, 3.0]))) == pytest.approx(2.5)
    assert float(losses.weighted_mean(x, jnp.zeros(2))) == 0.0


def test_unknown_loss_is_an_error():
    with pytest.raises(ValueError, match="unknown loss"):
        losses.pair_loss(jnp.zeros(1), jnp.ones(1), "hinge")
