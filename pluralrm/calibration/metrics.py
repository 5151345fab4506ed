"""Calibration of pairwise preference probabilities: accuracy, NLL, Brier, ECE and reliability
diagrams, and temperature scaling.

Inputs are ``probs [N]`` = the model's P(a ≻ b) and ``labels [N]`` = the observed P(a ≻ b)
(1 / 0 for a hard vote, 0.5 for a tie, anything in [0, 1] for a soft label) for the same
orientation. Pairwise probabilities are orientation-free (P(a ≻ b) = 1 − P(b ≻ a)) and with the
(chosen, rejected) ordering of a ComparisonDataset every hard label is 1, so a plain reliability
diagram of ``probs`` against ``labels`` would only ever see positives. Two orientation-free
views are offered (``mode``):

- ``"top_label"`` (default; Guo et al. 2017, "On Calibration of Modern Neural Networks"): the
  confidence is ``max(p, 1 − p)`` in [0.5, 1] and the outcome is the label's probability that
  the predicted side wins (``y`` if p > ½, ``1 − y`` if p < ½, ½ at p = ½);
- ``"symmetric"``: every pair counts once in each orientation, (p, y) and (1 − p, 1 − y); the
  diagram is point-symmetric about (½, ½).

Bins: ``"uniform"`` (equal width over [0.5, 1] or [0, 1]) or ``"quantile"`` (equal mass; the
adaptive ECE of Nixon et al. 2019). As scikit-learn's ``calibration_curve``, a value on an
inner edge belongs to the lower bin. ``ECE = Σ_b (n_b / n) |acc_b − conf_b|``. Accuracy, NLL and
Brier are invariant to orientation and need no mode. With soft labels they are expectations
over the label (accuracy: the probability that a vote drawn from the label agrees with the
predicted side).

Temperature scaling (Guo et al. 2017) divides the logit (the reward gap r_a − r_b) by T > 0 and
adds no bias term, which would break orientation-freeness: P_T(a ≻ b) = σ(z / T).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from pluralrm.errors import ConfigError, DataError

MODES: tuple[str, ...] = ("top_label", "symmetric")
STRATEGIES: tuple[str, ...] = ("uniform", "quantile")


def check_probabilities(probs: np.ndarray, labels: np.ndarray, name: str = "predictions") -> tuple[np.ndarray, np.ndarray]:
    """Validates ``probs [N]`` and ``labels [N]`` in [0, 1]; returns them as float64."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise DataError(f"{name} has {p.shape[0]} values but there are {y.shape[0]} labels", field=name)
    for values, what in ((p, name), (y, "label")):
        bad = ~((values >= 0.0) & (values <= 1.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{what} must be probabilities in [0, 1]", row=i + 1, field=what, value=float(values[i]))
    return p, y


def top_label(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence [N], correct [N])``: max(p, 1 − p) and the label's probability that the
    predicted side wins (½ at p = ½)."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    correct = np.where(p > 0.5, y, np.where(p < 0.5, 1.0 - y, 0.5))
    return np.maximum(p, 1.0 - p), correct


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean probability that the predicted side agrees with the label."""
    p, y = check_probabilities(probs, labels)
    return float(top_label(p, y)[1].mean())


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy −[y log p + (1 − y) log(1 − p)] (p clipped to [ε, 1 − ε],
    ε = float64 machine epsilon, as scikit-learn's ``log_loss``)."""
    p, y = check_probabilities(probs, labels)
    return float(_nll_terms(p, y).mean())


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error (p − y)² (Brier 1950)."""
    p, y = check_probabilities(probs, labels)
    return float(((p - y) ** 2).mean())


def _nll_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1.0 - eps)
    return -(special.xlogy(y, p) + special.xlogy(1.0 - y, 1.0 - p))


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Binned confidence against observed accuracy.

    Attributes:
      edges: ``[B + 1]`` bin edges.
      count: ``[B]`` predictions per bin.
      confidence: ``[B]`` mean confidence per bin (NaN if empty).
      accuracy: ``[B]`` mean outcome per bin (NaN if empty).
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """Σ_b (n_b / n) |acc_b − conf_b| over non-empty bins."""
        n = self.count.sum()
        full = self.count > 0
        return float((self.count[full] * np.abs(self.accuracy[full] - self.confidence[full])).sum() / n) if n else float("nan")


def oriented(probs: np.ndarray, labels: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, float]:
    """``(confidence, outcome, lowest confidence)`` of the orientation-free view ``mode``."""
    if mode not in MODES:
        raise ConfigError(f"calibration mode must be one of {MODES}, got {mode!r}")
    if mode == "top_label":
        confidence, correct = top_label(probs, labels)
        return confidence, correct, 0.5
    return np.concatenate([probs, 1.0 - probs]), np.concatenate([labels, 1.0 - labels]), 0.0


def bin_edges(confidence: np.ndarray, num_bins: int, strategy: str, low: float) -> np.ndarray:
    """``[B + 1]`` edges: equal width over [low, 1], or confidence quantiles."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"binning strategy must be one of {STRATEGIES}, got {strategy!r}")
    if num_bins < 1:
        raise ConfigError(f"num_bins must be at least 1, got {num_bins}")
    if strategy == "uniform" or confidence.size == 0:
        return np.linspace(low, 1.0, num_bins + 1)
    return np.percentile(confidence, np.linspace(0.0, 100.0, num_bins + 1))


def bin_index(confidence: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each confidence; a value on an inner edge goes to the lower bin."""
    return np.searchsorted(edges[1:-1], confidence, side="left")


def reliability_diagram(probs: np.ndarray, labels: np.ndarray, num_bins: int = 10, strategy: str = "uniform",
                        mode: str = "top_label") -> ReliabilityDiagram:
    """Reliability diagram of pairwise probabilities (module docstring).

    Args:
      probs: ``[N]`` P(a ≻ b).
      labels: ``[N]`` observed P(a ≻ b).
      num_bins: B.
      strategy: ``"uniform"`` or ``"quantile"``.
      mode: ``"top_label"`` or ``"symmetric"``.

    Returns:
      ReliabilityDiagram.
    """
    p, y = check_probabilities(probs, labels)
    confidence, outcome, low = oriented(p, y, mode)
    edges = bin_edges(confidence, num_bins, strategy, low)
    b = bin_index(confidence, edges)
    count = np.bincount(b, minlength=num_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(b, weights=confidence, minlength=num_bins) / count
        acc = np.bincount(b, weights=outcome, minlength=num_bins) / count
    return ReliabilityDiagram(edges, count, np.where(count > 0, conf, np.nan), np.where(count > 0, acc, np.nan))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, num_bins: int = 10,
                               strategy: str = "uniform", mode: str = "top_label") -> float:
    """ECE of :func:`reliability_diagram` (``strategy="quantile"``: adaptive ECE)."""
    return reliability_diagram(probs, labels, num_bins, strategy, mode).ece


# ------------------------------------------------------------------ sums for resampling
CALIBRATION_METRICS: tuple[str, ...] = ("accuracy", "nll", "brier", "ece")


def calibration_terms(probs: np.ndarray, labels: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-row terms whose sums give accuracy, NLL, Brier and top-label ECE on fixed bins.

    Returns:
      ``[N, 4 + B]``: 1, correct, NLL, squared error, and (correct − confidence) in the row's
      bin (B = ``len(edges) − 1``). ECE = Σ_b |Σ (correct − conf)_b| / n: only sums per bin
      are needed, so the bootstrap can resample clusters of rows and recompute every metric.
    """
    p, y = check_probabilities(probs, labels)
    confidence, correct = top_label(p, y)
    num_bins = edges.shape[0] - 1
    gap = np.zeros((p.shape[0], num_bins))
    gap[np.arange(p.shape[0]), bin_index(confidence, edges)] = correct - confidence
    return np.concatenate([np.stack([np.ones_like(p), correct, _nll_terms(p, y), (p - y) ** 2], 1), gap], 1)


def calibration_from_totals(totals: np.ndarray) -> np.ndarray:
    """``[..., 4 + B]`` summed :func:`calibration_terms` → ``[..., 4]`` accuracy, NLL, Brier, ECE."""
    n = totals[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        ece = np.abs(totals[..., 4:]).sum(-1) / n
        return np.stack([totals[..., 1] / n, totals[..., 2] / n, totals[..., 3] / n, ece], axis=-1)


# ------------------------------------------------------------------ temperature scaling
def apply_temperature(logits: np.ndarray, temperature: np.ndarray | float,
                      group: np.ndarray | None = None) -> np.ndarray:
    """P(a ≻ b) = σ(logit / T): ``logits [N]`` (reward gaps), one T or ``[G]`` with ``group [N]``.
    T = inf gives ½."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(temperature, dtype=np.float64)
    if group is not None:
        t = t[np.asarray(group, dtype=np.int64)]
    if np.any(t <= 0) or np.any(np.isnan(t)):
        raise ConfigError("temperatures must be positive (inf allowed)")
    return special.expit(z / t)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of σ(logit / T) on validation data (see
    :func:`fit_temperatures`)."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    return float(fit_temperatures(z, labels, np.zeros(z.shape[0], dtype=np.int64), 1)[0])


def fit_temperatures(logits: np.ndarray, labels: np.ndarray, group: np.ndarray, num_groups: int | None = None,
                     min_count: int = 1, max_iterations: int = 100) -> np.ndarray:
    """Per-group temperatures minimising the NLL of σ(logit / T_g), fitted on validation data.

    The NLL is convex in β = 1/T, so a safeguarded Newton iteration on β (all groups at once)
    finds the optimum. If no positive β improves on β → 0 (logits not positively related to the
    labels) T is inf (predict ½); if the data are separable, β grows until the NLL stops
    decreasing numerically or β reaches 10⁶ (T → 0).

    Args:
      logits: ``[N]`` reward gaps r(a) − r(b).
      labels: ``[N]`` P(a ≻ b) observed, in [0, 1].
      group: ``[N]`` group index in [0, G).
      num_groups: G (default ``max(group) + 1``).
      min_count: groups with fewer rows get the temperature fitted on all rows.
      max_iterations: Newton steps.

    Returns:
      ``[G]`` temperatures.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    g = np.asarray(group, dtype=np.int64).reshape(-1)
    if not (z.shape == y.shape == g.shape):
        raise DataError(f"fit_temperatures: logits, labels and group differ in length ({z.shape[0]}, "
                        f"{y.shape[0]}, {g.shape[0]})")
    if not np.isfinite(z).all():
        raise DataError("fit_temperatures: logits must be finite", field="logits")
    check_probabilities(np.full_like(y, 0.5), y)
    num_groups = int(g.max()) + 1 if num_groups is None else num_groups
    beta = _newton_beta(z, y, g, num_groups, max_iterations)
    pooled = _newton_beta(z, y, np.zeros_like(g), 1, max_iterations)[0]
    beta = np.where(np.bincount(g, minlength=num_groups) >= max(min_count, 1), beta, pooled)
    with np.errstate(divide="ignore"):
        return 1.0 / beta


def _newton_beta(z: np.ndarray, y: np.ndarray, g: np.ndarray, num_groups: int, max_iterations: int) -> np.ndarray:
    def nll(b: np.ndarray) -> np.ndarray:
        bz = b[g] * z
        return np.bincount(g, weights=np.logaddexp(0.0, bz) - y * bz, minlength=num_groups)

    def gradient(b: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=z * (special.expit(b[g] * z) - y), minlength=num_groups)

    beta = np.ones(num_groups)
    degenerate = gradient(np.zeros(num_groups)) >= 0.0        # optimum at β ≤ 0
    for _ in range(max_iterations):
        s = special.expit(beta[g] * z)
        grad = gradient(beta)
        hess = np.bincount(g, weights=z * z * s * (1.0 - s), minlength=num_groups)
        step = np.where(hess > 0, grad / np.where(hess > 0, hess, 1.0), -beta)   # flat: grow β
        current = nll(beta)
        candidate = np.clip(beta - step, beta / 10.0, np.minimum(beta * 10.0, 1e6))
        for _ in range(50):                                    # halve steps that do not descend
            worse = nll(candidate) > current + 1e-12 * np.abs(current)
            if not worse.any():
                break
            candidate = np.where(worse, (candidate + beta) / 2.0, candidate)
        done = np.abs(candidate - beta) <= 1e-10 * beta
        beta = candidate
        if done.all():
            break
    return np.where(degenerate, 0.0, beta)
