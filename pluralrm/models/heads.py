"""Group-conditioned reward heads.

Every head reads a reward out of backbone features ``[B, D]`` for a group given as attribute
ids ``group_ids: [B, A]`` (id 0 = unknown) and, for heads that model individuals, annotator
ids ``[B]`` (0 = unknown). The contract:

- ``head(features, group_ids, annotator_ids=None) -> rewards [B]``
- ``head.all_groups(features) -> rewards [B, G]`` for the schema's G groups, in one pass;
  column g equals ``head(features, groups[g] for every row)`` exactly (same ops, same dtype).
- ``head.pair_gap(f_chosen, f_rejected, group_ids, annotator_ids) -> PairGap`` what the
  pairwise loss consumes.
- ``head.regularization() -> scalar`` the head's penalty (shrinkage), added to the loss.

Unknown ids contribute nothing: an attribute with id 0 adds no offset/embedding, so a row whose
attributes are all unknown gets the shared (population) reward. The trainer masks attribute ids
to 0 at random (group dropout) so that the shared reward is trained to be the population's.

All heads share one structure: a trunk ``h = relu(W features + b)`` of width H, then a readout
linear in h with group-specific parameters. Readouts carry no bias terms: pairwise data identify
a group's rewards only up to an additive constant (it cancels in every comparison), so a bias
could never receive a gradient. Keeping the group-dependence in the readout is what
makes ``all_groups`` cost O(G·H) per row on top of one backbone and trunk pass, and what makes
its columns equal the per-row call exactly.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pluralrm.losses import probit_scale
from pluralrm.models.compiled import padded_size
from pluralrm.models.config import HeadConfig
from pluralrm.reward_distributions import normal_quantile

Array = jax.Array


class PairGap(NamedTuple):
    """What a pairwise loss needs. ``gap: [B]`` (or ``[B, K]`` per prototype, then
    ``log_weights: [B, K]`` are the log mixing weights of the latent-class likelihood)."""

    gap: Array
    log_weights: Array | None = None


class GroupTable(nnx.Variable):
    """The schema's groups as attribute ids ``[G, A]``: saved with the model, never trained."""


class AttributeTables(nnx.Module):
    """One zero-initialised embedding table per group attribute, summed over attributes.

    ``lookup(group_ids [..., A]) -> [..., width]``; id 0 (unknown) contributes zero.
    """

    def __init__(self, sizes: tuple[int, ...], width: int, rngs: nnx.Rngs):
        zeros = nnx.initializers.zeros_init()
        self.tables = nnx.List(
            [nnx.Embed(size, width, embedding_init=zeros, rngs=rngs) for size in sizes]
        )
        self.width = width

    def lookup(self, group_ids: Array) -> Array:
        out = jnp.zeros(group_ids.shape[:-1] + (self.width,), jnp.float32)
        for a, table in enumerate(self.tables):
            ids = group_ids[..., a]
            out = out + table(ids) * (ids > 0).astype(jnp.float32)[..., None]
        return out

    def squared_norm(self) -> Array:
        return sum((jnp.sum(t.embedding[...] ** 2) for t in self.tables), jnp.zeros(()))


class AnnotatorTable(nnx.Module):
    """Per-annotator offsets ``[num_annotators + 1, width]``; row 0 (unknown) contributes zero."""

    def __init__(self, num_annotators: int, width: int, rngs: nnx.Rngs):
        zeros = nnx.initializers.zeros_init()
        self.table = nnx.Embed(num_annotators + 1, width, embedding_init=zeros, rngs=rngs)

    def lookup(self, annotator_ids: Array) -> Array:
        return self.table(annotator_ids) * (annotator_ids > 0).astype(jnp.float32)[..., None]

    def squared_norm(self) -> Array:
        return jnp.sum(self.table.embedding[...] ** 2)


def tree_sum(x: Array) -> Array:
    """Sum over the last axis by pairwise halving: ``[..., H] -> [...]``.

    Unlike ``jnp.sum``, whose reduction order XLA may choose differently for different leading
    shapes, this is a fixed sequence of elementwise adds, so the result for one row does not
    depend on how many rows or groups are computed with it. That is what makes
    ``all_groups(...)[:, g]`` bitwise equal to the per-row call.
    """
    n = x.shape[-1]
    width = padded_size(n)
    if width != n:
        x = jnp.concatenate([x, jnp.zeros(x.shape[:-1] + (width - n,), x.dtype)], axis=-1)
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]


def softmax(logits: Array) -> Array:
    """Softmax over the last axis with a ``tree_sum`` normaliser (shape-independent rounding)."""
    z = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
    return z / tree_sum(z)[..., None]


def linear_readout(h: Array, v: Array) -> Array:
    """``Σ_j h_j v_j`` with broadcasting: h ``[B, 1, H]``, v ``[B|1, G, H]`` → ``[B, G]``
    (see ``tree_sum`` for why not ``jnp.sum``)."""
    shape = jnp.broadcast_shapes(h.shape, v.shape)
    return tree_sum(jnp.broadcast_to(h, shape) * jnp.broadcast_to(v, shape))


def _bcast(x: Array, like: Array) -> Array:
    return jnp.broadcast_to(x, like.shape)


class Head(nnx.Module):
    """Shared trunk and the group-readout protocol; subclasses define ``readout_params``."""

    def __init__(self, in_dim: int, config: HeadConfig, group_ids: np.ndarray, rngs: nnx.Rngs):
        self.config = config
        self.trunk = nnx.Linear(in_dim, config.hidden_dim, rngs=rngs)
        group_ids = np.asarray(group_ids, np.int32).reshape(len(group_ids), -1)
        self.num_attributes = group_ids.shape[1]
        # stored with at least one column: checkpoints cannot hold zero-size arrays
        padded = np.zeros((group_ids.shape[0], max(self.num_attributes, 1)), np.int32)
        padded[:, : self.num_attributes] = group_ids
        self.groups = GroupTable(jnp.asarray(padded))

    # -- subclass hooks
    def readout_params(self, group_ids: Array, annotator_ids: Array | None) -> Array:
        """Group-specific readout weights: ``group_ids [..., A]`` → v ``[..., H]``."""
        raise NotImplementedError

    def regularization(self) -> Array:
        return jnp.zeros(())

    def group_table(self) -> Array:
        """``[G, A]`` the schema's groups as attribute ids."""
        return self.groups[...][:, : self.num_attributes]

    # -- the contract
    def hidden(self, features: Array) -> Array:
        """``[B, H]`` trunk activations. ReLU, not GELU: its result is exact whatever XLA fuses
        it with, while GELU's tanh approximation can round differently in the per-row and the
        all-groups programs (seen on XLA CPU), which would break their bitwise equality."""
        return jax.nn.relu(self.trunk(features))

    def __call__(self, features: Array, group_ids: Array, annotator_ids: Array | None = None) -> Array:
        h = self.hidden(features)
        v = self.readout_params(group_ids, annotator_ids)  # [B, H]
        return linear_readout(h[:, None, :], v[:, None, :])[:, 0]

    def all_groups(self, features: Array) -> Array:
        h = self.hidden(features)
        v = self.readout_params(self.group_table(), None)  # [G, H]
        return linear_readout(h[:, None, :], v[None])  # [B, G]

    def pair_gap(
        self, f_chosen: Array, f_rejected: Array, group_ids: Array, annotator_ids: Array | None = None
    ) -> PairGap:
        return PairGap(
            self(f_chosen, group_ids, annotator_ids) - self(f_rejected, group_ids, annotator_ids)
        )

    def all_groups_pair_gap(self, f_chosen: Array, f_rejected: Array) -> PairGap:
        """The pairwise quantity under every group: gap ``[B, G]`` (mixture: ``[B, G, K]``)."""
        return PairGap(self.all_groups(f_chosen) - self.all_groups(f_rejected))


class PooledHead(Head):
    """One reward for everyone: r = w·h (ignores groups)."""

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        super().__init__(in_dim, config, group_ids, rngs)
        self.w = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (config.hidden_dim, 1))[:, 0])

    def readout_params(self, group_ids, annotator_ids):
        return jnp.broadcast_to(self.w[...], group_ids.shape[:-1] + self.w.shape)


class ConditionedHead(PooledHead):
    """FiLM of the trunk by additive attribute embeddings: r_g = w·(h ⊙ (1 + γ_g)).

    γ_g is a sum of one embedding per attribute value, so an unseen *combination* of known
    values (a language never seen with that country) still gets a reward built from what each
    value taught. FiLM's shift β_g would only add w·β_g, a per-group constant that cancels in
    every comparison, so it is left out. Equivalently r_g = v_g·h with v_g = w ⊙ (1 + γ_g).

    Reference: Perez et al. (2018), "FiLM: Visual reasoning with a general conditioning layer".
    """

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        super().__init__(in_dim, config, group_ids, sizes, num_annotators, rngs)
        self.gamma = AttributeTables(sizes, config.hidden_dim, rngs)

    def readout_params(self, group_ids, annotator_ids):
        gamma = self.gamma.lookup(group_ids)
        return _bcast(self.w[...], gamma) * (1.0 + gamma)

    def regularization(self):
        return self.config.shrinkage * self.gamma.squared_norm()


class PerGroupHead(PooledHead):
    """Hierarchical random effects: global → group value → annotator.

    r = (w + Σ_a δ_a[g_a] + δ_annotator)·h, with L2 penalties ``shrinkage`` on group offsets and
    ``annotator_shrinkage`` on annotator offsets (Gaussian priors centred on the shared head):
    a small group's offsets stay near the shared head, a large group's data outweighs the
    penalty. Annotator offsets (``use_annotators``) apply when the annotator is known
    (training, few-shot); ``all_groups`` uses group offsets only.
    """

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        super().__init__(in_dim, config, group_ids, sizes, num_annotators, rngs)
        self.offsets = AttributeTables(sizes, config.hidden_dim, rngs)
        self.annotators = (
            AnnotatorTable(num_annotators, config.hidden_dim, rngs)
            if config.use_annotators and num_annotators > 0
            else None
        )

    def readout_params(self, group_ids, annotator_ids):
        off = self.offsets.lookup(group_ids)  # [..., H]
        if self.annotators is not None and annotator_ids is not None:
            off = off + self.annotators.lookup(annotator_ids)
        return _bcast(self.w[...], off) + off

    def regularization(self):
        reg = self.config.shrinkage * self.offsets.squared_norm()
        if self.annotators is not None:
            reg = reg + self.config.annotator_shrinkage * self.annotators.squared_norm()
        return reg


class MixtureHead(Head):
    """K latent reward prototypes r_k = w_k·h, mixed per annotator and group.

    Mixing weights π = softmax(a_0 + Σ_a A_a[g_a] + L[annotator]), and a judge's reward is the
    convex combination r = Σ_k π_k r_k (PAL-B's mixture of prototype reward functions, Chen et
    al. 2024). ``mixture_likelihood`` picks the training likelihood:

    - ``"reward"`` (default): Bradley–Terry on the mixed reward, P = sigmoid(Σ_k π_k Δr_k);
      every comparison moves its annotator's weights, which identifies them well.
    - ``"latent_class"``: each comparison is judged by one prototype drawn from π,
      P = Σ_k π_k sigmoid(Δr_k) (``losses.mixture_bradley_terry``; EM's likelihood).

    Without group labels the annotator logits L carry everything (ideal-point models);
    ``pluralrm.models.adapt.adapt_annotator`` fits L for a new annotator from a few comparisons
    with everything else frozen, and ``annotator_responsibilities`` gives the EM-style posterior
    over prototypes from an annotator's own comparisons.
    """

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        super().__init__(in_dim, config, group_ids, rngs)
        k, hdim = config.num_prototypes, config.hidden_dim
        self.w = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (k, hdim)))  # [K, H]
        self.logits = nnx.Param(jnp.zeros((k,)))
        self.group_logits = AttributeTables(sizes, k, rngs)
        self.annotators = AnnotatorTable(num_annotators, k, rngs) if num_annotators > 0 else None

    def prototype_rewards(self, features: Array) -> Array:
        """``[B, K]``: every prototype's reward."""
        h = self.hidden(features)
        return linear_readout(h[:, None, :], self.w[...][None])

    def mixing_logits(self, group_ids: Array, annotator_ids: Array | None) -> Array:
        """``[..., K]`` unnormalised log mixing weights."""
        logits = self.group_logits.lookup(group_ids)
        logits = logits + _bcast(self.logits[...], logits)
        if self.annotators is not None and annotator_ids is not None:
            logits = logits + self.annotators.lookup(annotator_ids)
        return logits

    def __call__(self, features, group_ids, annotator_ids=None):
        r = self.prototype_rewards(features)  # [B, K]
        pi = softmax(self.mixing_logits(group_ids, annotator_ids))  # [B, K]
        return linear_readout(r[:, None, :], pi[:, None, :])[:, 0]

    def all_groups(self, features):
        r = self.prototype_rewards(features)
        pi = softmax(self.mixing_logits(self.group_table(), None))  # [G, K]
        return linear_readout(r[:, None, :], pi[None])  # [B, G]

    def pair_gap(self, f_chosen, f_rejected, group_ids, annotator_ids=None):
        if self.config.mixture_likelihood == "reward":
            return super().pair_gap(f_chosen, f_rejected, group_ids, annotator_ids)
        gaps = self.prototype_rewards(f_chosen) - self.prototype_rewards(f_rejected)
        log_w = jax.nn.log_softmax(self.mixing_logits(group_ids, annotator_ids), axis=-1)
        return PairGap(gaps, log_w)

    def all_groups_pair_gap(self, f_chosen, f_rejected):
        if self.config.mixture_likelihood == "reward":
            return super().all_groups_pair_gap(f_chosen, f_rejected)
        gaps = self.prototype_rewards(f_chosen) - self.prototype_rewards(f_rejected)  # [B, K]
        log_w = jax.nn.log_softmax(self.mixing_logits(self.group_table(), None), axis=-1)  # [G, K]
        shape = (gaps.shape[0], log_w.shape[0], gaps.shape[1])
        return PairGap(
            jnp.broadcast_to(gaps[:, None, :], shape), jnp.broadcast_to(log_w[None], shape)
        )

    def regularization(self):
        reg = self.config.shrinkage * self.group_logits.squared_norm()
        if self.annotators is not None:
            reg = reg + self.config.annotator_shrinkage * self.annotators.squared_norm()
        return reg


class DistributionalHead(ConditionedHead):
    """A mean and a within-group spread of reward per (response, group).

    Each member of group g values response y at u = (v_g + ε)·h(y) with
    ε ~ N(0, diag(exp(2ρ_g))), ρ_g = ρ_0 + Σ_a R_a[g_a]: the mean is the conditioned head's
    reward and the spread is sqrt(Σ_j exp(2ρ_gj) h_j²). Members disagree more about a
    comparison when the responses differ along high-variance directions:
    P(chosen ≻ rejected | g) = E[sigmoid(Δu)] ≈ sigmoid(Δμ / sqrt(1 + π Var(Δu) / 8)),
    with Var(Δu) = Σ_j exp(2ρ_gj) Δh_j² (random-coefficient / Thurstone-style utility).
    """

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        super().__init__(in_dim, config, group_ids, sizes, num_annotators, rngs)
        self.log_scale = nnx.Param(jnp.full((config.hidden_dim,), np.log(0.1), jnp.float32))
        self.log_scale_offsets = AttributeTables(sizes, config.hidden_dim, rngs)

    def variances(self, group_ids: Array) -> Array:
        """``[..., H]`` per-direction variances exp(2ρ_g)."""
        off = self.log_scale_offsets.lookup(group_ids)
        return jnp.exp(2.0 * (_bcast(self.log_scale[...], off) + off))

    def spread(self, features: Array, group_ids: Array) -> Array:
        """``[B]`` within-group standard deviation of the reward of each response."""
        h = self.hidden(features)
        return jnp.sqrt(tree_sum(self.variances(group_ids) * h**2))

    def pair_spread(self, f_chosen: Array, f_rejected: Array, group_ids: Array) -> Array:
        """``[B]`` within-group standard deviation of the reward gap."""
        dh = self.hidden(f_chosen) - self.hidden(f_rejected)
        return jnp.sqrt(tree_sum(self.variances(group_ids) * dh**2))

    def pair_gap(self, f_chosen, f_rejected, group_ids, annotator_ids=None):
        mean_gap = self(f_chosen, group_ids) - self(f_rejected, group_ids)
        sd = self.pair_spread(f_chosen, f_rejected, group_ids)
        return PairGap(mean_gap / probit_scale(sd**2))

    def all_groups_pair_gap(self, f_chosen, f_rejected):
        mean_gap = self.all_groups(f_chosen) - self.all_groups(f_rejected)  # [B, G]
        dh = self.hidden(f_chosen) - self.hidden(f_rejected)  # [B, H]
        var = self.variances(self.group_table())  # [G, H]
        shape = (dh.shape[0], var.shape[0], dh.shape[1])
        pair_var = tree_sum(jnp.broadcast_to(var[None], shape) * jnp.broadcast_to(dh[:, None, :] ** 2, shape))
        return PairGap(mean_gap / probit_scale(pair_var))

    def all_groups_spread(self, features: Array) -> Array:
        """``[B, G]`` within-group standard deviation of each response's reward, every group."""
        h = self.hidden(features)  # [B, H]
        var = self.variances(self.group_table())  # [G, H]
        shape = (h.shape[0], var.shape[0], h.shape[1])
        return jnp.sqrt(tree_sum(jnp.broadcast_to(var[None], shape) * jnp.broadcast_to(h[:, None, :] ** 2, shape)))

    # Risk-sensitive scores: the within-group reward u is normal with this mean and spread
    # (a random-coefficient utility, linear in ε), so its α-quantile is μ + Φ⁻¹(α)·spread.
    def quantile(self, features: Array, group_ids: Array, alpha: Array) -> Array:
        """``[B]`` lower α-quantile of each row's within-group reward distribution."""
        return normal_quantile(self(features, group_ids), self.spread(features, group_ids), alpha)

    def all_groups_quantile(self, features: Array, alpha: Array) -> Array:
        """``[B, G]`` lower α-quantiles under every schema group."""
        return normal_quantile(self.all_groups(features), self.all_groups_spread(features), alpha)

    def all_groups_moments(self, features: Array) -> tuple[Array, Array]:
        """Mean and standard deviation ``[B, G]`` of the within-group reward, every group."""
        return self.all_groups(features), self.all_groups_spread(features)

    def regularization(self):
        return super().regularization() + self.config.shrinkage * self.log_scale_offsets.squared_norm()


class ValuesHead(Head):
    """Value-decomposed reward: K value scores per response, weighted per group.

    Value scores v(x, y) = U h + u_0 ∈ R^K (one linear score per value dimension on the shared
    trunk) and per-group value weights w_g = w_0 + Σ_a Ω_a[g_a] (one embedding per attribute
    value, as in the conditioned head; Ω is shrunk toward the shared w_0 by ``shrinkage``, and
    a group whose attributes are all unknown gets w_0). The reward is

        r_g(x, y) = w_g · (v(x, y) − u_0) = w_g · U h,

    so a reward gap decomposes exactly into per-value contributions,
    r_g(a) − r_g(b) = Σ_k w_g,k (v_k(a) − v_k(b)) (``pluralrm.explain``). The label intercept
    u_0 is left out of the reward: it would only add the per-group constant w_g·u_0, which
    cancels in every comparison (the heads' no-bias rule); u_0 is trained by value labels only.

    Identifiability. Trained on comparisons alone, the value scores are identified only up to
    an invertible linear map A ∈ R^{K×K}: r_g = (A⁻ᵀ w_g)·(A U h) fits the data equally well, so
    "value k" of such a model is a learned direction, not the k-th named value, and its weights
    can be compared with planted or surveyed ones only after aligning the scores (fit A by least
    squares from learned to true scores, then transform the weights by A⁻ᵀ; see
    ``experiments/values_study.py``). Per-response value labels (``chosen_values`` /
    ``rejected_values``, trained by an auxiliary squared error weighted by
    ``loss.value_loss_weight``) pin A to the identity and u_0 to the labels' intercept; then
    value k means the labelled value k and the weights are read directly.
    """

    def __init__(self, in_dim, config, group_ids, sizes, num_annotators, rngs):
        super().__init__(in_dim, config, group_ids, rngs)
        k = config.num_values or len(config.value_names)
        if k < 1:
            from pluralrm.errors import ConfigError

            raise ConfigError("the values head needs head.num_values >= 1 or head.value_names")
        if config.value_names and len(config.value_names) != k:
            from pluralrm.errors import ConfigError

            raise ConfigError(
                f"head.num_values={k} but head.value_names has {len(config.value_names)} names"
            )
        self.num_values = k
        self.u = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (k, config.hidden_dim)))
        self.u0 = nnx.Param(jnp.zeros((k,)))
        self.w0 = nnx.Param(jnp.full((k,), 1.0 / np.sqrt(k), jnp.float32))
        self.offsets = AttributeTables(sizes, k, rngs)

    def value_names(self) -> tuple[str, ...]:
        """The K value names: ``head.value_names`` from the config, else ``value_0..value_{K-1}``."""
        return self.config.value_names or tuple(f"value_{k}" for k in range(self.num_values))

    def centred_scores(self, features: Array) -> Array:
        """``[B, K]`` U h: the value scores without the label intercept (what rewards read)."""
        h = self.hidden(features)
        return linear_readout(h[:, None, :], self.u[...][None])

    def value_scores(self, features: Array) -> Array:
        """``[B, K]`` value scores v(x, y) = U h + u_0 (on the value labels' scale when trained
        with labels)."""
        s = self.centred_scores(features)
        return s + jnp.broadcast_to(self.u0[...], s.shape)

    def value_weights(self, group_ids: Array) -> Array:
        """Per-group value weights ``group_ids [..., A]`` → ``[..., K]`` (id 0 adds nothing)."""
        off = self.offsets.lookup(group_ids)
        return _bcast(self.w0[...], off) + off

    def __call__(self, features, group_ids, annotator_ids=None):
        s = self.centred_scores(features)  # [B, K]
        w = self.value_weights(group_ids)  # [B, K]
        return linear_readout(s[:, None, :], w[:, None, :])[:, 0]

    def all_groups(self, features):
        s = self.centred_scores(features)
        w = self.value_weights(self.group_table())  # [G, K]
        return linear_readout(s[:, None, :], w[None])

    def regularization(self):
        return self.config.shrinkage * self.offsets.squared_norm()


HEADS = {
    "pooled": PooledHead,
    "conditioned": ConditionedHead,
    "per_group": PerGroupHead,
    "mixture": MixtureHead,
    "distributional": DistributionalHead,
    "values": ValuesHead,
}
