"""Pairwise preference losses: functions of reward gaps and labels.

Every loss takes ``gap: [B]`` = r(chosen) − r(rejected) (or per-prototype gaps for the mixture
likelihood) and ``label: [B]`` = P(chosen ≻ rejected) in [0, 1] (1.0 hard preference, 0.5 tie,
anything else a soft probability such as an empirical preference rate) and returns per-example
negative log-likelihoods ``[B]``; ``weighted_mean`` reduces them with per-example weights.
All are written with ``log_sigmoid``/``logsumexp`` so that |gap| = 1e4 gives finite values and
finite gradients.

DPL's distributional losses (Siththaranjan, Laidlaw & Hadfield-Menell 2024) take the two
responses' raw outputs instead of a gap: ``mean_variance`` (normal rewards) and ``categorical``
(atoms on [0, 1]); each has a ``*_pair_logit`` form (the logit of P(chosen ≻ rejected), which the
heads hand to the trainer as their gap) and a training-only batch term (``variance_penalty``,
``negative_entropy_of_mean``).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

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


def normal_pair_logit(
    mean_chosen: Array, std_chosen: Array, mean_rejected: Array, std_rejected: Array, link: str = "probit"
) -> Array:
    """Logit of P(chosen ≻ rejected) when each response's reward is an independent normal.

    With z = (μ_c − μ_r) / sqrt(σ_c² + σ_r²), ``link="probit"`` gives P = Φ(z) exactly (the
    difference of two normals), returned as the logit log Φ(z) − log Φ(−z) so that
    ``bradley_terry(logit, label)`` is the probit cross-entropy and every tool that reads a
    logit gap (probabilities, temperatures) applies unchanged. ``link="dpl_logistic"`` is the
    approximation DPL's code trains with, P = sigmoid(sqrt(2π)·z)
    (``MeanAndVarianceRewardTrainer.per_sample_loss``: ``softplus(-z * sqrt(2π))``).

    Reference: Siththaranjan, Laidlaw & Hadfield-Menell (2024), "Distributional preference
    learning", ICLR; code ``cassidylaidlaw/hidden-context``,
    ``hidden_context/train_llm_preference_model.py``.

    Args:
      mean_chosen, mean_rejected: ``[B]`` means μ.
      std_chosen, std_rejected: ``[B]`` standard deviations σ > 0.
      link: ``"probit"`` or ``"dpl_logistic"``.

    Returns:
      ``[B]`` logits of P(chosen ≻ rejected).
    """
    z = (mean_chosen - mean_rejected) / jnp.sqrt(std_chosen**2 + std_rejected**2)
    if link == "probit":
        return log_ndtr(z) - log_ndtr(-z)
    if link == "dpl_logistic":
        return math.sqrt(2.0 * math.pi) * z
    raise ValueError(f"unknown link {link!r}; known: ['probit', 'dpl_logistic']")


def mean_variance(
    mean_chosen: Array,
    spread_chosen: Array,
    mean_rejected: Array,
    spread_rejected: Array,
    label: Array,
    link: str = "probit",
) -> Array:
    """DPL's mean-and-variance negative log-likelihood with soft labels.

    Each response's reward is N(μ, softplus(s)²); P(chosen ≻ rejected) =
    Φ((μ_c − μ_r) / sqrt(σ_c² + σ_r²)) (see :func:`normal_pair_logit`); a soft label y gives
    −[y log P + (1 − y) log(1 − P)] (DPL uses hard labels, y = 1).

    Reference: DPL, ``hidden_context/train_llm_preference_model.py``,
    ``MeanAndVarianceRewardTrainer.per_sample_loss``.

    Args:
      mean_chosen, mean_rejected: ``[B]`` means μ.
      spread_chosen, spread_rejected: ``[B]`` raw spreads s (σ = softplus(s)).
      label: ``[B]`` P(chosen ≻ rejected) targets.
      link: ``"probit"`` (exact) or ``"dpl_logistic"`` (DPL's approximation).

    Returns:
      ``[B]`` per-example losses.
    """
    sd_c, sd_r = jax.nn.softplus(spread_chosen), jax.nn.softplus(spread_rejected)
    return bradley_terry(normal_pair_logit(mean_chosen, sd_c, mean_rejected, sd_r, link), label)


def variance_penalty(spread_chosen: Array, spread_rejected: Array, weight: Array | None = None) -> Array:
    """DPL's variance penalty: the (weighted) mean of σ_c² + σ_r², σ = softplus(s); a scalar.

    Added to the training loss times ``head.variance_penalty`` (DPL's default 0), it keeps the
    predicted spreads from growing where the data do not need them.

    Reference: DPL, ``MeanAndVarianceRewardTrainer.loss`` (``variance_loss``).
    """
    var = jax.nn.softplus(spread_chosen) ** 2 + jax.nn.softplus(spread_rejected) ** 2
    return weighted_mean(var, weight)


def comparison_matrix(n: int) -> Array:
    """``[n, n]`` C[i, j] = P(atom j beats atom i): 1 if j > i, 0.5 if j = i (a tie split), else 0.

    Reference: DPL, ``CategoricalRewardTrainer.per_sample_loss`` (``comparison_matrix``).
    """
    i = jnp.arange(n)
    return jnp.where(i[None, :] > i[:, None], 1.0, jnp.where(i[None, :] == i[:, None], 0.5, 0.0))


def categorical_pair_logit(logits_chosen: Array, logits_rejected: Array) -> Array:
    """Logit of P(chosen ≻ rejected) for categorical rewards over the same n atoms.

    P = Σ_ij p_r,i C[i, j] p_c,j (ties split evenly); 1 − P is computed the same way with the
    roles swapped (not by subtraction), so the logit log P − log(1 − P) stays accurate when P is
    near 0 or 1.

    Reference: DPL, ``CategoricalRewardTrainer.per_sample_loss``.

    Args:
      logits_chosen, logits_rejected: ``[B, n]``.

    Returns:
      ``[B]`` logits of P(chosen ≻ rejected).
    """
    c = comparison_matrix(logits_chosen.shape[-1]).astype(logits_chosen.dtype)
    p_c = jax.nn.softmax(logits_chosen, axis=-1)
    p_r = jax.nn.softmax(logits_rejected, axis=-1)
    tiny = jnp.finfo(p_c.dtype).tiny
    win = jnp.sum((p_r @ c) * p_c, axis=-1)
    loss = jnp.sum((p_c @ c) * p_r, axis=-1)
    return jnp.log(jnp.maximum(win, tiny)) - jnp.log(jnp.maximum(loss, tiny))


def categorical(logits_chosen: Array, logits_rejected: Array, label: Array) -> Array:
    """DPL's categorical negative log-likelihood with soft labels: ``[B]``.

    −[y log P + (1 − y) log(1 − P)] with P from :func:`categorical_pair_logit` (DPL: hard
    labels, −log P).

    Reference: DPL, ``CategoricalRewardTrainer.per_sample_loss``.
    """
    return bradley_terry(categorical_pair_logit(logits_chosen, logits_rejected), label)


def negative_entropy_of_mean(logits_chosen: Array, logits_rejected: Array, weight: Array | None = None) -> Array:
    """Σ_k m_k log m_k of the batch's mean atom distribution m (chosen and rejected together).

    DPL adds ``entropy_coeff`` (default 0.1) times this to the training loss: minimising it
    spreads the batch's rewards over the atoms instead of collapsing them onto a few. It is the
    entropy of the *mean* distribution, not the mean of per-response entropies, so single
    responses may still be confident. Weighted rows count by their weight.

    Reference: DPL, ``CategoricalRewardTrainer.loss`` (``entropy_loss``).
    """
    probs = jnp.concatenate([jax.nn.softmax(logits_chosen, axis=-1), jax.nn.softmax(logits_rejected, axis=-1)])
    if weight is None:
        m = jnp.mean(probs, axis=0)
    else:
        w = jnp.concatenate([weight, weight])
        m = jnp.sum(probs * w[:, None], axis=0) / jnp.maximum(jnp.sum(w), jnp.finfo(probs.dtype).tiny)
    return jnp.sum(jnp.where(m > 0, m * jnp.log(jnp.maximum(m, jnp.finfo(m.dtype).tiny)), 0.0))


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
