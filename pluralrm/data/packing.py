"""Padding-free batches: many tokenized sequences packed into a few fixed-length rows.

A padded batch of reward-model pairs spends most of its compute on padding when lengths vary
(on the HH-RLHF sample at max length 512, padding every sequence to 512 leaves 30 % useful
tokens). Packing instead lays the chosen and rejected sequences of many comparisons end to end
into rows of ``row_length`` tokens (first-fit decreasing bin packing), each token tagged with its
*segment* (1, 2, ... within its row; 0 = padding at a row's end) and its position inside the
segment (restarting at 0), so the model can restrict attention to each segment (block-diagonal,
causal within a segment for decoders) and give every token the position it has unpacked.
Pooling then reads one vector per sequence from the flat token index of its first and last
token (CLS / last-token pooling) or averages the tokens of its segment (mean pooling).

Static shapes: the row length is fixed (``row_length``) and the number of rows is rounded up
with :func:`bucket_rows` (exact up to 16, then steps of 1/8 of the power of two below: under
12.5 % extra rows; one compilation per row count); the number
of sequences is the batch's (padding comparisons are zero-length sequences).

Packed layout (numpy int32), for ``S`` sequences, shaped like the batch (``[N]`` or ``[N, 2]``)::

    input_ids, token_type_ids, segment_ids, positions, attention_mask:  [R, row_length]
    sequence_index:  [R, row_length]  which sequence a token belongs to (S for padding)
    first_index, last_index:  [N] or [N, 2]  flat index (row * row_length + column) of the
                                             sequence's first and last token (0 when empty)
    lengths:         [N] or [N, 2]  tokens of each sequence
    tile_pairs:      [n, P, 2]  block-sparse attention: (query tile, key tile) pairs that share a
                                segment (only when ``row_length`` is a multiple of
                                :data:`ATTENTION_TILE` and longer than one tile; see below)

Block-sparse attention: a row of 512 tokens holding a few sequences needs only the diagonal
blocks of its ``[512, 512]`` attention matrix (on the HH-RLHF sample ~40 % of the square). The
rows are cut into tiles of :data:`ATTENTION_TILE` tokens, and ``tile_pairs`` lists every
(query tile, key tile) pair of a row that some sequence spans (~54 % of the square there), as
tile indices counted within each of the ``n = row_multiple`` row shards (the devices the rows
are split over), sorted by query tile, then padded to the whole square of the shard with padding
pairs (query tile = the shard's last, key tile -1), which the attention never computes (it stops
after the last real pair). So the list's shape depends on the row count only: one compilation per
row count.

Nothing here depends on the model: any featurizer output with ``input_ids`` and
``attention_mask`` (left or right padded) can be packed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PACKED_KEYS = ("segment_ids", "positions", "sequence_index", "first_index", "last_index", "lengths")
ATTENTION_TILE = 64
"""Tokens per attention tile of packed rows; the attention reads the same constant."""
BATCHING_MODES = ("packed", "padded")


def is_packed(inputs: dict) -> bool:
    """Whether a model-input dict is in the packed layout (it carries ``segment_ids``)."""
    return "segment_ids" in inputs


def bucket_rows(rows: int, multiple: int = 1) -> int:
    """The packed row count used for ``rows`` needed rows: exact up to 16, then rounded up to a
    multiple of 1/8 of the power of two below (18, 20, ..., 32, 36, 40, ...), then to a multiple of
    ``multiple`` (e.g. the number of devices the rows are split over).

    Finer buckets waste fewer rows and compile more shapes (each once, cached on disk). On the
    HH-RLHF sample at 512 tokens, batches of 16 pairs need 5 to 16 rows: exact counts fill 94.1 %
    of the token slots where quarter-power-of-two buckets (10, 12, 14, 16) filled 90.4 %, and
    the useful share of matmul FLOPs (tiles included) rose from 87.5 % to 90.8 % (300 random
    batches, 24 shapes instead of 16)."""
    rows = max(int(rows), 1)
    if rows > 16:
        step = 1 << max((rows - 1).bit_length() - 4, 0)
        rows = -(-rows // step) * step
    return -(-rows // multiple) * multiple


def first_fit_decreasing(lengths: Sequence[int], row_length: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Assigns sequences to rows: longest first, each into the first row with room.

    Args:
        lengths: tokens of each sequence (each <= ``row_length``; 0 = empty, placed nowhere).
        row_length: capacity of a row.
    Returns:
        ``(row [S], offset [S], rows)``: the row and column where each sequence starts (0, 0 for
        empty ones) and the number of rows used. Deterministic (ties keep input order).
    Raises:
        ValueError: a sequence longer than ``row_length``.
    """
    lengths = np.asarray(lengths, np.int64)
    if lengths.size and lengths.max() > row_length:
        raise ValueError(f"a sequence of {int(lengths.max())} tokens does not fit a packed row of {row_length}")
    row = np.zeros(len(lengths), np.int64)
    offset = np.zeros(len(lengths), np.int64)
    free: list[int] = []  # room left in each open row
    for i in np.argsort(-lengths, kind="stable").tolist():
        n = int(lengths[i])
        if n == 0:
            continue
        for r, room in enumerate(free):  # noqa: B007 (r is the row found, read after the loop)
            if room >= n:
                break
        else:
            r = len(free)
            free.append(row_length)
        row[i], offset[i] = r, row_length - free[r]
        free[r] -= n
    return row, offset, len(free)


def pack(features: dict[str, np.ndarray], row_length: int, *, pad_id: int = 0, shape: tuple[int, ...] | None = None,
         row_multiple: int = 1) -> dict[str, np.ndarray]:
    """Packs featurizer output ``{input_ids, attention_mask[, token_type_ids]}: [S, L]`` into rows.

    Args:
        features: one padded row per sequence (padding where ``attention_mask`` is 0, either side).
        row_length: tokens per packed row (>= the longest sequence).
        pad_id: token id written into the padding at the end of rows.
        shape: the batch shape of the sequences (product S; default ``(S,)``); the pooling
            index arrays take this shape, e.g. ``(N, 2)`` for pairs.
        row_multiple: the row count is also a multiple of this (data-parallel devices).
    Returns:
        The packed layout described in the module docstring.
    """
    mask = np.asarray(features["attention_mask"]) > 0
    ids = np.asarray(features["input_ids"])
    types = features.get("token_type_ids")
    types = np.zeros_like(ids) if types is None else np.asarray(types)
    count = mask.shape[0]
    shape = (count,) if shape is None else tuple(shape)
    if int(np.prod(shape)) != count:
        raise ValueError(f"shape {shape} does not hold the {count} sequences given")
    lengths = mask.sum(axis=1).astype(np.int64)
    row, offset, used = first_fit_decreasing(lengths, row_length)
    rows = bucket_rows(used, row_multiple)
    out = {
        "input_ids": np.full((rows, row_length), pad_id, np.int32),
        "token_type_ids": np.zeros((rows, row_length), np.int32),
        "segment_ids": np.zeros((rows, row_length), np.int32),
        "positions": np.zeros((rows, row_length), np.int32),
        "sequence_index": np.full((rows, row_length), count, np.int32),
    }
    segments_in_row = np.zeros(rows, np.int32)
    order = np.lexsort((offset, row))  # row by row, left to right: segment ids ascend along a row
    for s in order.tolist():
        n = int(lengths[s])
        if n == 0:
            continue
        r, c = int(row[s]), int(offset[s])
        tokens = mask[s]
        segments_in_row[r] += 1
        out["input_ids"][r, c : c + n] = ids[s][tokens]
        out["token_type_ids"][r, c : c + n] = types[s][tokens]
        out["segment_ids"][r, c : c + n] = segments_in_row[r]
        out["positions"][r, c : c + n] = np.arange(n)
        out["sequence_index"][r, c : c + n] = s
    out["attention_mask"] = (out["segment_ids"] > 0).astype(np.int32)
    start = row * row_length + offset
    out["first_index"] = np.where(lengths > 0, start, 0).astype(np.int32).reshape(shape)
    out["last_index"] = np.where(lengths > 0, start + lengths - 1, 0).astype(np.int32).reshape(shape)
    out["lengths"] = lengths.astype(np.int32).reshape(shape)
    tiles = attention_tiles(out["segment_ids"], row_multiple)
    if tiles is not None:
        out["tile_pairs"] = tiles
    return out


def attention_tiles(segment_ids: np.ndarray, shards: int = 1, tile: int | None = None) -> np.ndarray | None:
    """The (query tile, key tile) pairs of packed rows that share a segment: ``[shards, P, 2]``.

    Rows are split into ``shards`` equal consecutive groups (the devices); tile indices count
    ``row * tiles_per_row + tile`` within a shard, pairs sorted by query tile, then key tile.
    ``P`` is the shard's whole square (``rows / shards * (length / tile) ** 2``, so the shape
    depends on the row count only); after the real pairs come padding pairs ``(last tile of the
    shard, -1)``, which the attention does not compute. None when the rows do not split into at
    least two tiles of ``tile`` (default :data:`ATTENTION_TILE`) tokens.
    """
    tile = tile or ATTENTION_TILE
    rows, length = segment_ids.shape
    if length % tile or length < 2 * tile or rows % shards:
        return None
    per_row = length // tile
    seg = segment_ids.reshape(rows, per_row, tile)
    used = seg > 0
    big = np.iinfo(np.int32).max
    # segment ids ascend along a row, so the segments a tile touches form a range [lo, hi]:
    # two tiles share a segment exactly when their ranges overlap
    lo = np.where(used, seg, big).min(axis=-1)
    hi = np.where(used, seg, 0).max(axis=-1)
    linked = (lo[:, :, None] <= hi[:, None, :]) & (lo[:, None, :] <= hi[:, :, None])
    linked = linked.reshape(shards, rows // shards, per_row, per_row)
    found = [np.nonzero(s) for s in linked]  # (row, query tile, key tile) in order
    square = (rows // shards) * per_row * per_row  # every pair of the shard
    out = np.empty((shards, square, 2), np.int32)
    out[:, :, 0] = (rows // shards) * per_row - 1
    out[:, :, 1] = -1
    for s, (r, i, j) in enumerate(found):
        out[s, : len(r), 0] = r * per_row + i
        out[s, : len(r), 1] = r * per_row + j
    return out


def packed_useful_share(packed: dict[str, np.ndarray]) -> float:
    """Fraction of the packed rows' token slots that hold real tokens (the rest is padding)."""
    return float(np.mean(packed["segment_ids"] > 0))


def packed_inputs(featurizer, prompts: Sequence[str], responses: Sequence[str], *, pad_to: int = 0,
                  row_multiple: int = 1) -> dict[str, np.ndarray]:
    """Featurizes (prompt, response) texts and packs them: pooling index arrays ``[N]``.

    ``pad_to`` adds empty sequences up to that many (padding rows of a fixed-size batch).
    The featurizer must have ``max_length`` (the packed row length).
    """
    n = len(prompts)
    feats = featurizer(list(prompts), list(responses))
    feats = _with_empty_rows(feats, max(pad_to, n) - n)
    return pack(feats, featurizer.max_length, row_multiple=row_multiple)


def packed_pair_inputs(featurizer, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
                       pad_to: int = 0, row_multiple: int = 1) -> dict[str, np.ndarray]:
    """Both sides of N comparisons, packed: pooling index arrays ``[N, 2]`` (0 = chosen).

    The packed counterpart of ``pluralrm.data.featurize.pair_inputs``; ``pad_to`` adds empty
    comparisons (weight-0 padding of eval batches).
    """
    n = len(prompts)
    feats = featurizer(list(prompts) * 2, list(chosen) + list(rejected))  # [chosen..., rejected...]
    order = np.stack([np.arange(n), np.arange(n) + n], axis=1).reshape(-1)  # c0, r0, c1, r1, ...
    feats = _with_empty_rows({k: np.asarray(v)[order] for k, v in feats.items()}, 2 * (max(pad_to, n) - n))
    return pack(feats, featurizer.max_length, shape=(max(pad_to, n), 2), row_multiple=row_multiple)


def _with_empty_rows(feats: dict[str, np.ndarray], extra: int) -> dict[str, np.ndarray]:
    if extra <= 0:
        return feats
    return {k: np.concatenate([v, np.zeros((extra,) + v.shape[1:], v.dtype)]) for k, v in feats.items()}
