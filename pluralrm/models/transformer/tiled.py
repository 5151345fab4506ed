"""Block-sparse attention of packed rows: only the tiles some segment spans.

A packed row of 512 tokens holding three or four sequences needs only the diagonal blocks of its
attention matrix. ``pluralrm.data.packing`` cuts the rows into tiles of ``ATTENTION_TILE``
tokens and lists the (query tile, key tile) pairs that share a segment (``tile_pairs``); this
module computes scores for those pairs only, ``[P, H, T, T]`` instead of ``[R, H, L, L]``, with
the segment (and causal / window) mask inside each pair, and combines the pairs of a query tile
with a log-sum-exp over their partial softmaxes (the same algebra as FlashAttention's online
softmax, Dao et al. 2022, here over a list rather than a loop).

Pairs run in chunks of :data:`PAIR_CHUNK` (``lax.map``), scores to per-pair outputs within a
chunk, so the ``[C, H, T, T]`` intermediates stay in cache: materialising all pairs' scores at
once (157 MB a layer for a batch of 64 responses at 512) made the einsums memory-bound, ~5x
slower per pair than in cache on this 2-core CPU. The backward pass is written out
(``jax.custom_vjp``): it keeps only each query's log-sum-exp ``[N, H, T]``, recomputes the
probabilities chunk by chunk, and sums the pairs' query, key and value gradients back into their
tiles (FlashAttention's backward, per pair). The sums into tiles are ``segment_sum``s of
materialised arrays (fused into the scatter, XLA on CPU computed the einsums element by element).

This path is for CPU (``layers.segment_attention`` picks it when the packer listed tile pairs);
GPUs and TPUs run ``jax.nn.dot_product_attention`` with the segment mask (fused kernels).

Rows split over ``n`` devices keep their own pair lists (``tile_pairs: [n, P, 2]``, indices
within a shard), so nothing is gathered across devices.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

NEG = -1e30  # masked scores: finite, so exp(NEG - max) is 0 and no inf - inf appears
PAIR_CHUNK = 16
"""Tile pairs computed together (``lax.map`` over chunks): 16 pairs of 12 heads of 64 x 64
float32 scores are 3 MB, about a core's L2 here (one MiniLM layer, fwd + bwd: 4 pairs 140 ms, 8 131,
16 129, 32 134; all pairs at once 146)."""


def tile_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    segment_ids: jax.Array,
    tile_pairs: jax.Array,
    tile: int,
    *,
    causal: bool,
    window: int | None = None,
) -> jax.Array:
    """Attention within each segment of packed rows, over the listed tile pairs only.

    Args:
        q: ``[R, L, H, Dh]``; k, v: ``[R, L, K, Dh]`` with ``H % K == 0``.
        segment_ids: ``[R, L]`` (1, 2, ... per segment, 0 = padding; ascending along a row).
        tile_pairs: ``[n, P, 2]`` (query tile, key tile) per shard of ``R / n`` rows, sorted by
            query tile; key tile -1 marks padding (see ``pluralrm.data.packing.attention_tiles``).
        tile: tokens per tile (``L`` is a multiple).
        causal: a query sees only keys at or before it; ``window`` limits how far back.
    Returns:
        ``[R, L, H, Dh]`` in ``q``'s dtype; queries with no key (padding) get zeros.
    """
    r, l, h, dh = q.shape
    shards = tile_pairs.shape[0]
    if l % tile or r % shards:
        raise ValueError(f"rows [{r}, {l}] do not split into {shards} shards of tiles of {tile} tokens")
    groups = h // k.shape[2]
    if groups > 1:  # grouped-query attention: every query head reads its key/value head
        k, v = jnp.repeat(k, groups, axis=2), jnp.repeat(v, groups, axis=2)

    def tiles(x):  # [R, L, H, Dh] -> [n, R/n * L/T, H, T, Dh]
        x = x.reshape(shards, r // shards, l // tile, tile, h, dh)
        return x.transpose(0, 1, 2, 4, 3, 5).reshape(shards, -1, h, tile, dh)

    seg = segment_ids.reshape(shards, -1, tile)
    def run(q, k, v, seg, qi, ki):  # one shard: [N, H, T, Dh] tiles, seg [N, T], pairs [P]
        return _attend(q, k, v, seg, qi, ki, l // tile, causal, window, dh**-0.5)

    args = (tiles(q), tiles(k), tiles(v), seg, tile_pairs[..., 0], tile_pairs[..., 1])
    if shards == 1:  # one device: no batched gathers (XLA's CPU gather is slower batched)
        out = run(*(a[0] for a in args))[None]
    else:
        out = jax.vmap(run)(*args)
    out = out.reshape(shards, r // shards, l // tile, h, tile, dh).transpose(0, 1, 2, 4, 3, 5)
    return out.reshape(r, l, h, dh)


def _pair_mask(seg, qi, ki, per_row, causal, window):
    """``[P, T, T]`` bool: query and key share a segment (and causal / window allow it)."""
    tile = seg.shape[-1]
    sq, sk = seg[qi], seg[ki]
    mask = (sq[:, :, None] == sk[:, None, :]) & (sq[:, :, None] > 0) & (ki >= 0)[:, None, None]
    if causal or window is not None:
        col = jnp.arange(tile)
        # both tiles lie in one row: column distance = tile distance * tile + in-tile distance
        offset = (qi % per_row - ki % per_row)[:, None, None] * tile + (col[:, None] - col[None, :])[None]
        if causal:
            mask = mask & (offset >= 0)
        if window is not None:
            mask = mask & (offset < window)
    return mask


def _map_pairs(fn, qi, ki):
    """``fn(qi_chunk, ki_chunk)`` over chunks of :data:`PAIR_CHUNK` pairs (``lax.map``), its
    outputs concatenated back to ``[P', ...]``. The pair lists are first padded to a multiple of
    the chunk with pairs that see nothing (the last query tile, key tile -1); returns
    ``(outputs, qi, ki)`` with the padded lists, which index the outputs."""
    extra = -qi.shape[0] % PAIR_CHUNK
    if extra:
        qi = jnp.concatenate([qi, jnp.full((extra,), qi[-1], qi.dtype)])
        ki = jnp.concatenate([ki, jnp.full((extra,), -1, ki.dtype)])
    chunks = (qi.reshape(-1, PAIR_CHUNK), ki.reshape(-1, PAIR_CHUNK))
    outputs = jax.lax.map(lambda pairs: fn(*pairs), chunks)
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), outputs), qi, ki


def _scores(q, k, seg, qi, ki, per_row, causal, window, scale):
    """One chunk of pairs: masked float32 scores ``[C, H, T, T]`` and the mask ``[C, 1, T, T]``."""
    s = jnp.einsum("phqd,phkd->phqk", q[qi], k[ki], preferred_element_type=jnp.float32) * scale
    mask = _pair_mask(seg, qi, ki, per_row, causal, window)[:, None]
    return jnp.where(mask, s, NEG), mask


def _forward(q, k, v, seg, qi, ki, per_row, causal, window, scale):
    """Output ``[N, H, T, Dh]`` (float32) and every query's log-sum-exp ``[N, H, T]`` (a large
    positive number for queries that see no key, so that recomputed probabilities are 0).

    Pairs run in chunks of ``PAIR_CHUNK`` (``lax.map``): each chunk's scores, probabilities and
    values stay in cache, where materialising all pairs' ``[P, H, T, T]`` scores at once made
    the two einsums memory-bound (5x slower per pair on this CPU). Each pair keeps its own
    maximum; the pairs of a query tile are combined afterwards with the log-sum-exp weights."""
    n = q.shape[0]

    def pair_chunk(cq, ck):
        s, mask = _scores(q, k, seg, cq, ck, per_row, causal, window, scale)
        top = jnp.max(s, axis=-1)  # [C, H, T]; NEG where the query sees no key of this pair
        e = jnp.where(mask, jnp.exp(s - top[..., None]), 0.0)
        pv = jnp.einsum("phqk,phkd->phqd", e.astype(v.dtype), v[ck], preferred_element_type=jnp.float32)
        return top, jnp.sum(e, axis=-1), pv

    (top, total, pv), qi, _ = _map_pairs(pair_chunk, qi, ki)
    best = jax.ops.segment_max(top, qi, n, indices_are_sorted=True)  # [N, H, T]
    weight = jnp.exp(top - best[qi])  # [P, H, T]: 0 for pairs (and rows) that see nothing
    total = jax.ops.segment_sum(total * weight, qi, n, indices_are_sorted=True)
    seen = total > 0  # a query in no pair, or padding: output 0, not NaN
    out = _sum_into(pv * weight[..., None], qi, n) / jnp.where(seen, total, 1.0)[..., None]
    lse = jnp.where(seen, best + jnp.log(jnp.where(seen, total, 1.0)), -NEG)
    return out, lse


def _sum_into(x, index, n):
    """``out[i] = sum of x[p] where index[p] == i`` (index -1: dropped). ``x`` is materialised
    first: XLA on CPU otherwise fuses the einsum producing it into the scatter, elementwise."""
    return jax.ops.segment_sum(jax.lax.optimization_barrier(x), index, n)


@partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8, 9))
def _attend(q, k, v, seg, qi, ki, per_row, causal, window, scale):
    return _forward(q, k, v, seg, qi, ki, per_row, causal, window, scale)[0].astype(q.dtype)


def _attend_fwd(q, k, v, seg, qi, ki, per_row, causal, window, scale):
    out, lse = _forward(q, k, v, seg, qi, ki, per_row, causal, window, scale)
    out = out.astype(q.dtype)
    return out, (q, k, v, seg, qi, ki, out, lse)


def _attend_bwd(per_row, causal, window, scale, residuals, d_out):
    # per chunk of pairs, the probabilities are recomputed from the saved log-sum-exp (in cache:
    # cheaper than keeping [P, H, T, T] from the forward pass); with P = exp(S - lse):
    # dV = P^T dO, dS = P * (dO V^T - rowsum(dO * O)), dQ = dS K * scale, dK = dS^T Q * scale
    q, k, v, seg, qi, ki, out, lse = residuals
    n = q.shape[0]
    f32 = lambda x: x.astype(jnp.float32)  # noqa: E731
    do = f32(d_out)
    delta = jnp.sum(do * f32(out), axis=-1)  # [N, H, T]

    def pair_chunk(cq, ck):
        s, mask = _scores(q, k, seg, cq, ck, per_row, causal, window, scale)
        p = jnp.where(mask, jnp.exp(s - lse[cq][..., None]), 0.0)
        do_q = do[cq]
        dv = jnp.einsum("phqk,phqd->phkd", p, do_q)
        dp = jnp.einsum("phqd,phkd->phqk", do_q, f32(v)[ck])
        ds = p * (dp - delta[cq][..., None]) * scale
        dq = jnp.einsum("phqk,phkd->phqd", ds, f32(k)[ck])
        dk = jnp.einsum("phqk,phqd->phkd", ds, f32(q)[cq])
        return dq, dk, dv

    (dq, dk, dv), qi, ki = _map_pairs(pair_chunk, qi, ki)
    dq, dk, dv = _sum_into(dq, qi, n), _sum_into(dk, ki, n), _sum_into(dv, ki, n)
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None, None, None


_attend.defvjp(_attend_fwd, _attend_bwd)


__all__ = ["tile_attention"]
