"""Pooling: token hidden states ``[B, L, D]`` -> one vector per sequence ``[B, D]``.

All poolings read the attention mask, so they are correct for left and right padding alike.
Results are float32 whatever the model's dtype (heads and losses run in float32).
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def mean_pool(hidden: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Average of the non-padding token states (sentence-transformers' mean pooling,
    Reimers & Gurevych 2019).

    Args:
        hidden: ``[B, L, D]`` token states.
        attention_mask: ``[B, L]`` (1 = token, 0 = padding).
    Returns:
        ``[B, D]`` float32; an all-padding row gives zeros.
    """
    mask = attention_mask.astype(jnp.float32)[:, :, None]
    total = jnp.sum(hidden.astype(jnp.float32) * mask, axis=1)
    return total / jnp.maximum(jnp.sum(mask, axis=1), 1e-9)


def cls_pool(hidden: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """State of the first non-padding token (BERT's ``[CLS]``, RoBERTa's ``<s>``).

    Args:
        hidden: ``[B, L, D]``.
        attention_mask: ``[B, L]``.
    Returns:
        ``[B, D]`` float32.
    """
    first = jnp.argmax(attention_mask > 0, axis=1)
    return _take(hidden, first)


def last_pool(hidden: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """State of the last non-padding token: the one that has seen the whole sequence in a
    causal decoder (the usual reward-model readout, Ouyang et al. 2022).

    Args:
        hidden: ``[B, L, D]``.
        attention_mask: ``[B, L]``.
    Returns:
        ``[B, D]`` float32.
    """
    length = attention_mask.shape[1]
    last = length - 1 - jnp.argmax((attention_mask > 0)[:, ::-1], axis=1)
    return _take(hidden, last)


def _take(hidden: jax.Array, index: jax.Array) -> jax.Array:
    rows = jnp.arange(hidden.shape[0])
    return hidden[rows, index].astype(jnp.float32)


POOLINGS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "cls": cls_pool,
    "mean": mean_pool,
    "last": last_pool,
}


def pool(kind: str, hidden: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Applies the pooling named ``kind`` (``"cls"``, ``"mean"`` or ``"last"``)."""
    return POOLINGS[kind](hidden, attention_mask)


def packed_pool(kind: str, hidden: jax.Array, inputs: dict[str, jax.Array]) -> jax.Array:
    """One vector per sequence of packed rows (layout of ``pluralrm.data.packing``).

    ``cls`` reads each sequence's first token, ``last`` its last token, ``mean`` averages the
    tokens of its segment; the result has the batch shape of ``inputs["first_index"]`` (``[N]``
    or ``[N, 2]``) plus ``D``. Empty sequences (padding comparisons) give finite values
    (``mean``: zeros).

    Args:
        hidden: ``[R, L, D]`` states of the packed rows.
        inputs: the packed inputs (``first_index``, ``last_index``, ``sequence_index``, ``lengths``).
    Returns:
        ``[*shape, D]`` float32.
    """
    d = hidden.shape[-1]
    flat = hidden.reshape(-1, d)
    shape = inputs["first_index"].shape
    if kind == "cls":
        out = flat[inputs["first_index"].reshape(-1)]
    elif kind == "last":
        out = flat[inputs["last_index"].reshape(-1)]
    elif kind == "mean":
        count = inputs["lengths"].size
        total = jax.ops.segment_sum(flat.astype(jnp.float32), inputs["sequence_index"].reshape(-1),
                                    num_segments=count + 1)[:count]
        out = total / jnp.maximum(inputs["lengths"].reshape(-1, 1).astype(jnp.float32), 1.0)
    else:
        raise ValueError(f"unknown pooling {kind!r}; known: {sorted(POOLINGS)}")
    return out.astype(jnp.float32).reshape(shape + (d,))
