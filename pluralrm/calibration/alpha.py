"""Krippendorff's alpha at the nominal, ordinal, interval and ratio levels, with missing data.

    alpha = 1 − D_o / D_e,   D_o = Σ_ck o_ck δ²_ck / n,   D_e = Σ_ck n_c n_k δ²_ck / (n (n − 1))

where ``o`` is the coincidence matrix (every ordered pair of values within a unit, weighted by
1 / (m_u − 1) for a unit with m_u values; units with fewer than two values are not pairable),
``n_c`` its margins and ``n`` the number of pairable values (Krippendorff 2011, "Computing
Krippendorff's Alpha-Reliability", and Hayes & Krippendorff 2007). Which rater gave which value
does not enter alpha; only which values share a unit does.

Two paths compute the same number:

- :func:`alpha_from_votes` takes (unit, value) pairs, so memory grows with the number of votes,
  not raters × units. With few distinct values it counts values per unit densely; otherwise it
  builds ``o`` as a sparse product ``Nᵀ diag(w) N`` of the unit × value count matrix, and the
  expected disagreement uses closed forms (nominal, interval, ordinal) or a blocked sum (ratio). :func:`krippendorff_alpha` feeds it a ``[raters, units]``
  reliability matrix with NaN for missing values, like the ``krippendorff`` package's
  ``reliability_data``.
- :func:`alpha_from_counts` takes dense per-unit value counts ``[..., U, V]`` and is batched
  over leading axes (groups, bootstrap or permutation replicates).

Distances δ²: nominal ``[c ≠ k]``; interval ``(v_c − v_k)²``; ratio ``((v_c − v_k)/(v_c + v_k))²``;
ordinal ``(Σ_{g=c..k} n_g − (n_c + n_k)/2)²``, which equals ``(M_k − M_c)²`` with the mid-rank
``M_c = Σ_{g≤c} n_g − n_c / 2``, so ordinal alpha is interval alpha on mid-ranks.
Alpha is NaN when it is undefined: no pairable unit, or no variation among pairable values.
"""
from __future__ import annotations

import numpy as np

from pluralrm.errors import ConfigError, DataError

LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
DENSE_VALUES = 64            # distinct values up to which alpha_from_votes counts densely ...
DENSE_LIMIT = 20_000_000     # ... and units x values up to which it does


def check_level(level: str) -> str:
    """Returns ``level`` if it is one of :data:`LEVELS`, else raises ConfigError."""
    if level not in LEVELS:
        raise ConfigError(f"level of measurement must be one of {LEVELS}, got {level!r}")
    return level


def krippendorff_alpha(reliability_data: np.ndarray, level: str) -> float:
    """Krippendorff's alpha of a reliability matrix.

    Args:
      reliability_data: ``[R, U]`` values, rater r's value for unit u; NaN where missing.
      level: ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"`` (no default: the
        level changes the answer).

    Returns:
      alpha (NaN when undefined).
    """
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2:
        raise DataError(f"reliability_data must be [raters, units], got shape {data.shape}")
    if np.isinf(data).any():
        raise DataError("reliability_data holds an infinite value; use NaN for missing values")
    unit, rater = np.nonzero(~np.isnan(data.T))      # unit-major: unit ids come out sorted
    return alpha_from_votes(unit, data[rater, unit], level)


def alpha_from_votes(unit: np.ndarray, value: np.ndarray, level: str) -> float:
    """Krippendorff's alpha from (unit, value) pairs: the scalable path.

    Args:
      unit: ``[M]`` integer unit ids (any integers; need not be contiguous).
      value: ``[M]`` finite values.
      level: level of measurement, one of :data:`LEVELS`.

    Returns:
      alpha (NaN when undefined).
    """
    from scipy import sparse

    check_level(level)
    unit = np.asarray(unit).reshape(-1)
    value = np.asarray(value, dtype=np.float64).reshape(-1)
    if unit.shape != value.shape:
        raise DataError(f"unit and value differ in length ({unit.shape[0]} vs {value.shape[0]})")
    if not np.isfinite(value).all():
        raise DataError("alpha_from_votes: values must be finite (drop missing values first)")
    unit = _compact(unit)
    values = np.unique(value)
    code = np.searchsorted(values, value)
    num_units, num_values = (int(unit.max()) + 1 if unit.size else 0), values.shape[0]
    if num_values <= DENSE_VALUES and num_units * num_values <= DENSE_LIMIT:
        flat = np.bincount(unit * num_values + code, minlength=num_units * num_values)
        return float(alpha_from_counts(flat.reshape(num_units, num_values), values, level))
    m = np.bincount(unit, minlength=num_units).astype(np.float64)
    pairable = m >= 2
    w = np.where(pairable, 1.0 / np.where(pairable, m - 1, 1), 0.0)
    counts = sparse.csr_matrix((np.ones_like(value), (unit, code)), shape=(num_units, num_values))
    o = (counts.T @ sparse.diags(w) @ counts).tocoo()
    n_c = np.bincount(code[pairable[unit]], minlength=num_values).astype(np.float64)
    x = _coordinates(values, n_c, level)
    observed = float(np.sum(o.data * _delta2(x[o.row], x[o.col], level)))
    return float(_alpha(observed, _expected(n_c, x, level), n_c.sum()))


def _compact(unit: np.ndarray) -> np.ndarray:
    """Unit ids renumbered 0..U−1 (by a count table when ids are small non-negative integers)."""
    if unit.size and np.issubdtype(unit.dtype, np.integer) and unit.min() >= 0 and unit.max() < 4 * unit.size + 1024:
        present = np.bincount(unit) > 0
        return (np.cumsum(present) - 1)[unit]
    return np.unique(unit, return_inverse=True)[1].reshape(-1)


def alpha_from_counts(counts: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """Krippendorff's alpha from per-unit value counts, batched over leading axes.

    Args:
      counts: ``[..., U, V]`` number of times value ``values[v]`` was given to unit u (may be
        fractional: resampling weights).
      values: ``[V]`` the values, sorted ascending (ordinal order).
      level: level of measurement, one of :data:`LEVELS`.

    Returns:
      alpha ``[...]`` (NaN where undefined).
    """
    check_level(level)
    counts = np.asarray(counts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    m = counts.sum(-1)
    pairable = m >= 2 - 1e-9
    w = np.where(pairable, 1.0 / np.where(pairable, m - 1, 1), 0.0)
    n_c = np.einsum("...uv,...u->...v", counts, pairable.astype(np.float64))
    x = _coordinates(values, n_c, level)
    delta = _delta2(x[..., :, None], x[..., None, :], level)
    per_unit = np.einsum("...uc,...ck,...uk->...u", counts, delta, counts)
    observed = np.einsum("...u,...u->...", per_unit, w)
    return _alpha(observed, _expected(n_c, x, level), n_c.sum(-1))


def value_counts(unit: np.ndarray, value: np.ndarray, num_units: int | None = None,
                 values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense per-unit value counts.

    Args:
      unit: ``[M]`` unit ids in ``[0, U)``.
      value: ``[M]`` values.
      num_units: U (default ``max(unit) + 1``).
      values: the value domain, sorted (default: the distinct values seen).

    Returns:
      ``(counts [U, V] float64, values [V])``.
    """
    unit = np.asarray(unit, dtype=np.int64).reshape(-1)
    value = np.asarray(value, dtype=np.float64).reshape(-1)
    values = np.unique(value) if values is None else np.asarray(values, dtype=np.float64)
    code = np.searchsorted(values, value)
    if value.size and (code.max() >= values.size or not np.array_equal(values[code], value)):
        raise DataError("value_counts: a value is not in the given value domain")
    num_units = int(unit.max()) + 1 if num_units is None else num_units
    flat = np.bincount(unit * values.size + code, minlength=num_units * values.size)
    return flat.reshape(num_units, values.size).astype(np.float64), values


def distance_matrix(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    """δ² between every two values, ``[..., V, V]`` (``n_c [..., V]``: the pairable counts,
    used by the ordinal level only)."""
    x = _coordinates(np.asarray(values, dtype=np.float64), np.asarray(n_c, dtype=np.float64), level)
    return _delta2(x[..., :, None], x[..., None, :], level)


def _coordinates(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    """Per-value coordinates ``[..., V]`` in which δ² is computed: mid-ranks for ordinal."""
    if level == "ordinal":
        return np.cumsum(n_c, axis=-1) - n_c / 2.0
    return np.broadcast_to(values, n_c.shape)


def _delta2(a: np.ndarray, b: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return (a != b).astype(np.float64)
    if level == "ratio":
        total = a + b
        safe = np.where(total != 0, total, 1.0)
        return np.where(total != 0, ((a - b) / safe) ** 2, 0.0)
    return (a - b) ** 2


def _expected(n_c: np.ndarray, x: np.ndarray, level: str, block: int = 2048) -> np.ndarray:
    """Σ_ck n_c n_k δ²(x_c, x_k), batched over leading axes of ``n_c [..., V]``."""
    n = n_c.sum(-1)
    if level == "nominal":
        return n**2 - (n_c**2).sum(-1)
    if level in ("interval", "ordinal"):
        mean = np.einsum("...v,...v->...", n_c, x) / np.where(n > 0, n, 1)
        # Σ_ck n_c n_k (x_c − x_k)² = 2 n Σ_c n_c (x_c − x̄)², centred for accuracy
        return 2.0 * n * np.einsum("...v,...v->...", n_c, (x - mean[..., None]) ** 2)
    total = np.zeros(n.shape)
    for start in range(0, n_c.shape[-1], block):
        chunk = slice(start, start + block)
        d = _delta2(x[..., chunk, None], x[..., None, :], level)
        total = total + np.einsum("...c,...ck,...k->...", n_c[..., chunk], d, n_c)
    return total


def _alpha(observed: np.ndarray, expected: np.ndarray, n: np.ndarray) -> np.ndarray:
    """1 − (n − 1) · observed / expected, NaN where expected disagreement is 0."""
    observed, expected, n = np.asarray(observed), np.asarray(expected), np.asarray(n)
    defined = expected > 1e-12 * np.maximum(n, 1) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, 1.0 - (n - 1) * observed / np.where(defined, expected, 1.0), np.nan)
