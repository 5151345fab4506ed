"""Cohen's kappa (two raters, optionally weighted) and Fleiss' kappa (a fixed number of raters)."""
from __future__ import annotations

import numpy as np

from pluralrm.errors import ConfigError, DataError

KAPPA_WEIGHTS: tuple[str | None, ...] = (None, "linear", "quadratic")


def cohen_kappa(rater_a: np.ndarray, rater_b: np.ndarray, weights: str | None = None,
                labels: np.ndarray | None = None) -> float:
    """Cohen's kappa between two raters of the same N items (Cohen 1960; weighted: Cohen 1968).

        kappa = 1 − Σ_ij w_ij O_ij / Σ_ij w_ij E_ij

    with O the confusion matrix, E the outer product of its margins divided by N, and
    ``w_ij = [i ≠ j]`` (unweighted), ``|i − j|`` (linear) or ``(i − j)²`` (quadratic) over the
    *positions* of the labels in sorted order (as scikit-learn's ``cohen_kappa_score``).

    Args:
      rater_a, rater_b: ``[N]`` labels (numbers or strings).
      weights: None, ``"linear"`` or ``"quadratic"``.
      labels: the label set in order (default: the sorted union of both raters' labels).

    Returns:
      kappa (NaN when the expected disagreement is 0, e.g. both raters use one label).
    """
    if weights not in KAPPA_WEIGHTS:
        raise ConfigError(f"cohen_kappa: weights must be one of {KAPPA_WEIGHTS}, got {weights!r}")
    a, b = np.asarray(rater_a).reshape(-1), np.asarray(rater_b).reshape(-1)
    if a.shape != b.shape:
        raise DataError(f"cohen_kappa: raters differ in length ({a.shape[0]} vs {b.shape[0]})")
    labels = np.unique(np.concatenate([a, b])) if labels is None else np.asarray(labels)
    k = labels.shape[0]
    order = np.argsort(labels, kind="stable")
    ia = order[np.minimum(np.searchsorted(labels, a, sorter=order), k - 1)]
    ib = order[np.minimum(np.searchsorted(labels, b, sorter=order), k - 1)]
    if not (np.array_equal(labels[ia], a) and np.array_equal(labels[ib], b)):
        raise DataError("cohen_kappa: a rating is not in `labels`")
    observed = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(a.shape[0], 1)
    i, j = np.indices((k, k))
    w = {None: (i != j).astype(np.float64), "linear": np.abs(i - j) * 1.0, "quadratic": (i - j) ** 2 * 1.0}[weights]
    denominator = float((w * expected).sum())
    return float("nan") if denominator == 0 else 1.0 - float((w * observed).sum()) / denominator


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa for N subjects each rated by the same number n of raters (Fleiss 1971).

        P_i = (Σ_j n_ij² − n) / (n (n − 1)),  p_j = Σ_i n_ij / (N n),
        kappa = (mean_i P_i − Σ_j p_j²) / (1 − Σ_j p_j²)

    Args:
      table: ``[N, K]`` counts, n_ij = raters who put subject i in category j (e.g. from
        :func:`pluralrm.calibration.alpha.value_counts`).

    Returns:
      kappa (NaN when every rating falls in one category).

    Raises:
      DataError: rows with different totals, or fewer than two ratings per subject (use
        Krippendorff's alpha for missing ratings).
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0:
        raise DataError(f"fleiss_kappa: table must be [subjects, categories], got shape {table.shape}")
    totals = table.sum(1)
    n = totals[0]
    if not np.allclose(totals, n):
        bad = int(np.argmax(~np.isclose(totals, n)))
        raise DataError(f"fleiss_kappa needs the same number of ratings per subject: subject 1 has {n:g}, "
                        f"subject {bad + 1} has {totals[bad]:g}; use Krippendorff's alpha for missing ratings")
    if n < 2:
        raise DataError(f"fleiss_kappa needs at least two ratings per subject, got {n:g}")
    agreement = ((table**2).sum(1) - n) / (n * (n - 1))
    p = table.sum(0) / (table.shape[0] * n)
    chance = float((p**2).sum())
    return float("nan") if np.isclose(chance, 1.0) else (float(agreement.mean()) - chance) / (1.0 - chance)
