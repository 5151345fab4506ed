"""value_refit: the Newton refit of a values head's group weights equals a general-purpose
optimiser's minimum of the same objective, written out independently."""
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_expit

from pluralrm.models import value_refit

K, SIZES, DROPOUT, SHRINK = 3, (4, 3), 0.2, 0.05


def problem_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(0, SIZES[0], n), rng.integers(0, SIZES[1], n)], axis=1).astype(np.int32)
    delta = rng.normal(size=(n, K))
    true_w = 1.0 + rng.normal(size=(SIZES[0], K))[ids[:, 0]] * 0.5
    label = (rng.random(n) < 1 / (1 + np.exp(-np.sum(true_w * delta, axis=1)))).astype(np.float64)
    weight = rng.uniform(0.5, 1.5, n)
    counts = rng.poisson(1.0, size=(2, n)).astype(np.float64)
    counts[0] = 1.0
    return ids, delta, label, weight, counts


def oracle_objective(flat, ids, delta, label, weight, counts):
    """The refit objective with every dropout mask and every table row spelled out."""
    w0 = flat[:K]
    tables = [flat[K:K + SIZES[0] * K].reshape(SIZES[0], K), flat[K + SIZES[0] * K:].reshape(SIZES[1], K)]
    total = 0.0
    for keep0 in (1, 0):
        for keep1 in (1, 0):
            prob = (DROPOUT if not keep0 else 1 - DROPOUT) * (DROPOUT if not keep1 else 1 - DROPOUT)
            w = w0 + keep0 * (ids[:, :1] > 0) * tables[0][ids[:, 0]] + keep1 * (ids[:, 1:] > 0) * tables[1][ids[:, 1]]
            gap = np.sum(w * delta, axis=1)
            nll = -(label * log_expit(gap) + (1 - label) * log_expit(-gap))
            total += prob * np.sum(counts * weight * nll)
    used = [np.unique(ids[:, a][ids[:, a] > 0]) for a in range(2)]
    penalty = sum(np.sum(tables[a][used[a]] ** 2) for a in range(2))
    return total / np.sum(counts * weight) + SHRINK * penalty


def test_newton_refit_matches_a_general_optimiser():
    ids, delta, label, weight, counts = problem_data()
    problem = value_refit.weight_problem(delta, ids, label, weight, DROPOUT)
    assert len(problem.blocks) == (SIZES[0] - 1) + (SIZES[1] - 1)
    start = np.zeros((len(problem.blocks) + 1, K))
    theta, gnorm = value_refit.newton_refit(problem, start, counts, SHRINK)
    assert np.all(gnorm < 1e-8), gnorm
    groups = np.array([[0, 0], [1, 2], [3, 1], [2, 0]], np.int32)
    fitted = value_refit.group_weights(problem, theta, groups)  # [2, G, K]
    for b in range(2):
        size = K * (1 + sum(SIZES))
        best = minimize(oracle_objective, np.zeros(size), args=(ids, delta, label, weight, counts[b]),
                        method="BFGS", options={"gtol": 1e-10, "maxiter": 2000})
        w0 = best.x[:K]
        t0 = best.x[K:K + SIZES[0] * K].reshape(SIZES[0], K)
        t1 = best.x[K + SIZES[0] * K:].reshape(SIZES[1], K)
        expected = np.stack([w0 + (g0 > 0) * t0[g0] + (g1 > 0) * t1[g1] for g0, g1 in groups])
        np.testing.assert_allclose(fitted[b], expected, atol=2e-5)
        assert oracle_objective(best.x, ids, delta, label, weight, counts[b]) == pytest.approx(
            oracle_objective(np.concatenate([theta[b, 0], _tables(problem, theta[b])]), ids, delta, label,
                             weight, counts[b]), abs=1e-9)
    assert not np.allclose(fitted[0], fitted[1])  # the resample's counts matter


def _tables(problem, theta):
    tables = [np.zeros((s, K)) for s in SIZES]
    for j, (a, i) in enumerate(problem.blocks):
        tables[a][i] = theta[j + 1]
    return np.concatenate([t.reshape(-1) for t in tables])


def test_refit_from_any_start_reaches_the_same_optimum():
    ids, delta, label, weight, counts = problem_data(seed=1)
    problem = value_refit.weight_problem(delta, ids, label, weight, DROPOUT)
    p = len(problem.blocks) + 1
    a, _ = value_refit.newton_refit(problem, np.zeros((p, K)), counts[:1], SHRINK)
    b, _ = value_refit.newton_refit(problem, np.random.default_rng(0).normal(size=(p, K)) * 3, counts[:1], SHRINK)
    np.testing.assert_allclose(a, b, atol=1e-7)


def test_annotator_resampling_keeps_clusters_and_strata():
    annotators = ["a", "a", "b", "c", "c", "c", "", ""]
    strata = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    counts = value_refit.annotator_resample_counts(annotators, strata, 200, np.random.default_rng(0))
    assert counts.shape == (200, 8)
    np.testing.assert_array_equal(counts[:, 0], counts[:, 1])  # an annotator's rows travel together
    np.testing.assert_array_equal(counts[:, 3], counts[:, 5])
    # stratum 0 has clusters a, b and row 7; stratum 1 has c and row 6: sizes are kept
    np.testing.assert_array_equal(counts[:, 0] + counts[:, 2] + counts[:, 7], 3)
    np.testing.assert_array_equal(counts[:, 3] + counts[:, 6], 2)
    assert counts[:, 0].std() > 0 and counts[:, 6].std() > 0
