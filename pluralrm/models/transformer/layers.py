"""Building blocks shared by the encoder and decoder families.

Parameter layout follows flax: a dense kernel is ``[in, out]`` (checkpoints store PyTorch's
``[out, in]``; the weight tables transpose), embeddings are ``[vocab, dim]``.

Sharding: every matrix carries flax's ``out_sharding`` metadata with the ``model`` mesh axis on
its largest dimension (FSDP style, see :func:`fsdp_axes`), read back with
``nnx.get_partition_spec(state)``. Variables are created with ``eager_sharding=False`` so that a
model can be built without a mesh; :func:`pluralrm.models.transformer.weights.parameter_shardings`
turns the metadata into ``NamedSharding``s for a concrete mesh.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from pluralrm.data import packing
from pluralrm.errors import CheckpointError
from pluralrm.models.transformer.tiled import tile_attention

MODEL_AXIS = "model"

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_python": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_fast": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}


def activation(name: str, config_file: str = "config.json") -> Callable[[jax.Array], jax.Array]:
    """The activation named by ``hidden_act`` in a Hugging Face config (erf GELU for "gelu").

    Raises:
        CheckpointError: for an activation this package does not implement.
    """
    if name not in ACTIVATIONS:
        raise CheckpointError(
            f"{config_file}: hidden_act {name!r} is not supported; supported: {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]


def fsdp_axes(shape: tuple[int, ...]) -> tuple[str | None, ...]:
    """Logical sharding of a matrix: the ``model`` axis on its largest dimension (first on ties).

    Args:
        shape: the parameter's shape (2-D or more).
    Returns:
        One entry per dimension, ``"model"`` on the largest and ``None`` elsewhere.
    """
    largest = max(range(len(shape)), key=lambda i: (shape[i], -i))
    return tuple(MODEL_AXIS if i == largest else None for i in range(len(shape)))


def _sharded(shape: tuple[int, ...]) -> dict[str, Any]:
    return {"out_sharding": fsdp_axes(shape), "eager_sharding": False}


class Dense(nnx.Linear):
    """``nnx.Linear`` that also runs mixed precision (Micikevicius et al. 2018; what
    ``torch.autocast`` does to a linear layer): given a kernel in a narrower float type than its
    input (``train.dtype=bfloat16`` casts the float32 parameters to bfloat16 for the step), it
    multiplies in the kernel's type with float32 accumulation and returns the input's type, so
    only matmul operands are bfloat16 while the residual stream, norms, softmax and the float32
    master weights stay float32. The backward matmuls run in bfloat16 too (:func:`mixed_matmul`).
    ``nnx.Linear`` itself would promote such a kernel back to its ``dtype`` (float32 compute).
    Otherwise (matching types) it is ``nnx.Linear``."""

    def __call__(self, inputs: jax.Array, out_sharding=None) -> jax.Array:
        kernel = self.kernel[...]
        if not narrower(kernel.dtype, inputs.dtype):
            return super().__call__(inputs, out_sharding)
        y = mixed_matmul(inputs, kernel)
        if self.bias is not None:
            y = y + jnp.reshape(self.bias[...].astype(y.dtype), (1,) * (y.ndim - 1) + (-1,))
        return y


def narrower(kind: Any, than: Any) -> bool:
    """Whether float type ``kind`` has fewer bits than float type ``than`` (bfloat16 vs float32)."""
    return (jnp.issubdtype(kind, jnp.floating) and jnp.issubdtype(than, jnp.floating)
            and jnp.finfo(kind).bits < jnp.finfo(than).bits)


@jax.custom_vjp
def mixed_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x @ kernel`` with ``x`` rounded to ``kernel``'s (narrower) type, accumulated and returned
    in ``x``'s type. Backward: the output gradient is rounded to the kernel's type as well, so
    both backward matmuls also take narrow operands (accumulating in ``x``'s type)."""
    return _mixed_dot(x.astype(kernel.dtype), kernel, x.dtype)


def _mixed_dot(a: jax.Array, b: jax.Array, out: Any) -> jax.Array:
    return jax.lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), preferred_element_type=out)


def _mixed_matmul_fwd(x, kernel):
    narrow = x.astype(kernel.dtype)
    return _mixed_dot(narrow, kernel, x.dtype), (narrow, kernel)


def _mixed_matmul_bwd(residuals, g):
    narrow, kernel = residuals
    wide = g.dtype  # the output's type, which is x's
    g = g.astype(kernel.dtype)
    dx = _mixed_dot(g, kernel.T, wide)
    batch = tuple(range(narrow.ndim - 1))
    dk = jax.lax.dot_general(narrow, g, ((batch, batch), ((), ())), preferred_element_type=wide)
    return dx, dk.astype(kernel.dtype)


mixed_matmul.defvjp(_mixed_matmul_fwd, _mixed_matmul_bwd)


def dense(in_features: int, out_features: int, *, use_bias: bool, dtype: Any, rngs: nnx.Rngs) -> Dense:
    """A linear layer ``[in, out]`` with FSDP sharding metadata on its kernel (:class:`Dense`)."""
    return Dense(
        in_features,
        out_features,
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=dtype,
        kernel_metadata=_sharded((in_features, out_features)),
        rngs=rngs,
    )


def embedding(num: int, features: int, *, dtype: Any, rngs: nnx.Rngs) -> nnx.Embed:
    """An embedding table ``[num, features]`` with FSDP sharding metadata."""
    return nnx.Embed(
        num,
        features,
        dtype=dtype,
        param_dtype=dtype,
        embedding_metadata=_sharded((num, features)),
        rngs=rngs,
    )


def layer_norm(features: int, eps: float, *, dtype: Any, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm with exact (two-pass) variance, as PyTorch computes it."""
    return nnx.LayerNorm(
        features, epsilon=eps, dtype=dtype, param_dtype=dtype, use_fast_variance=False, rngs=rngs
    )


def rms_norm(features: int, eps: float, *, dtype: Any, rngs: nnx.Rngs) -> nnx.RMSNorm:
    """RMSNorm (Zhang & Sennrich 2019), statistics in float32."""
    return nnx.RMSNorm(
        features, epsilon=eps, dtype=dtype, param_dtype=dtype, use_fast_variance=False, rngs=rngs
    )


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Scaled dot-product attention with grouped key/value heads.

    Softmax runs in float32; masked scores get the float32 minimum rather than -inf so that a
    query row with every key masked (a padding position) stays finite and gradients stay clean.

    Args:
        q: queries ``[B, L, H, Dh]``.
        k: keys ``[B, S, K, Dh]`` with ``H % K == 0`` (grouped-query attention, Ainslie et al.
            2023; ``K == H`` is multi-head attention).
        v: values ``[B, S, K, Dh]``.
        mask: ``[B, L, S]`` bool, True where query l may attend to key s.
    Returns:
        ``[B, L, H, Dh]`` in ``q``'s dtype.
    """
    b, l, h, dh = q.shape
    kv_heads = k.shape[2]
    q = q.reshape(b, l, kv_heads, h // kv_heads, dh)
    scores = jnp.einsum("blkgd,bskd->bkgls", q, k, preferred_element_type=jnp.float32)
    scores = scores * (dh**-0.5)
    scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.einsum("bkgls,bskd->blkgd", probs, v)
    return out.reshape(b, l, h, dh)


ATTENTION_CHUNK = 128


class PackedRows(NamedTuple):
    """What a layer needs to attend within the segments of packed rows
    (``pluralrm.data.packing``): ``segment_ids`` ``[B, L]`` and, when the packer listed them,
    the block-sparse ``tile_pairs`` ``[n, P, 2]`` (else None)."""

    segment_ids: jax.Array
    tile_pairs: jax.Array | None = None


def segment_mask(q_segments: jax.Array, k_segments: jax.Array) -> jax.Array:
    """``[B, Lq, Lk]`` bool: query and key in the same (non-padding) segment."""
    return (q_segments[:, :, None] == k_segments[:, None, :]) & (q_segments[:, :, None] > 0)


def segment_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    segment_ids: jax.Array,
    *,
    causal: bool,
    window: int | None = None,
    chunk: int | None = None,
    implementation: str | None = None,
    tile_pairs: jax.Array | None = None,
) -> jax.Array:
    """Attention of packed rows: each token attends only to its own segment (block-diagonal),
    and with ``causal`` only to itself and earlier tokens of it (segments are contiguous, so
    "earlier in the row" is "earlier in the segment"); ``window`` limits how far back.

    On CPU, with ``tile_pairs`` (``pluralrm.data.packing.attention_tiles``) only the listed
    (query tile, key tile) pairs are computed (:func:`~pluralrm.models.transformer.tiled.tile_attention`,
    block-sparse); without, queries are processed ``chunk`` at a time, so the float32 scores
    held at once are ``[B, H, chunk, S]`` rather than ``[B, H, L, L]``; for causal attention a
    chunk only reads the keys up to its end (half the work of the full square). Elsewhere (GPU/TPU) it calls
    ``jax.nn.dot_product_attention`` with the segment mask, which XLA lowers to a fused kernel
    (cuDNN on NVIDIA GPUs) where the platform has one; ``implementation`` is passed through.

    Args:
        q: ``[B, L, H, Dh]``; k, v: ``[B, L, K, Dh]`` (``H % K == 0``).
        segment_ids: ``[B, L]`` int, 1, 2, ... per segment, 0 for padding.
    Returns:
        ``[B, L, H, Dh]``; padding queries get finite values (nobody reads them).
    """
    b, l = segment_ids.shape
    chunk = chunk or ATTENTION_CHUNK
    idx = jnp.arange(l)

    def mask_for(q_start: int, q_stop: int, k_stop: int) -> jax.Array:
        mask = segment_mask(segment_ids[:, q_start:q_stop], segment_ids[:, :k_stop])
        if causal or window is not None:
            offset = idx[q_start:q_stop, None] - idx[None, :k_stop]
            keep = jnp.ones_like(offset, dtype=bool)
            if causal:
                keep = keep & (offset >= 0)
            if window is not None:
                keep = keep & (offset < window)
            mask = mask & keep[None]
        return mask

    if jax.default_backend() != "cpu" or implementation is not None:
        mask = mask_for(0, l, l)
        # a padding query with no key to attend to: let it see itself (keeps the softmax finite)
        mask = mask | jnp.eye(l, dtype=bool)[None]
        return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None], implementation=implementation)
    if tile_pairs is not None:
        return tile_attention(q, k, v, segment_ids, tile_pairs, packing.ATTENTION_TILE, causal=causal, window=window)
    outs = []
    for start in range(0, l, chunk):
        stop = min(start + chunk, l)
        k_stop = stop if causal else l
        outs.append(attention(q[:, start:stop], k[:, :k_stop], v[:, :k_stop], mask_for(start, stop, k_stop)))
    return outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=1)


def run_layers(layers: nnx.List, hidden: jax.Array, *args: jax.Array, remat: bool) -> jax.Array:
    """Applies ``layers`` in order, each as ``layer(hidden, *args)``.

    With ``remat`` every layer is wrapped in ``nnx.remat``: its activations are recomputed in
    the backward pass instead of stored (Chen et al. 2016), trading compute for memory.
    """

    def step(layer: nnx.Module, h: jax.Array, *a: jax.Array) -> jax.Array:
        return layer(h, *a)

    if remat:
        step = nnx.remat(step)
    for layer in layers:
        hidden = step(layer, hidden, *args)
    return hidden


def positions_from_mask(attention_mask: jax.Array) -> jax.Array:
    """Position of every token counted over non-padding tokens only.

    Left and right padding give the same positions to the same real tokens, which makes the
    model's outputs independent of the padding side. Padding positions get 0.

    Args:
        attention_mask: ``[B, L]`` (1 = token, 0 = padding).
    Returns:
        ``[B, L]`` int32.
    """
    mask = attention_mask.astype(jnp.int32)
    return jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0) * mask
