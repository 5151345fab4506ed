"""Reward distributions from raw head outputs: moments and lower quantiles (risk-sensitive scores).

Distributional preference learning (DPL; Siththaranjan, Laidlaw & Hadfield-Menell, ICLR 2024,
code ``cassidylaidlaw/hidden-context``) predicts, per response, a *distribution* of reward over
the annotators whose hidden context the data does not record. Scoring a response by a low
α-quantile of that distribution instead of its mean avoids responses that part of the population
finds very bad. These functions work on the raw outputs of any model, ours or another's:

- ``"mean_variance"``: outputs ``[..., 2]`` = (μ, s), reward ~ N(μ, softplus(s)²)
  (DPL's ``MeanAndVarianceRewardTrainer``).
- ``"categorical"``: outputs ``[..., n]`` logits over n atoms evenly spaced on [0, 1]
  (``linspace(0, 1, n)``; DPL's ``CategoricalRewardTrainer``).
- ``"normal"``: outputs ``[..., 2]`` = (μ, σ) with σ >= 0 given directly (pluralrm's
  ``distributional`` head: its mean and within-group spread).

All functions are jnp (usable inside ``jax.jit``) and accept numpy arrays; ``alpha`` is a
scalar in (0, 1).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

Array = jax.Array
KINDS = ("mean_variance", "categorical", "normal")


def atoms(n: int) -> Array:
    """``[n]`` the categorical atoms, evenly spaced on [0, 1] (DPL: ``torch.linspace(0, 1, n)``)."""
    return jnp.linspace(0.0, 1.0, n, dtype=jnp.float32)


def normal_quantile(mean: Array, std: Array, alpha: float | Array) -> Array:
    """Lower α-quantile of N(mean, std²): mean + Φ⁻¹(α)·std (elementwise).

    Reference: DPL ``hidden_context/summarize_results.py``, ``get_reward_quantile`` for
    ``mean_and_variance`` (``norm.ppf(alpha)``).
    """
    return mean + ndtri(jnp.asarray(alpha, jnp.float32)) * std


def categorical_moments(logits: Array) -> tuple[Array, Array]:
    """Mean and standard deviation ``[...]`` of the categorical reward with logits ``[..., n]``.

    Reference: DPL ``summarize_results.py``, ``get_reward_mean_and_stdev`` (categorical).
    """
    p = jax.nn.softmax(logits, axis=-1)
    a = jnp.broadcast_to(atoms(logits.shape[-1]), p.shape)
    mean = jnp.sum(p * a, axis=-1)
    var = jnp.sum(p * (a - mean[..., None]) ** 2, axis=-1)
    return mean, jnp.sqrt(var)


def categorical_quantile(logits: Array, alpha: float | Array) -> Array:
    """DPL's lower α-quantile of a categorical reward, logits ``[..., n]`` → ``[...]``.

    The CDF is interpolated linearly inside the atom where it crosses α: atom i's mass is spread
    uniformly over [i/n, (i+1)/n], so with F_i = P(atom < i) and i the first atom whose
    cumulative mass reaches α, the quantile is (i + (α − F_i) / p_i) / n. This is exactly
    DPL's ``get_reward_quantile`` (``hidden_context/summarize_results.py``), including its
    scale: quantiles lie in [0, 1] but a point mass at atom i (whose *value* and mean are
    i/(n−1)) has quantiles in [i/n, (i+1)/n]. Compare quantiles with quantiles, not with means.
    The result is continuous in α (α on an atom boundary gives the same value from both sides).
    """
    p = jax.nn.softmax(logits, axis=-1)
    n = logits.shape[-1]
    alpha = jnp.asarray(alpha, p.dtype)
    cdf = jnp.cumsum(p, axis=-1)  # P(atom <= k)
    # the first atom whose cumulative mass reaches α (clipped: rounding can leave cdf[-1] < α)
    i = jnp.minimum(jnp.sum(cdf < alpha, axis=-1), n - 1)
    p_i = jnp.take_along_axis(p, i[..., None], axis=-1)[..., 0]
    below = jnp.take_along_axis(cdf, i[..., None], axis=-1)[..., 0] - p_i
    remainder = jnp.clip((alpha - below) / jnp.maximum(p_i, jnp.finfo(p.dtype).tiny), 0.0, 1.0)
    return (i.astype(p.dtype) + remainder) / n


def mean_variance_std(raw_spread: Array) -> Array:
    """Standard deviation softplus(s) from the raw spread output (DPL's ``F.softplus``)."""
    return jax.nn.softplus(raw_spread)


def reward_moments(outputs: Array, kind: str) -> tuple[Array, Array]:
    """Mean and standard deviation ``[...]`` of the reward distribution given raw outputs.

    Args:
      outputs: ``[..., 2]`` for ``mean_variance`` (μ, s) and ``normal`` (μ, σ); ``[..., n]``
        logits for ``categorical``.
      kind: one of ``KINDS`` (module docstring).
    """
    outputs = jnp.asarray(outputs, jnp.float32)
    if kind == "categorical":
        return categorical_moments(outputs)
    _check_pair(outputs, kind)
    if kind == "mean_variance":
        return outputs[..., 0], mean_variance_std(outputs[..., 1])
    return outputs[..., 0], outputs[..., 1]


def reward_quantile(outputs: Array, alpha: float | Array, kind: str) -> Array:
    """Risk-sensitive score: the lower α-quantile ``[...]`` of the reward distribution.

    ``mean_variance``: μ + Φ⁻¹(α)·softplus(s); ``normal``: μ + Φ⁻¹(α)·σ; ``categorical``:
    :func:`categorical_quantile`. See :func:`reward_moments` for the shapes.
    """
    check_alpha(alpha)
    outputs = jnp.asarray(outputs, jnp.float32)
    if kind == "categorical":
        return categorical_quantile(outputs, alpha)
    mean, std = reward_moments(outputs, kind)
    return normal_quantile(mean, std, alpha)


def check_alpha(alpha) -> None:
    """Raises ConfigError unless ``alpha`` is a number strictly between 0 and 1 (Python floats
    only; traced values are checked by the caller before tracing)."""
    from pluralrm.errors import ConfigError

    if isinstance(alpha, jax.core.Tracer):
        return
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"risk must be a number in (0, 1), got {alpha!r}") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(
            f"risk must be in (0, 1): it is the quantile α of the reward distribution used as the "
            f"score (e.g. 0.1 = the reward that 90% of the population exceeds), got {alpha!r}"
        )


def _check_pair(outputs: Array, kind: str) -> None:
    from pluralrm.errors import ConfigError

    if kind not in KINDS:
        raise ConfigError(f"unknown reward distribution kind {kind!r}; known: {list(KINDS)}")
    if outputs.shape[-1] != 2:
        raise ConfigError(f"{kind} outputs must have a last axis of 2 (mean, spread), got shape {outputs.shape}")


__all__ = [
    "KINDS",
    "atoms",
    "categorical_moments",
    "categorical_quantile",
    "check_alpha",
    "mean_variance_std",
    "normal_quantile",
    "reward_moments",
    "reward_quantile",
]
