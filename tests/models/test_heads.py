"""Head contract tests: one backbone pass serves every group exactly, unknown ids fall back to the
shared reward, every parameter gets a gradient."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pluralrm import losses
from pluralrm.models.config import HeadConfig
from pluralrm.models.head_registry import build_head
from pluralrm.models.heads import HEADS

GROUPS = np.array([[1, 1], [2, 1], [3, 2], [1, 2], [2, 3]], np.int32)
SIZES = (4, 4)


def random_head(kind: str, seed: int = 1):
    head = build_head(
        HeadConfig(type=kind, num_values=3, use_annotators=True, num_prototypes=3),
        20, GROUPS, SIZES, 6, nnx.Rngs(0),
    )
    params = nnx.state(head, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    nnx.update(head, jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)]))
    return head


@pytest.fixture(scope="module")
def features():
    return jax.random.normal(jax.random.key(0), (37, 20))


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_all_groups_equals_per_row_call_exactly(kind, features):
    head = random_head(kind)
    call = nnx.jit(lambda h, f, g: h(f, g))
    every = nnx.jit(lambda h, f: h.all_groups(f))
    table = every(head, features)
    assert table.shape == (37, len(GROUPS)) and table.dtype == jnp.float32
    eager = head.all_groups(features)
    for g in range(len(GROUPS)):
        ids = jnp.broadcast_to(jnp.asarray(GROUPS[g]), (37, 2))
        np.testing.assert_array_equal(np.asarray(call(head, features, ids)), np.asarray(table[:, g]))
        np.testing.assert_array_equal(np.asarray(head(features, ids)), np.asarray(eager[:, g]))


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_all_groups_pair_gap_matches_per_row(kind, features):
    head = random_head(kind)
    fc, fr = features[:18], features[18:36]
    every = head.all_groups_pair_gap(fc, fr)
    for g in range(len(GROUPS)):
        ids = jnp.broadcast_to(jnp.asarray(GROUPS[g]), (18, 2))
        one = head.pair_gap(fc, fr, ids)
        np.testing.assert_allclose(np.asarray(every.gap[:, g]), np.asarray(one.gap), rtol=1e-5, atol=1e-6)
        if one.log_weights is not None:
            np.testing.assert_allclose(np.asarray(every.log_weights[:, g]), np.asarray(one.log_weights), atol=1e-6)


@pytest.mark.parametrize("kind", ["pooled", "conditioned", "per_group", "distributional", "values"])
def test_unknown_group_gets_the_shared_reward(kind, features):
    """Id 0 adds no offset: all-unknown rows get the readout with only shared parameters, and an
    unknown attribute leaves the other attribute's effect intact."""
    head = random_head(kind)
    unknown = jnp.zeros((37, 2), jnp.int32)
    r0 = head(features, unknown)
    h = head.hidden(features)
    if kind == "values":
        expected = head.centred_scores(features) @ head.w0[...]
        np.testing.assert_allclose(
            np.asarray(head.value_scores(features) - head.u0[...][None]), np.asarray(head.centred_scores(features)), atol=1e-6
        )
    else:
        expected = h @ head.w[...]
    np.testing.assert_allclose(np.asarray(r0), np.asarray(expected), rtol=1e-5, atol=1e-5)
    if kind == "pooled":
        return
    partial = jnp.broadcast_to(jnp.array([2, 0], jnp.int32), (37, 2))
    full = jnp.broadcast_to(jnp.array([2, 1], jnp.int32), (37, 2))
    assert not np.allclose(head(features, partial), r0)
    assert not np.allclose(head(features, partial), head(features, full))


def test_pooled_ignores_groups(features):
    head = random_head("pooled")
    a = head(features, jnp.ones((37, 2), jnp.int32))
    b = head(features, jnp.full((37, 2), 3, jnp.int32))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_every_parameter_gets_a_gradient(kind, features):
    head = random_head(kind)
    graphdef, params, rest = nnx.split(head, nnx.Param, ...)
    # every attribute value and annotator appears in the batch
    group_ids = jnp.asarray(np.stack([np.arange(18) % 4, (np.arange(18) // 4) % 4], 1), jnp.int32)
    annotators = jnp.asarray(np.arange(18) % 7, jnp.int32)

    def loss(params):
        h = nnx.merge(graphdef, params, rest)
        pg = h.pair_gap(features[:18], features[18:36], group_ids, annotators)
        label = jnp.ones(18)
        if pg.log_weights is not None:
            per = losses.mixture_bradley_terry(pg.gap, pg.log_weights, label)
        else:
            per = losses.bradley_terry(pg.gap, label)
        total = jnp.mean(per) + h.regularization()
        if kind == "values":
            total = total + jnp.mean(h.value_scores(features) ** 2)
        return total

    grads = jax.grad(loss)(params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        name = jax.tree_util.keystr(path)
        assert bool(jnp.any(g != 0)), f"{kind}: no gradient reaches {name}"


def test_distributional_spread_lowers_confidence(features):
    head = random_head("distributional")
    ids = jnp.ones((18, 2), jnp.int32)
    fc, fr = features[:18], features[18:36]
    base = head.pair_gap(fc, fr, ids).gap
    head.log_scale[...] = head.log_scale[...] + 2.0
    wider = head.pair_gap(fc, fr, ids).gap
    assert bool(jnp.all(jnp.abs(wider) < jnp.abs(base)))
    assert bool(jnp.all(head.spread(fc, ids) > 0))


def test_mixture_weights_depend_on_annotator(features):
    head = random_head("mixture")
    ids = jnp.ones((37, 2), jnp.int32)
    a = head(features, ids, jnp.full((37,), 1, jnp.int32))
    b = head(features, ids, jnp.full((37,), 2, jnp.int32))
    unknown = head(features, ids, jnp.zeros((37,), jnp.int32))
    assert not np.allclose(a, b)
    np.testing.assert_allclose(np.asarray(unknown), np.asarray(head(features, ids)), rtol=1e-6)
