"""Compiling model code once: jitted pure functions over a module's split NNX state, and the
padded batch sizes that keep the number of compiled shapes small.

Scoring, few-shot adaptation and embedding caches all run an NNX module's method many times on
batches of varying size. Each follows the NNX performance guide: split the module once
(``nnx.split``), jit a pure function of its state with plain ``jax.jit`` (no per-call graph
walk), and pad each batch's rows to a power of two so that N calls compile O(log N) shapes.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx


def padded_size(n: int, cap: int | None = None) -> int:
    """The power of two >= ``n`` (>= 1), at most ``cap`` when given: few distinct shapes to compile."""
    size = 1 << max(n - 1, 0).bit_length()
    return size if cap is None else min(size, cap)


def pad_rows(x: np.ndarray, size: int) -> np.ndarray:
    """``x`` with zero rows appended up to ``size`` rows (``x`` itself when it has them)."""
    if len(x) >= size:
        return x
    return np.concatenate([x, np.zeros((size - len(x),) + x.shape[1:], x.dtype)])


def pad_batch(inputs: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Every array of a featurised batch (``{name: [N, ...]}``) with zero rows appended up to
    ``size`` rows (:func:`pad_rows`), so batches of any N reuse the compiled shape of ``size``."""
    return {k: pad_rows(v, size) for k, v in inputs.items()}


def jit_over_state(module: nnx.Module, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit`` of ``(state, *args) -> fn(module rebuilt from state, *args)``.

    The module's graph definition is taken once, here; callers pass ``nnx.state(module)`` (or a
    state of the same structure) on each call, so updated parameters need no recompilation.
    """
    graphdef, _ = nnx.split(module)

    def run(state, *args):
        return fn(nnx.merge(graphdef, state), *args)

    return jax.jit(run)
