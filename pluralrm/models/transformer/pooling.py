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
