"""Mixed precision in the transformer's dense layers (``layers.Dense``, ``layers.mixed_matmul``):
with ``train.dtype=bfloat16`` the train step casts the float32 parameters to bfloat16, and every
dense layer then multiplies bfloat16 operands with float32 accumulation, forward and backward,
while its output (the residual stream, norms, softmax) stays float32.

Oracles: the closed form (a float32 matmul of the operands rounded to bfloat16: products of two
bfloat16 numbers are exact in float32), the float32 model (features within bfloat16's rounding),
and the jaxpr (which matmuls take bfloat16 operands)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig
from pluralrm.models.transformer.layers import Dense, mixed_matmul

BF16 = jnp.bfloat16


def rounded(x):
    return x.astype(BF16).astype(jnp.float32)


def dots(fn, *args) -> list[tuple]:
    """(operand dtypes, result dtype) of every dot_general in ``fn``'s jaxpr, nested ones included."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append((tuple(str(v.aval.dtype) for v in eqn.invars), str(eqn.outvars[0].aval.dtype)))
            for sub in jax.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_mixed_matmul_against_the_closed_form():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 5, 16)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(16, 8)), jnp.float32).astype(BF16)
    g = jnp.asarray(rng.normal(size=(3, 5, 8)), jnp.float32)
    y = mixed_matmul(x, k)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, rounded(x) @ k.astype(jnp.float32), rtol=1e-6, atol=1e-5)
    _, pullback = jax.vjp(mixed_matmul, x, k)
    dx, dk = pullback(g)
    assert dx.dtype == jnp.float32 and dk.dtype == BF16
    np.testing.assert_allclose(dx, rounded(g) @ k.astype(jnp.float32).T, rtol=1e-6, atol=1e-5)
    expected_dk = jnp.einsum("bti,bto->io", rounded(x), rounded(g))
    np.testing.assert_allclose(dk.astype(jnp.float32), rounded(expected_dk), rtol=1e-2, atol=1e-2)
    # bfloat16 operands, float32 accumulation: forward and both backward matmuls
    assert dots(lambda x, k: jax.vjp(mixed_matmul, x, k)[1](g), x, k) == [(("bfloat16", "bfloat16"), "float32")] * 3


def test_dense_is_linear_unless_the_kernel_is_narrower():
    layer = Dense(16, 8, use_bias=True, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 16)), jnp.float32)
    reference = nnx.Linear(16, 8, use_bias=True, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(layer(x), reference(x))  # float32 everywhere: nnx.Linear, bit for bit
    assert dots(lambda x: layer(x), x) == [(("float32", "float32"), "float32")]

    graphdef, params = nnx.split(layer)  # as the train step casts: split, cast, merge
    layer = nnx.merge(graphdef, jax.tree.map(lambda p: p.astype(BF16), params))
    assert layer.kernel[...].dtype == BF16
    y = layer(x)
    assert y.dtype == jnp.float32  # the residual stream stays float32
    np.testing.assert_allclose(y, rounded(x) @ layer.kernel[...].astype(jnp.float32) + layer.bias[...].astype(jnp.float32)[None],
                               rtol=1e-6, atol=1e-5)
    assert dots(lambda x: layer(x), x) == [(("bfloat16", "bfloat16"), "float32")]


@pytest.mark.parametrize("name", ["bert", "llama"])
def test_bfloat16_parameters_give_bfloat16_matmuls_and_float32_activations(tiny_checkpoint, name):
    """What the train step does under ``train.dtype=bfloat16``: the float32 backbone's
    parameters cast to bfloat16 and merged back. Every dense matmul, forward and backward, then
    takes bfloat16 operands (before this, nnx.Linear promoted them back to float32), the
    features stay float32 and within bfloat16 rounding of the float32 model's."""
    model = TransformerBackbone.from_config(TransformerBackboneConfig(str(tiny_checkpoint(name)[0]), max_length=32))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    half = jax.tree.map(lambda x: x.astype(BF16) if jnp.issubdtype(x.dtype, jnp.floating) else x, params)
    rng = np.random.default_rng(2)
    ids = jnp.asarray(rng.integers(5, 90, size=(3, 12)), jnp.int32)
    mask = jnp.asarray(np.arange(12)[None] < np.array([[12], [7], [3]]), jnp.int32)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": jnp.zeros_like(ids)}

    def features(p):
        return nnx.merge(graphdef, p, rest)(inputs)

    full, mixed = features(params), features(half)
    assert mixed.dtype == jnp.float32
    scale = float(jnp.max(jnp.abs(full)))
    assert float(jnp.max(jnp.abs(mixed - full))) < 0.05 * scale  # bfloat16 keeps 8 bits of mantissa
    assert float(jnp.max(jnp.abs(mixed - full))) > 0  # ...and it did round

    def loss(p):
        return jnp.sum(features(p) ** 2)

    found = dots(jax.grad(loss), half)
    dense = [d for d in found if d[0] == ("bfloat16", "bfloat16")]
    layers = len(model.model.layers)
    per_layer = 6 if name == "bert" else 7  # q, k, v, out, up, down (+ gate)
    assert len(dense) == 3 * per_layer * layers  # forward, input gradient, kernel gradient
    assert all(out == "float32" for _, out in dense)
