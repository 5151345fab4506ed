"""The choice model's math: Bradley–Terry/Davidson probabilities, their expectation over a
group's annotator noise, and the vectorised samplers the simulator draws with.

All functions are pure numpy; shapes are in the docstrings.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri

# Below this noise scale s, Gauss–Hermite on the smooth integrand converges fast; above it the
# logistic is steep relative to the Gaussian and the split rule below is the accurate one.
_GH_MAX_S = 2.0
_NODES = 64
_TAIL = 60.0  # the remainder is < e^-30 beyond |x| = 60 (e^-|x|/2 decay with ties)
_CHUNK = 1 << 16


def win_tie_probabilities(d: np.ndarray, tie_strength: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Davidson's model: P(first wins) and P(tie) for utility differences ``d``.

    ``P(a ≻ b) = e^{d/2} / (e^{d/2} + e^{-d/2} + ν)``, ``P(tie) = ν / (same)``; with ν = 0 this is
    Bradley–Terry, ``P(a ≻ b) = sigmoid(d)``.
    Reference: Davidson (1970), "On extending the Bradley–Terry model to accommodate ties".

    Args:
      d: ``[...]`` utility differences U(a) − U(b) in logits.
      tie_strength: ν >= 0.

    Returns:
      ``(p_win [...], p_tie [...])``; P(b ≻ a) = 1 − p_win − p_tie.
    """
    d = np.asarray(d, dtype=np.float64)
    a = np.exp(-0.5 * np.abs(d))  # in (0, 1]: no overflow for any d
    denom = 1.0 + a * a + tie_strength * a
    p_big = 1.0 / denom  # P(the better response wins)
    p_tie = tie_strength * a / denom
    p_win = np.where(d >= 0, p_big, 1.0 - p_big - p_tie)
    return p_win, p_tie


def expected_label(d: np.ndarray, tie_strength: float = 0.0) -> np.ndarray:
    """E[label] = P(a ≻ b) + ½·P(tie) for utility differences ``d`` (sigmoid(d) when ν = 0).

    It is odd-symmetric: ``expected_label(-d) = 1 - expected_label(d)``.
    """
    p_win, p_tie = win_tie_probabilities(d, tie_strength)
    return p_win + 0.5 * p_tie


@lru_cache(maxsize=4)
def _rules(tie_strength: float) -> tuple[np.ndarray, ...]:
    gh_x, gh_w = np.polynomial.hermite.hermgauss(_NODES)
    t, w = np.polynomial.legendre.leggauss(_NODES)
    u = 0.5 * (t + 1.0)
    x = _TAIL * u * u  # nodes cluster at 0, where the remainder varies fastest
    dx = _TAIL * u * w
    tail = expected_label(-x, tie_strength)  # = 1 − g(x) = g(−x) for x > 0
    return np.sqrt(2.0) * gh_x, gh_w / np.sqrt(np.pi), x, dx * tail


def expected_preference(mu: np.ndarray, s: np.ndarray, tie_strength: float = 0.0) -> np.ndarray:
    """E_Z[g(μ + s·Z)], Z ~ N(0, 1), g = :func:`expected_label` (the logistic-normal integral).

    A group's population preference: an annotator's utility difference is μ + s·Z where μ uses
    the group's mean value weights and s = within_noise · scale · ‖v_a − v_b‖ is the spread of
    w_a·(v_a − v_b) over the group's annotators. No closed form exists; two rules make it
    accurate to ~1e-10 for every s (checked against adaptive quadrature in the tests):

    - s < 2: 64-node Gauss–Hermite quadrature of g(μ + s√2·x).
    - s >= 2: g = H + r, with H the unit step and r = g − H, which decays like e^{-|x|}
      (e^{-|x|/2} with ties) and jumps at 0. E[H(μ + sZ)] = Φ(μ/s) exactly, and
      E[r] = ∫ r(x) N(x; μ, s²) dx by 64-node Gauss–Legendre on each half-line [0, 60]
      (nodes x = 60·u², dense near the jump), where N is smooth relative to r.
    (Gauss–Hermite alone loses accuracy as s grows: 1e-4 at s = 5, 1e-2 at s = 20, because
    g's poles at ±iπ approach the real line in the scaled variable.)

    Args:
      mu: ``[...]`` mean utility differences (logits).
      s: ``[...]`` (broadcastable with mu) noise scales >= 0.
      tie_strength: Davidson's ν (0 = Bradley–Terry).

    Returns:
      ``[...]`` float64 probabilities (expected labels with ties).
    """
    mu, s = np.broadcast_arrays(np.asarray(mu, np.float64), np.asarray(s, np.float64))
    out = np.empty(mu.shape, dtype=np.float64)
    flat_mu, flat_s, flat_out = mu.reshape(-1), s.reshape(-1), out.reshape(-1)
    gh_x, gh_w, x, tail_w = _rules(float(tie_strength))
    for start in range(0, flat_mu.size, _CHUNK):
        m = flat_mu[start : start + _CHUNK, None]
        sd = flat_s[start : start + _CHUNK, None]
        small = sd[:, 0] < _GH_MAX_S
        res = np.empty(m.shape[0])
        if small.any():
            res[small] = expected_label(m[small] + sd[small] * gh_x, tie_strength) @ gh_w
        big = ~small
        if big.any():
            mb, sb = m[big], sd[big]
            pdf_pos = np.exp(-0.5 * ((x - mb) / sb) ** 2)
            pdf_neg = np.exp(-0.5 * ((x + mb) / sb) ** 2)
            # r(x) = -g(-x) on x > 0 and r(-x) = g(-x): the remainder's two halves
            rem = ((pdf_neg - pdf_pos) @ tail_w) / (sb[:, 0] * np.sqrt(2.0 * np.pi))
            res[big] = ndtr(mb[:, 0] / sb[:, 0]) + rem
        flat_out[start : start + _CHUNK] = res
    return np.clip(out, 0.0, 1.0)


def sample_without_replacement(rng: np.random.Generator, population: int, k: int, n: int) -> np.ndarray:
    """n independent uniform draws of k distinct integers from ``range(population)``.

    Draw j takes a uniform index among the population − j values not yet taken and shifts it
    past the taken ones in ascending order, so all O(n·k²) work is vectorised.

    Returns:
      ``[n, k]`` int64, each row distinct values, in draw order.
    """
    out = np.empty((n, k), dtype=np.int64)
    taken = np.empty((n, 0), dtype=np.int64)
    for j in range(k):
        r = rng.integers(0, population - j, size=n)
        for col in range(taken.shape[1]):  # ascending: each shift can only move r upwards
            r += r >= taken[:, col]
        out[:, j] = r
        taken = np.sort(np.concatenate([taken, r[:, None]], axis=1), axis=1)
    return out


def candidate_profiles(
    rng: np.random.Generator, n: int, num_values: int, levels: tuple[int, ...], correlation: float
) -> np.ndarray:
    """Value profiles of n candidate pairs, with uniform marginals over ``levels``.

    Each dimension of the pair is a bivariate normal (x_a, x_b) with correlation ``correlation``
    (0 = independent; negative = the second candidate leans against the first, as in Community
    Alignment's negatively correlated sampling), discretised by the normal quantiles into
    equally likely levels: level index = floor(Φ(x) · len(levels)).

    Returns:
      ``[n, 2, K]`` int8 profiles.
    """
    x_a = rng.standard_normal((n, num_values))
    x_b = correlation * x_a + np.sqrt(1.0 - correlation**2) * rng.standard_normal((n, num_values))
    table = np.asarray(levels, dtype=np.int8)
    cuts = ndtri(np.arange(1, len(levels)) / len(levels))
    return np.stack([table[np.searchsorted(cuts, x_a)], table[np.searchsorted(cuts, x_b)]], axis=1)


def sample_outcomes(rng: np.random.Generator, d: np.ndarray, tie_strength: float = 0.0) -> np.ndarray:
    """Draws one outcome per utility difference. Returns ``[N]`` int8: 0 first wins, 1 second
    wins, 2 tie."""
    p_win, p_tie = win_tie_probabilities(d, tie_strength)
    u = rng.random(np.shape(d))
    return np.where(u < p_win, 0, np.where(u < p_win + p_tie, 2, 1)).astype(np.int8)
