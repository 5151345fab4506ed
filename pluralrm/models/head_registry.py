"""Every head type by name: ``build_head`` and the heads that predict a reward distribution.

Apart from ``heads.py`` so that the DPL heads (``distribution_heads.py``, built on ``heads.py``'s
base classes) are registered without an import cycle.
"""
from __future__ import annotations

import numpy as np
from flax import nnx

from pluralrm.models.config import HeadConfig
from pluralrm.models.distribution_heads import DISTRIBUTION_HEADS
from pluralrm.models.heads import HEADS, Head


def build_head(
    config: HeadConfig,
    in_dim: int,
    group_ids: np.ndarray,
    sizes: tuple[int, ...],
    num_annotators: int,
    rngs: nnx.Rngs,
) -> Head:
    """Builds the head named by ``config.type``.

    Args:
      config: the head configuration.
      in_dim: backbone feature width D.
      group_ids: ``[G, A]`` the schema's groups as ids (``GroupSchema.group_ids()``).
      sizes: per attribute, vocabulary size + 1 (``GroupSchema.sizes``).
      num_annotators: number of known annotators (ids 1..n; 0 = unknown).
    """
    return {**HEADS, **DISTRIBUTION_HEADS}[config.type](in_dim, config, group_ids, sizes, num_annotators, rngs)


def distribution_head_types() -> tuple[str, ...]:
    """Head types that predict a reward distribution (and so support risk-sensitive scoring)."""
    return ("distributional", *DISTRIBUTION_HEADS)
