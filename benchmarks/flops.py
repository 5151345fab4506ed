"""Model FLOPs counted from the architecture, the machine's measured peak, and MFU.

    python benchmarks/flops.py [--size 2048]     # prints the measured peak matmul FLOP/s

Counting convention (Kaplan et al. 2020; Chowdhery et al. 2022, appendix B, "model FLOPs"):
a matmul ``[m, k] @ [k, n]`` costs ``2 m k n``; only matmuls (and the embedding-bag sums of the
hashing backbone) are counted; a training step costs 3x its forward pass (backward = 2x
forward); elementwise work, softmax and LayerNorm are not counted. So MFU is the fraction of
the machine's *matmul* peak that went into the model's *useful* arithmetic.

The peak is measured, not looked up: a large float32 ``jnp.dot`` timed in a loop in the same
process as the benchmark (numpy's BLAS is timed too, for reference).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderShape:
    """The matmul-relevant shape of a BERT-style encoder (MiniLM-L6: 6 layers, 384, 1536)."""

    layers: int = 6
    hidden: int = 384
    intermediate: int = 1536

    @classmethod
    def from_hf_config(cls, raw: dict) -> "EncoderShape":
        return cls(raw["num_hidden_layers"], raw["hidden_size"], raw["intermediate_size"])


def encoder_layer_flops(length: int, hidden: int, intermediate: int) -> dict[str, int]:
    """Forward matmul FLOPs of one post-LN encoder layer on one sequence of ``length`` tokens.

    Returns a dict by part: ``qkv`` (3 projections), ``scores`` (Q K^T over all heads),
    ``values`` (probs @ V), ``output`` (attention output projection), ``mlp`` (up and down).
    """
    l, d, f = length, hidden, intermediate
    return {
        "qkv": 3 * 2 * l * d * d,
        "scores": 2 * l * l * d,
        "values": 2 * l * l * d,
        "output": 2 * l * d * d,
        "mlp": 2 * 2 * l * d * f,
    }


def encoder_forward_flops(shape: EncoderShape, sequences: int, length: int) -> int:
    """Forward matmul FLOPs of the encoder over ``sequences`` sequences padded to ``length``."""
    per_layer = sum(encoder_layer_flops(length, shape.hidden, shape.intermediate).values())
    return sequences * shape.layers * per_layer


def tiled_encoder_forward_flops(shape: EncoderShape, rows: int, length: int, tile_pairs: int, tile: int) -> int:
    """Forward matmul FLOPs of the encoder over packed rows whose attention runs only over
    ``tile_pairs`` (query tile, key tile) pairs of ``tile`` tokens (block-sparse, see
    ``pluralrm.data.packing.attention_tiles``): the dense parts at every row position, scores
    and values over those pairs (``pluralrm.models.transformer.tiled.computed_pairs``)."""
    parts = encoder_layer_flops(length, shape.hidden, shape.intermediate)
    dense = sum(v for k, v in parts.items() if k not in ("scores", "values"))
    attention = 2 * 2 * tile_pairs * tile * tile * shape.hidden
    return shape.layers * (rows * dense + attention)


def head_forward_flops(in_dim: int, hidden: int, groups: int = 1) -> int:
    """Forward FLOPs of a reward head per response: trunk ``[D, H]`` and a readout per group."""
    return 2 * in_dim * hidden + 2 * hidden * groups


def reward_model_train_flops(shape: EncoderShape, pairs: int, length: int, head_hidden: int) -> int:
    """Model FLOPs of one training step on ``pairs`` comparisons (2 sequences each): 3x forward."""
    forward = encoder_forward_flops(shape, 2 * pairs, length) + 2 * pairs * head_forward_flops(shape.hidden, head_hidden)
    return 3 * forward


def hashing_forward_flops(ngrams: int, embed_dim: int, hidden_dims: tuple[int, ...], head_hidden: int,
                          groups: int = 1) -> int:
    """Forward FLOPs of the hashing backbone + head per response: the embedding-bag sum over
    ``ngrams`` ids (``ngrams * embed_dim`` adds), the MLP and the head."""
    dims = (embed_dim, *hidden_dims)
    mlp = sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))
    return ngrams * embed_dim + mlp + head_forward_flops(dims[-1], head_hidden, groups)


def hashing_train_flops(pairs: int, ngrams: int, embed_dim: int, hidden_dims: tuple[int, ...], head_hidden: int) -> int:
    """Model FLOPs of one hashing training step on ``pairs`` comparisons: 3x forward."""
    return 3 * 2 * pairs * hashing_forward_flops(ngrams, embed_dim, hidden_dims, head_hidden)


def _best_rate(fn, flops: float, seconds: float) -> float:
    fn()  # warm-up (and compilation)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best


def peak_matmul_flops(size: int = 2048, seconds: float = 3.0) -> dict[str, float]:
    """Measured float32 matmul FLOP/s of this machine: best of a loop of ``[size, size]`` dots.

    Returns ``{"jax": ..., "numpy": ...}`` in FLOP/s (the JAX figure is the MFU denominator).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    flops = 2.0 * size**3
    out = {"jax": _best_rate(lambda: dot(a, b).block_until_ready(), flops, seconds)}
    na, nb = np.asarray(a), np.asarray(b)
    out["numpy"] = _best_rate(lambda: na @ nb, flops, seconds)
    return out


def mfu(flops_per_step: float, seconds_per_step: float, peak: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the measured peak."""
    return flops_per_step / seconds_per_step / peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    peak = peak_matmul_flops(args.size)
    print(f"peak float32 matmul ({args.size}^2): jax {peak['jax'] / 1e9:.1f} GFLOP/s, numpy {peak['numpy'] / 1e9:.1f} GFLOP/s")
    shape = EncoderShape()
    for length in (64, 128):
        print(f"MiniLM-L6 train step, 16 pairs, L={length}: {reward_model_train_flops(shape, 16, length, 384) / 1e9:.1f} GFLOP")


if __name__ == "__main__":
    main()
