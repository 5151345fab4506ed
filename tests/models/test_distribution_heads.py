"""DPL heads (``pluralrm.models.distribution_heads``) and risk-sensitive scoring through
``RewardModel``: the head contract, agreement with the pure losses and quantiles, gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pluralrm import losses
from pluralrm import reward_distributions as rd
from pluralrm.errors import ConfigError
from pluralrm.models.config import HeadConfig
from pluralrm.models.head_registry import build_head, distribution_head_types

GROUPS = np.array([[1, 1], [2, 1], [3, 2], [1, 2], [2, 3]], np.int32)
SIZES = (4, 4)
KINDS = ["mean_variance", "categorical", "distributional"]


def random_head(kind: str, seed: int = 1, **cfg):
    head = build_head(HeadConfig(type=kind, hidden_dim=16, num_atoms=6, **cfg), 20, GROUPS, SIZES, 0, nnx.Rngs(0))
    params = nnx.state(head, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    nnx.update(head, jax.tree.unflatten(tree, [x + 0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)]))
    return head


@pytest.fixture(scope="module")
def features():
    return jax.random.normal(jax.random.key(0), (13, 20))


def test_registered():
    assert set(distribution_head_types()) == {"distributional", "mean_variance", "categorical"}
    with pytest.raises(ConfigError, match="num_atoms"):
        HeadConfig(type="categorical", num_atoms=1)


@pytest.mark.parametrize("kind", KINDS)
def test_all_groups_equal_per_row_call(kind, features):
    head = random_head(kind)
    mean_t, std_t = head.all_groups_moments(features)
    q_t = head.all_groups_quantile(features, jnp.float32(0.1))
    assert mean_t.shape == q_t.shape == std_t.shape == (13, len(GROUPS))
    for g in range(len(GROUPS)):
        ids = jnp.broadcast_to(jnp.asarray(GROUPS[g]), (13, 2))
        np.testing.assert_array_equal(np.asarray(head(features, ids)), np.asarray(head.all_groups(features)[:, g]))
        np.testing.assert_allclose(np.asarray(head(features, ids)), np.asarray(mean_t[:, g]), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(head.quantile(features, ids, jnp.float32(0.1))), np.asarray(q_t[:, g]),
                                   rtol=1e-5, atol=1e-6)
    # groups differ, and a low quantile lies below the mean
    assert not np.allclose(np.asarray(mean_t[:, 0]), np.asarray(mean_t[:, 1]))
    if kind != "categorical":  # DPL's categorical quantile has its own scale (see its docstring)
        assert np.all(np.asarray(q_t) <= np.asarray(mean_t) + 1e-6)


@pytest.mark.parametrize("kind", ["mean_variance", "categorical"])
def test_outputs_match_pure_functions(kind, features):
    head = random_head(kind)
    ids = jnp.asarray(GROUPS[[0, 1, 2, 3, 4, 0]])
    fc, fr = features[:6], features[6:12]
    oc, orj = head.outputs(fc, ids), head.outputs(fr, ids)
    np.testing.assert_allclose(np.asarray(head.quantile(fc, ids, 0.3)), np.asarray(rd.reward_quantile(oc, 0.3, kind)))
    label = jnp.array([1.0, 0.0, 0.5, 0.2, 1.0, 1.0])
    bt = losses.bradley_terry(head.pair_gap(fc, fr, ids).gap, label)
    if kind == "mean_variance":
        want = losses.mean_variance(oc[:, 0], oc[:, 1], orj[:, 0], orj[:, 1], label)
    else:
        want = losses.categorical(oc, orj, label)
    np.testing.assert_allclose(np.asarray(bt), np.asarray(want), rtol=1e-5, atol=1e-6)
    every = head.all_groups_pair_gap(fc, fr).gap
    for g in range(len(GROUPS)):
        one = head.pair_gap(fc, fr, jnp.broadcast_to(jnp.asarray(GROUPS[g]), (6, 2))).gap
        np.testing.assert_allclose(np.asarray(every[:, g]), np.asarray(one), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind,cfg", [("mean_variance", {"variance_penalty": 0.5}), ("categorical", {})])
def test_every_parameter_gets_a_gradient(kind, cfg, features):
    head = random_head(kind, **cfg)
    ids = jnp.asarray(GROUPS[[0, 1, 2, 3, 4, 0]])
    graphdef, params, rest = nnx.split(head, nnx.Param, ...)

    def loss(params):
        h = nnx.merge(graphdef, params, rest)
        fc, fr = features[:6], features[6:12]
        nll = jnp.mean(losses.bradley_terry(h.pair_gap(fc, fr, ids).gap, jnp.ones((6,))))
        return nll + h.batch_penalty(fc, fr, ids, None, jnp.ones((6,))) + h.regularization()

    grads = jax.grad(loss)(params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert float(jnp.max(jnp.abs(g))) > 0, path
