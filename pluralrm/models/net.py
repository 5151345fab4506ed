"""The reward network: an NNX module of a backbone and a head, and how to build it.

``RewardNet`` maps tokenised inputs to features (``backbone.features``) and features to rewards,
quantiles or pair gaps (the head); ``build_net`` builds a freshly initialised one from a
``ModelConfig`` and a ``GroupSchema``; ``saved_state`` names the variables a saved model
stores. What turns texts into inputs and scores them is ``pluralrm.models.reward_model``; the
on-disk format (model.json, schema.json, weights) is ``pluralrm.models.model_files``. Kept
apart, as jax-ml/bonsai keeps ``modeling.py`` and ``params.py``, so the loaders import the net
without importing the scoring class that calls them.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from pluralrm.data.featurize import Featurizer
from pluralrm.data.packing import is_packed
from pluralrm.data.schema import GroupSchema
from pluralrm.models.backbones import build_backbone
from pluralrm.models.config import ModelConfig
from pluralrm.models.head_registry import build_head
from pluralrm.models.heads import GroupTable, Head, PairGap

Array = jax.Array


class RewardNet(nnx.Module):
    """The trainable network: ``backbone.features`` then ``head``."""

    def __init__(self, backbone: nnx.Module, head: Head):
        self.backbone = backbone
        self.head = head

    def features(self, inputs: dict[str, Array]) -> Array:
        """``{name: [B, L]}`` → ``[B, D]``."""
        return self.backbone.features(inputs)

    def pair_features(self, inputs: dict[str, Array]) -> tuple[Array, Array]:
        """``{name: [B, 2, L]}`` → chosen and rejected features ``[B, D]`` in one backbone pass.

        Packed inputs (``pluralrm.data.packing``: rows of several sequences, ``first_index
        [B, 2]``) give the same ``[B, D]`` pair straight from the packed rows.
        """
        if is_packed(inputs):
            f = self.features(inputs)  # [B, 2, D]
            return f[:, 0], f[:, 1]
        flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in inputs.items()}  # [2B, L]
        f = self.features(flat).reshape((-1, 2) + (self.backbone.dim,))
        return f[:, 0], f[:, 1]

    def rewards(self, inputs, group_ids, annotator_ids=None) -> Array:
        """``[B]`` rewards of single responses for the given groups."""
        return self.head(self.features(inputs), group_ids, annotator_ids)

    def all_group_rewards(self, inputs) -> Array:
        """``[B, G]`` rewards under every schema group (one backbone pass)."""
        return self.head.all_groups(self.features(inputs))

    def reward_quantiles(self, inputs, group_ids, alpha) -> Array:
        """``[B]`` lower α-quantiles of the reward distribution (distributional heads only)."""
        return self.head.quantile(self.features(inputs), group_ids, alpha)

    def all_group_reward_quantiles(self, inputs, alpha) -> Array:
        """``[B, G]`` lower α-quantiles under every schema group (one backbone pass)."""
        return self.head.all_groups_quantile(self.features(inputs), alpha)

    def all_group_reward_moments(self, inputs) -> tuple[Array, Array]:
        """Mean and standard deviation ``[B, G]`` of the reward under every schema group."""
        return self.head.all_groups_moments(self.features(inputs))

    def value_scores(self, inputs) -> Array:
        """``[B, K]`` value scores of single responses (values head only)."""
        return self.head.value_scores(self.features(inputs))

    def pair_gap(self, inputs, group_ids, annotator_ids=None) -> PairGap:
        f_c, f_r = self.pair_features(inputs)
        return self.head.pair_gap(f_c, f_r, group_ids, annotator_ids)

    def all_groups_pair_gap(self, inputs) -> PairGap:
        f_c, f_r = self.pair_features(inputs)
        return self.head.all_groups_pair_gap(f_c, f_r)

    def trainable(self, path: tuple, variable: Any) -> bool:
        """NNX filter: Params that train (the backbone may freeze some of its layers)."""
        if not isinstance(variable, nnx.Param):
            return False
        if path and path[0] == "backbone":
            return self.backbone.is_trainable(tuple(path[1:]))
        return True


def preference_probability(pair_gap: PairGap, temperature: Array | float = 1.0) -> Array:
    """P(chosen ≻ rejected) from a PairGap; gaps are divided by ``temperature`` first.

    Scalar heads: sigmoid(gap / T). Mixture: Σ_k π_k sigmoid(gap_k / T).
    """
    gap = pair_gap.gap / temperature
    if pair_gap.log_weights is None:
        return jax.nn.sigmoid(gap)
    return jnp.exp(jax.nn.logsumexp(pair_gap.log_weights + jax.nn.log_sigmoid(gap), axis=-1))


def build_net(
    config: ModelConfig, schema: GroupSchema, num_annotators: int, seed: int = 0
) -> tuple[RewardNet, Featurizer]:
    """Builds a freshly initialised RewardNet (pretrained backbones load their weights)."""
    rngs = nnx.Rngs(params=seed, dropout=seed + 1)
    backbone, featurizer = build_backbone(config.backbone, rngs)
    head = build_head(
        config.head, backbone.dim, schema.group_ids(), schema.sizes, num_annotators, rngs
    )
    return RewardNet(backbone, head), featurizer


def saved_state(net: RewardNet) -> nnx.State:
    """The variables a saved model stores (parameters and group tables), for save and restore."""
    return nnx.state(net, nnx.Any(nnx.Param, GroupTable))


__all__ = ["RewardNet", "build_net", "preference_probability", "saved_state"]
