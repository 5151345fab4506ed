"""The hashing backbone's embedding bag against the original masked-gather implementation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pluralrm.models.backbones import HashingBackbone, embedding_bag
from pluralrm.models.config import BackboneConfig


def masked_gather_bag(table, ids):
    """The bag as first written (oracle): gather every id, zero the padding, sum, / sqrt(count)."""
    mask = (ids > 0).astype(table.dtype)  # [B, L]
    vectors = jnp.take(table, ids, axis=0) * mask[..., None]  # [B, L, E]
    count = jnp.sum(mask, axis=-1, keepdims=True)  # [B, 1]
    return jnp.sum(vectors, axis=1) / jnp.sqrt(jnp.maximum(count, 1.0))


def _ids(rng, rows, length, buckets):
    ids = rng.integers(1, buckets, (rows, length)).astype(np.int32)
    ids[:, length // 2 :] = np.where(rng.random((rows, length - length // 2)) < 0.5, 0, ids[:, length // 2 :])
    ids[0] = 0  # an all-padding text
    ids[1, :5] = 3  # repeated ids within a text
    ids[2, :5] = 3  # ... and across texts
    ids[3, -3:] = 0  # trailing padding
    return jnp.asarray(ids)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_bag_matches_the_masked_gather_in_value_and_gradient(dtype):
    rng = np.random.default_rng(0)
    table = jnp.asarray(rng.normal(size=(50, 8)), dtype)
    ids = _ids(rng, 7, 27, 50)  # not a multiple of BAG_CHUNK
    weights = jnp.asarray(rng.normal(size=(7, 8)), dtype)

    def loss(bag):
        return lambda t: jnp.sum(jnp.tanh(bag(t, ids).astype(jnp.float32)) * weights.astype(jnp.float32))

    new, old = embedding_bag(table, ids), masked_gather_bag(table, ids)
    assert new.dtype == old.dtype == dtype
    tol = 1e-6 if dtype == jnp.float32 else 2e-2  # the order of float additions differs
    np.testing.assert_allclose(np.asarray(new, np.float32), np.asarray(old, np.float32), rtol=tol, atol=tol)
    g_new, g_old = jax.grad(loss(embedding_bag))(table), jax.grad(loss(masked_gather_bag))(table)
    assert g_new.dtype == dtype
    np.testing.assert_allclose(np.asarray(g_new, np.float32), np.asarray(g_old, np.float32), rtol=tol, atol=tol)
    assert not np.asarray(g_new[0]).any()  # padding row: no gradient
    used = np.unique(np.asarray(ids))
    unused = np.setdiff1d(np.arange(50), used)
    assert not np.asarray(g_new[unused]).any() and np.asarray(g_new[used[used > 0]]).any(axis=1).all()
    assert not np.asarray(new[0]).any()  # an all-padding text pools to zeros


def test_bag_under_jit_and_vmap_agrees():
    rng = np.random.default_rng(1)
    table = jnp.asarray(rng.normal(size=(30, 4)), jnp.float32)
    ids = _ids(rng, 6, 10, 30).reshape(2, 3, 10)
    out = jax.jit(jax.vmap(embedding_bag, in_axes=(None, 0)))(table, ids)
    np.testing.assert_allclose(out, masked_gather_bag(table, ids.reshape(6, 10)).reshape(2, 3, 4), rtol=1e-6)


def test_backbone_features_and_gradients_match_the_original_module():
    config = BackboneConfig(num_buckets=64, embed_dim=8, hidden_dims=(16,))
    backbone = HashingBackbone(config, nnx.Rngs(0))
    ids = _ids(np.random.default_rng(2), 5, 12, 64)

    def original(model, ids):
        return model.mlp(masked_gather_bag(model.embed.embedding[...], ids))

    def loss(features):
        return lambda model: jnp.sum(features(model, ids) ** 2)

    np.testing.assert_allclose(backbone.features({"ids": ids}), original(backbone, ids), rtol=1e-6, atol=1e-6)
    g_new = nnx.grad(loss(lambda m, i: m.features({"ids": i})))(backbone)
    g_old = nnx.grad(loss(original))(backbone)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g_new, g_old)
