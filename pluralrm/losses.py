"""Pairwise preference losses: functions of reward gaps and labels.

Every loss takes ``gap: [B]`` = r(chosen) − r(rejected) (or per-prototype gaps for the mixture
likelihood) and ``label: [B]`` = P(chosen ≻ rejected) in [0, 1] (1.0 hard preference, 0.5 tie,
anything else a soft probability such as an empirical preference rate) and returns per-example
negative log-likelihoods ``[B]``; ``weighted_mean`` reduces them with per-example weights.
All are written with ``log_sigmoid``/``logsumexp`` so that |gap| = 1e4 gives finite values and
finite gradients.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array


def bradley_terry(gap: Array, label: Array, margin: float | Array = 0.0) -> Array:
    """Bradley–Terry negative log-likelihood with soft labels and an optional margin.

    P(chosen ≻ rejected) = sigmoid(gap − margin); a soft label y gives the cross-entropy
    −[y log P + (1 − y) log(1 − P)] (a tie, y = 0.5, pulls the gap toward the margin).

    Reference: Bradley & Terry (1952), "Rank analysis of incomplete block designs"; margin as
    in Touvron et al. (2023), Llama 2, eq. 2.

    Args:
      gap: ``[B]`` reward gaps.
      label: ``[B]`` P(chosen ≻ rejected) targets.
      margin: scalar or ``[B]`` margin subtracted from the gap.

    Returns:
      ``[B]`` per-example losses.
    """
    z = gap - margin
    return -(label * jax.nn.log_sigmoid(z) + (1.0 - label) * jax.nn.log_sigmoid(-z))


def davidson(gap: Array, label: Array, log_nu: float | Array = 0.0) -> Array:
    """Davidson's tie model: win/tie/loss with tie propensity ν = exp(log_nu).

    With r = gap: P(win) = e^{r/2} / Z, P(loss) = e^{−r/2} / Z, P(tie) = ν / Z,
    Z = e^{r/2} + e^{−r/2} + ν. Label 0.5 is a tie; other labels are mixtures of win and loss
    (y log P(win) + (1 − y) log P(loss)).

    Reference: Davidson (1970), "On extending the Bradley-Terry model to accommodate ties in
    paired comparison experiments", JASA 65(329).

    Args:
      gap: ``[B]`` reward gaps.
      label: ``[B]`` targets in [0, 1]; exactly 0.5 means tie.
      log_nu: log tie propensity (a learnable scalar or a constant).

    Returns:
      ``[B]`` per-example losses.
    """
    half = 0.5 * gap
    log_nu = jnp.broadcast_to(jnp.asarray(log_nu, gap.dtype), gap.shape)
    log_z = jax.nn.logsumexp(jnp.stack([half, -half, log_nu]), axis=0)
    log_win, log_loss, log_tie = half - log_z, -half - log_z, log_nu - log_z
    decisive = -(label * log_win + (1.0 - label) * log_loss)
    return jnp.where(label == 0.5, -log_tie, decisive)


def rao_kupper(gap: Array, label: Array, log_theta: float | Array = math.log(1.5)) -> Array:
    """Rao–Kupper tie model with threshold θ = exp(log_theta) >= 1.

    P(win) = sigmoid(gap − log θ), P(loss) = sigmoid(−gap − log θ), P(tie) = the rest.

    Reference: Rao & Kupper (1967), "Ties in paired-comparison experiments: a generalization of
    the Bradley-Terry model", JASA 62(317).

    Args:
      gap: ``[B]`` reward gaps.
      label: ``[B]`` targets; exactly 0.5 means tie.
      log_theta: log threshold, > 0.

    Returns:
      ``[B]`` per-example losses.
    """
    t = jnp.asarray(log_theta, gap.dtype)
    log_win = jax.nn.log_sigmoid(gap - t)
    log_loss = jax.nn.log_sigmoid(-gap - t)
    # For Rao–Kupper, P(tie) = 1 − P(win) − P(loss) = (θ² − 1) P(win) P(loss) exactly.
    log_tie = jnp.log(jnp.expm1(2.0 * t)) + log_win + log_loss
    decisive = -(label * log_win + (1.0 - label) * log_loss)
    return jnp.where(label == 0.5, -log_tie, decisive)


def mixture_bradley_terry(gaps: Array, log_weights: Array, label: Array) -> Array:
    """Latent-class Bradley–Terry: the annotator follows prototype k with probability π_k.

    P(chosen ≻ rejected) = Σ_k π_k sigmoid(gap_k); the loss is the soft-label cross-entropy of
    that marginal probability. Minimising it by gradient descent reaches the same stationary
    points as EM on the latent class (the E-step responsibilities are its gradient weights).

    Reference: the ideal-point / latent-class preference models behind PAL (Chen et al. 2024,
    "PAL: Pluralistic alignment framework for learning from heterogeneous preferences").

    Args:
      gaps: ``[B, K]`` per-prototype reward gaps.
      log_weights: ``[B, K]`` log mixing weights (log-softmax normalised over K).
      label: ``[B]`` targets in [0, 1].

    Returns:
      ``[B]`` per-example losses.
    """
    log_p = jax.nn.logsumexp(log_weights + jax.nn.log_sigmoid(gaps), axis=-1)
    log_q = jax.nn.logsumexp(log_weights + jax.nn.log_sigmoid(-gaps), axis=-1)
    return -(label * log_p + (1.0 - label) * log_q)


def probit_scale(variance: Array) -> Array:
    """Scale s such that E[sigmoid(μ + σZ)] ≈ sigmoid(μ / s), s = sqrt(1 + π σ² / 8).

    Reference: MacKay (1992), "The evidence framework applied to classification networks".
    """
    return jnp.sqrt(1.0 + (math.pi / 8.0) * variance)


def weighted_mean(losses: Array, weight: Array | None = None) -> Array:
    """Weighted mean of per-example losses ``[B]``; weights need not sum to one.

    Zero total weight gives 0 (a batch of padding rows), never NaN.
    """
    if weight is None:
        return jnp.mean(losses)
    total = jnp.sum(weight)
    return jnp.sum(losses * weight) / jnp.maximum(total, jnp.finfo(losses.dtype).tiny)


LOSSES = ("bradley_terry", "davidson", "rao_kupper")


def pair_loss(
    gap: Array,
    label: Array,
    kind: str = "bradley_terry",
    margin: float = 0.0,
    tie_param: float | Array | None = None,
) -> Array:
    """Dispatches to the named scalar-gap loss. Returns ``[B]`` per-example losses."""
    if kind == "bradley_terry":
        return bradley_terry(gap, label, margin)
    if kind == "davidson":
        return davidson(gap - margin, label, 0.0 if tie_param is None else tie_param)
    if kind == "rao_kupper":
        return rao_kupper(gap - margin, label, math.log(1.5) if tie_param is None else tie_param)
    raise ValueError(f"unknown loss {kind!r}; known: {LOSSES}")
