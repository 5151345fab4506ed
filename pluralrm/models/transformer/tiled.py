"""Block-sparse attention of packed rows: only the tiles some segment spans.

A packed row of 512 tokens holding three or four sequences needs only the diagonal blocks of its
attention matrix. ``pluralrm.data.packing`` cuts the rows into tiles of ``ATTENTION_TILE``
tokens and lists the (query tile, key tile) pairs that share a segment (``tile_pairs``); this
module computes scores for those pairs only, ``[C, H, T, T]`` per chunk of pairs instead of
``[R, H, L, L]``, with the segment (and causal / window) mask inside each pair.

Pairs run in chunks of :data:`PAIR_CHUNK` in a loop (``over_pair_chunks``) whose carry holds the
tiles' running state, as FlashAttention's online softmax does (Dao et al. 2022), here over a
list of tile pairs rather than over key blocks: per query tile a running maximum, sum of
exponentials and unnormalised output, each chunk adding its pairs' terms with scatters of
``[C, ...]`` slices. The chunk's scores stay in cache: materialising all pairs' scores at once
(157 MB a layer for a batch of 64 responses at 512) made the einsums memory-bound, ~5x slower
per pair on this 2-core CPU; stacking every pair's output ``[P, H, T, Dh]`` and summing it into
the tiles afterwards (the previous design) spent its time in single-threaded copies, broadcasts
and elementwise passes over those stacks (one MiniLM layer's attention, forward + backward, on 9
packed rows of real text: 105-119 ms stacked, 60-64 ms in the carry). The backward pass is
written out (``jax.custom_vjp``): it keeps only each query's log-sum-exp ``[N, H, T]``, recomputes the
probabilities chunk by chunk and adds the pairs' query, key and value gradients into their tiles
in the loop's carry (FlashAttention's backward, per pair). The loop's trip count is dynamic: it
stops after the last chunk holding a real pair, so padding pairs cost nothing and the packer
pads every list to the whole square (one shape, one compilation, per row count).

This path is for CPU (``layers.segment_attention`` picks it when the packer listed tile pairs);
GPUs and TPUs run ``jax.nn.dot_product_attention`` with the segment mask (fused kernels).

Rows split over ``n`` devices keep their own pair lists (``tile_pairs: [n, P, 2]``, indices
within a shard), so nothing is gathered across devices.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

NEG = -1e30  # masked scores: finite, so exp(NEG - max) is 0 and no inf - inf appears
PAIR_CHUNK = 16
"""Tile pairs computed together (one iteration of the pair loop): 16 pairs of 12 heads of 64 x 64
float32 scores are 3 MB, about a core's L2 here (one MiniLM layer's attention, forward + backward,
summed over three real HH-RLHF batches of 9, 7 and 10 rows of 512: chunks of 8 pairs 194 ms, 16
190, 32 241, 64 327)."""


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
    chunks = real_chunks(tile_pairs[..., 1])  # one trip count for all shards (an unbatched loop)

    def run(q, k, v, seg, qi, ki):  # one shard: [N, H, T, Dh] tiles, seg [N, T], pairs [P]
        return _attend(q, k, v, seg, qi, ki, chunks, l // tile, causal, window, dh**-0.5)

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


def computed_pairs(tile_pairs) -> int:
    """Tile pairs the attention computes for a packed batch's ``tile_pairs [n, P, 2]`` (numpy):
    each shard's real pairs rounded up to whole chunks of :data:`PAIR_CHUNK`, and every shard
    runs as many chunks as the busiest (the shards' loops run side by side). For FLOP counts."""
    real = (np.asarray(tile_pairs)[..., 1] >= 0).sum(axis=-1)
    return int(tile_pairs.shape[0] * -(-real.max(initial=0) // PAIR_CHUNK) * PAIR_CHUNK)


def real_chunks(ki: jax.Array) -> jax.Array:
    """Chunks of :data:`PAIR_CHUNK` pairs up to the last real pair (key tile >= 0) of the pair
    lists ``ki [..., P]`` (the largest over the leading axes): the pair loop's trip count."""
    index = jnp.arange(ki.shape[-1]) // PAIR_CHUNK + 1
    return jnp.max(jnp.where(ki >= 0, index, 0))


def over_pair_chunks(body, qi, ki, chunks, init):
    """``carry = body(qi_chunk, ki_chunk, carry)`` from ``init`` over the first ``chunks``
    chunks of :data:`PAIR_CHUNK` pairs (a ``fori_loop`` with a dynamic trip count, see
    :func:`real_chunks`): padding pairs (key tile -1) come last, so chunks of padding only are
    never computed and a pair list may be padded to any length for free (the packer pads it to the
    whole square: one shape per row count)."""
    extra = -qi.shape[0] % PAIR_CHUNK
    if extra:  # padding pairs up to a whole chunk: they see nothing
        qi = jnp.concatenate([qi, jnp.full((extra,), qi[-1], qi.dtype)])
        ki = jnp.concatenate([ki, jnp.full((extra,), -1, ki.dtype)])
    cq, ck = qi.reshape(-1, PAIR_CHUNK), ki.reshape(-1, PAIR_CHUNK)
    return jax.lax.fori_loop(0, chunks, lambda i, carry: body(cq[i], ck[i], carry), init)


def _scores(q, k, seg, qi, ki, per_row, causal, window, scale):
    """One chunk of pairs: masked float32 scores ``[C, H, T, T]`` and the mask ``[C, 1, T, T]``."""
    s = jnp.einsum("phqd,phkd->phqk", q[qi], k[ki], preferred_element_type=jnp.float32) * scale
    mask = _pair_mask(seg, qi, ki, per_row, causal, window)[:, None]
    return jnp.where(mask, s, NEG), mask


def _forward(q, k, v, seg, qi, ki, chunks, per_row, causal, window, scale):
    """Output ``[N, H, T, Dh]`` (float32) and every query's log-sum-exp ``[N, H, T]`` (a large
    positive number for queries that see no key, so that recomputed probabilities are 0).

    Online softmax over the chunks of pairs (FlashAttention's forward): the loop carries every
    query tile's running maximum ``m``, sum of exponentials ``l`` and unnormalised output ``o``;
    a chunk raises the maxima of its query tiles (a scatter-max: a chunk may hold several pairs
    of one tile), rescales those tiles' ``o`` and ``l`` and adds its pairs' terms (scatter-adds
    of ``[C, ...]`` slices into the carry). Nothing of size ``[P, ...]`` is materialised: on this
    2-core CPU, stacking the pairs' outputs and summing them afterwards spent about a third of
    the attention's time in single-threaded copies, broadcasts and elementwise passes."""
    n, h, t, dh = q.shape

    def chunk(cq, ck, carry):
        o, m_old, l = carry
        s, mask = _scores(q, k, seg, cq, ck, per_row, causal, window, scale)
        m = m_old.at[cq].max(jnp.max(s, axis=-1))  # [N, H, T]; NEG where nothing is seen yet
        top = m[cq]  # [C, H, T]: the new maximum of each pair's query tile
        e = jnp.where(mask, jnp.exp(s - top[..., None]), 0.0)
        pv = jnp.einsum("phqk,phkd->phqd", e.astype(v.dtype), v[ck], preferred_element_type=jnp.float32)
        # rescale the chunk's tiles to their new maxima (a tile listed twice in the chunk is set
        # twice to the same value), then add the chunk's terms
        alpha = jnp.exp(m_old[cq] - top)  # 1 where the maximum did not move
        o = o.at[cq].set(o[cq] * alpha[..., None]).at[cq].add(pv)
        l = l.at[cq].set(l[cq] * alpha).at[cq].add(jnp.sum(e, axis=-1))
        return o, m, l

    init = (jnp.zeros((n, h, t, dh), jnp.float32), jnp.full((n, h, t), NEG, jnp.float32),
            jnp.zeros((n, h, t), jnp.float32))
    o, m, l = over_pair_chunks(chunk, qi, ki, chunks, init)
    seen = l > 0  # a query in no pair, or padding: output 0, not NaN
    out = o / jnp.where(seen, l, 1.0)[..., None]
    lse = jnp.where(seen, m + jnp.log(jnp.where(seen, l, 1.0)), -NEG)
    return out, lse


@partial(jax.custom_vjp, nondiff_argnums=(7, 8, 9, 10))
def _attend(q, k, v, seg, qi, ki, chunks, per_row, causal, window, scale):
    return _forward(q, k, v, seg, qi, ki, chunks, per_row, causal, window, scale)[0].astype(q.dtype)


def _attend_fwd(q, k, v, seg, qi, ki, chunks, per_row, causal, window, scale):
    out, lse = _forward(q, k, v, seg, qi, ki, chunks, per_row, causal, window, scale)
    out = out.astype(q.dtype)
    return out, (q, k, v, seg, qi, ki, chunks, out, lse)


def _attend_bwd(per_row, causal, window, scale, residuals, d_out):
    # per chunk of pairs, the probabilities are recomputed from the saved log-sum-exp (in cache:
    # cheaper than keeping [P, H, T, T] from the forward pass); with P = exp(S - lse):
    # dV = P^T dO, dS = P * (dO V^T - rowsum(dO * O)), dQ = dS K * scale, dK = dS^T Q * scale
    q, k, v, seg, qi, ki, chunks, out, lse = residuals
    f32 = lambda x: x.astype(jnp.float32)  # noqa: E731
    do = f32(d_out)
    delta = jnp.sum(do * f32(out), axis=-1)  # [N, H, T]

    def chunk(cq, ck, grads):
        s, mask = _scores(q, k, seg, cq, ck, per_row, causal, window, scale)
        p = jnp.where(mask, jnp.exp(s - lse[cq][..., None]), 0.0)
        do_q = do[cq]
        dv = jnp.einsum("phqk,phqd->phkd", p, do_q)
        dp = jnp.einsum("phqd,phkd->phqk", do_q, f32(v)[ck])
        ds = p * (dp - delta[cq][..., None]) * scale
        dq = jnp.einsum("phqk,phkd->phqd", ds, f32(k)[ck])
        dk = jnp.einsum("phqk,phqd->phkd", ds, f32(q)[cq])
        # padding pairs of the last chunk (key tile -1, read as the last tile) add zeros
        return grads[0].at[cq].add(dq), grads[1].at[ck].add(dk), grads[2].at[ck].add(dv)

    zeros = jnp.zeros(q.shape, jnp.float32)
    dq, dk, dv = over_pair_chunks(chunk, qi, ki, chunks, (zeros, zeros, zeros))
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None, None, None, None


_attend.defvjp(_attend_fwd, _attend_bwd)


__all__ = ["computed_pairs", "over_pair_chunks", "real_chunks", "tile_attention"]
