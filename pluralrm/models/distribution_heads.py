"""DPL-compatible heads: a distribution of reward per (response, group).

Distributional preference learning (Siththaranjan, Laidlaw & Hadfield-Menell, ICLR 2024; code
``cassidylaidlaw/hidden-context``, ``hidden_context/train_llm_preference_model.py``) trains a
reward model whose output for a response is a distribution over the rewards that annotators
with different hidden context would give it. Two parametrisations, as in DPL:

- ``mean_variance`` (DPL ``MeanAndVarianceRewardTrainer``): outputs (μ, s), reward
  ~ N(μ, softplus(s)²); P(a ≻ b) = Φ((μ_a − μ_b) / sqrt(σ_a² + σ_b²)); optional variance
  penalty ``head.variance_penalty`` (DPL default 0).
- ``categorical`` (DPL ``CategoricalRewardTrainer``): logits over ``head.num_atoms`` atoms
  evenly spaced on [0, 1] (default 10); P(a ≻ b) from the atom comparison matrix with ties
  split; an entropy bonus ``head.entropy_coeff`` (default 0.1) on the batch's mean distribution.

Here every output is group-conditioned like the other heads: the raw outputs are read out of
the shared trunk h with FiLM-modulated weights, o_k,g = (w_k ⊙ (1 + γ_g))·h + b_k + β_g,k,
γ_g = Σ_a Γ_a[g_a], β_g = Σ_a B_a[g_a] (id 0 adds nothing, so unknown groups get the shared
distribution). A bias is kept only where it is identified by the data: the categorical logits
(the atoms have an absolute scale) and the mean-variance spread; the mean carries none (it
cancels in every comparison, the heads' no-bias rule).

The heads return the distribution's mean from ``__call__``/``all_groups`` (so every mean-based
tool works unchanged) and the *logit* of P(chosen ≻ rejected) as ``pair_gap`` (so the trainer's
Bradley–Terry cross-entropy on it is exactly DPL's likelihood, and probabilities, temperatures
and calibration apply as for any head). ``quantile``/``all_groups_quantile`` give risk-sensitive
scores, ``all_groups_moments`` the (mean, std) used by the r² diagnostic.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from pluralrm import losses
from pluralrm import reward_distributions as rd
from pluralrm.models.heads import AttributeTables, Head, PairGap, linear_readout

Array = jax.Array


class DistributionHead(Head):
    """Shared machinery: K raw outputs per (response, group); subclasses fix K and the kind."""

    kind: str = ""

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs, num_outputs: int, num_biased: int):
        super().__init__(in_dim, config, group_ids, rngs)
        hdim = config.hidden_dim
        self.num_outputs, self.num_biased = num_outputs, num_biased
        self.w = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (num_outputs, hdim)))  # [K, H]
        self.gamma = AttributeTables(sizes, hdim, rngs)
        self.bias = nnx.Param(jnp.zeros((num_biased,)))  # the last num_biased outputs' biases
        self.bias_offsets = AttributeTables(sizes, num_biased, rngs)

    def _readout(self, group_ids: Array) -> tuple[Array, Array]:
        """``group_ids [..., A]`` → weights ``[..., K, H]`` and biases ``[..., K]``."""
        gamma = self.gamma.lookup(group_ids)[..., None, :]  # [..., 1, H]
        w = self.w[...]
        v = jnp.broadcast_to(w, gamma.shape[:-2] + w.shape) * (1.0 + gamma)
        b = self.bias_offsets.lookup(group_ids)
        b = b + jnp.broadcast_to(self.bias[...], b.shape)
        pad = jnp.zeros(b.shape[:-1] + (self.num_outputs - self.num_biased,), b.dtype)
        return v, jnp.concatenate([pad, b], axis=-1)

    def outputs(self, features: Array, group_ids: Array, annotator_ids: Array | None = None) -> Array:
        """``[B, K]`` raw outputs for each row's group (see ``pluralrm.reward_distributions``)."""
        h = self.hidden(features)
        v, b = self._readout(group_ids)  # [B, K, H], [B, K]
        return linear_readout(h[:, None, :], v) + b

    def all_groups_outputs(self, features: Array) -> Array:
        """``[B, G, K]`` raw outputs under every schema group (one trunk pass)."""
        h = self.hidden(features)
        v, b = self._readout(self.group_table())  # [G, K, H], [G, K]
        return linear_readout(h[:, None, None, :], v[None]) + b[None]

    # -- the head contract: means, pair logits
    def __call__(self, features, group_ids, annotator_ids=None):
        return rd.reward_moments(self.outputs(features, group_ids), self.kind)[0]

    def all_groups(self, features):
        return rd.reward_moments(self.all_groups_outputs(features), self.kind)[0]

    def pair_logit(self, o_chosen: Array, o_rejected: Array) -> Array:
        raise NotImplementedError

    def pair_gap(self, f_chosen, f_rejected, group_ids, annotator_ids=None):
        return PairGap(self.pair_logit(self.outputs(f_chosen, group_ids), self.outputs(f_rejected, group_ids)))

    def all_groups_pair_gap(self, f_chosen, f_rejected):
        oc, orj = self.all_groups_outputs(f_chosen), self.all_groups_outputs(f_rejected)  # [B, G, K]
        b, g, k = oc.shape
        return PairGap(self.pair_logit(oc.reshape(b * g, k), orj.reshape(b * g, k)).reshape(b, g))

    # -- distributions
    def quantile(self, features: Array, group_ids: Array, alpha: Array) -> Array:
        """``[B]`` lower α-quantile of each row's reward distribution (risk-sensitive score)."""
        return rd.reward_quantile(self.outputs(features, group_ids), alpha, self.kind)

    def all_groups_quantile(self, features: Array, alpha: Array) -> Array:
        """``[B, G]`` lower α-quantiles under every schema group."""
        return rd.reward_quantile(self.all_groups_outputs(features), alpha, self.kind)

    def all_groups_moments(self, features: Array) -> tuple[Array, Array]:
        """Mean and standard deviation ``[B, G]`` of the reward under every schema group."""
        return rd.reward_moments(self.all_groups_outputs(features), self.kind)

    def regularization(self):
        return self.config.shrinkage * (self.gamma.squared_norm() + self.bias_offsets.squared_norm())


class MeanVarianceHead(DistributionHead):
    """DPL's mean-and-variance head, group-conditioned: outputs (μ, s), σ = softplus(s).

    Trains on P(a ≻ b) = Φ((μ_a − μ_b) / sqrt(σ_a² + σ_b²)) (``losses.mean_variance``) plus
    ``head.variance_penalty`` · mean(σ_a² + σ_b²) (``losses.variance_penalty``; DPL
    ``MeanAndVarianceRewardTrainer.loss``).
    """

    kind = "mean_variance"

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        super().__init__(in_dim, config, group_ids, sizes, num_annotators, rngs, num_outputs=2, num_biased=1)

    def pair_logit(self, o_chosen, o_rejected):
        sd_c, sd_r = rd.mean_variance_std(o_chosen[..., 1]), rd.mean_variance_std(o_rejected[..., 1])
        return losses.normal_pair_logit(o_chosen[..., 0], sd_c, o_rejected[..., 0], sd_r)

    def batch_penalty(self, f_chosen, f_rejected, group_ids, annotator_ids, weight):
        """The training-only penalty added to the batch loss (a scalar)."""
        if self.config.variance_penalty == 0:
            return jnp.zeros(())
        oc, orj = self.outputs(f_chosen, group_ids), self.outputs(f_rejected, group_ids)
        return self.config.variance_penalty * losses.variance_penalty(oc[..., 1], orj[..., 1], weight)


class CategoricalHead(DistributionHead):
    """DPL's categorical head, group-conditioned: logits over ``head.num_atoms`` atoms on [0, 1].

    Trains on P(a ≻ b) = Σ_ij p_b,i C[i, j] p_a,j with ties split (``losses.categorical``) plus
    ``head.entropy_coeff`` · Σ m log m of the batch's mean distribution
    (``losses.negative_entropy_of_mean``; DPL ``CategoricalRewardTrainer.loss``).
    """

    kind = "categorical"

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        n = config.num_atoms
        super().__init__(in_dim, config, group_ids, sizes, num_annotators, rngs, num_outputs=n, num_biased=n)

    def pair_logit(self, o_chosen, o_rejected):
        return losses.categorical_pair_logit(o_chosen, o_rejected)

    def batch_penalty(self, f_chosen, f_rejected, group_ids, annotator_ids, weight):
        """The training-only entropy bonus added to the batch loss (a scalar)."""
        if self.config.entropy_coeff == 0:
            return jnp.zeros(())
        oc, orj = self.outputs(f_chosen, group_ids), self.outputs(f_rejected, group_ids)
        return self.config.entropy_coeff * losses.negative_entropy_of_mean(oc, orj, weight)


DISTRIBUTION_HEADS = {"mean_variance": MeanVarianceHead, "categorical": CategoricalHead}

__all__ = ["CategoricalHead", "DISTRIBUTION_HEADS", "DistributionHead", "MeanVarianceHead"]
