"""What every transformer layer reads besides the hidden states: whom each token attends to,
and at which position it stands, for padded and for packed rows alike.

Padded rows (``[B, L]`` with an attention mask) give a ``[B, L, L]`` boolean mask; packed rows
(:mod:`pluralrm.data.packing`) give their ``[B, L]`` segment ids, which the layers turn into
block-diagonal attention (``layers.segment_attention``). Encoders and decoders differ only in
``causal``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from pluralrm.models.transformer.layers import PackedRows, positions_from_mask


def attention_inputs(
    attention_mask: jax.Array,
    segment_ids: jax.Array | None = None,
    positions: jax.Array | None = None,
    *,
    causal: bool,
    tile_pairs: jax.Array | None = None,
) -> tuple[jax.Array | PackedRows, jax.Array]:
    """The layers' mask argument and the token positions.

    Args:
      attention_mask: ``[B, L]``, 1 = token, 0 = padding.
      segment_ids: packed rows' ``[B, L]`` segment ids (1, 2, ... per segment, 0 = padding),
        or None for padded rows.
      positions: ``[B, L]`` positions (packed rows: restarting at 0 per segment); None counts
        them over the non-padding tokens (:func:`~pluralrm.models.transformer.layers.positions_from_mask`),
        so left and right padding give the same positions.
      causal: each token sees only itself and earlier tokens (decoders).
      tile_pairs: packed rows' block-sparse tile list (``pluralrm.data.packing.attention_tiles``).

    Returns:
      ``(mask, positions)``: ``mask`` is :class:`PackedRows` for packed rows, else ``[B, L, L]``
      bool, True where query l may attend to key s; ``positions`` ``[B, L]`` int.
    """
    if positions is None:
        positions = positions_from_mask(attention_mask)
    if segment_ids is not None:
        return PackedRows(segment_ids, tile_pairs), positions
    b, l = attention_mask.shape
    mask = jnp.broadcast_to((attention_mask > 0)[:, None, :], (b, l, l))
    if causal:
        mask = mask & jnp.tril(jnp.ones((l, l), dtype=bool))[None]
    return mask, positions


__all__ = ["attention_inputs"]
