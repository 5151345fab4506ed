"""Group-level agreement: reliability matrix, cross-replication reliability, GAI."""
import datasets
import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from pluralrm.calibration.agreement import (
    agreement_matrix,
    cross_group_kappa,
    gai_permutation_test,
    group_association_index,
    group_value_counts,
    normalized_xrr,
    reliability_matrix,
    value_counts,
)
from pluralrm.calibration.alpha import krippendorff_alpha
from pluralrm.calibration.votes import group_votes


def test_reliability_matrix_from_dataset():
    data = datasets.Dataset.from_dict({
        "prompt": ["p"] * 5 + ["q"],
        "chosen": ["a", "b", "a", "a", "b", "x"],
        "rejected": ["b", "a", "b", "b", "a", "y"],
        "label": [1.0, 1.0, 1.0, 0.5, 1.0, 1.0],
        "annotator_id": ["u1", "u2", "u1", "u3", "", "u2"],
        "weight": [1.0] * 6,
        "country": ["NG"] * 6,
    })
    m = reliability_matrix(data)
    assert m.annotators == ("row 5", "u1", "u2", "u3")
    expected = np.array([[0.0, np.nan],       # row 5 chose "b" over "a"
                         [1.0, np.nan],       # u1 twice for "a": mean 1
                         [0.0, 1.0],
                         [0.5, np.nan]])      # a tie
    np.testing.assert_allclose(m.data, expected)
    # the matrix is in the layout Krippendorff's alpha takes (raters × units, NaN = no vote): our
    # alpha on it equals the reference package's, on a matrix with missing votes and a tie
    oracle = krippendorff.alpha(reliability_data=m.data, level_of_measurement="interval")
    assert np.isfinite(oracle)
    assert krippendorff_alpha(m.data, "interval") == pytest.approx(oracle, rel=1e-12)


def test_xrr_with_one_vote_per_group_is_cohen_kappa():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 60)
    b = np.where(rng.random(60) < 0.5, a, rng.integers(0, 4, 60))
    values = np.arange(4.0)
    ca, _ = value_counts(np.arange(60), a, values=values)
    cb, _ = value_counts(np.arange(60), b, values=values)
    assert cross_group_kappa(ca, cb, values, "nominal") == pytest.approx(cohen_kappa_score(a, b), rel=1e-12)
    assert cross_group_kappa(ca, cb, values, "interval") == pytest.approx(
        cohen_kappa_score(a, b, weights="quadratic"), rel=1e-12)


def test_xrr_matches_reference_formula_with_uneven_counts():
    # κ_x of Wong et al. (2021) computed pair by pair, as in the reference implementation
    rng = np.random.default_rng(1)
    units = 25
    xa = {u: rng.integers(0, 3, rng.integers(1, 5)) for u in range(units)}
    xb = {u: rng.integers(0, 3, rng.integers(0, 4)) for u in range(units)}
    shared = [u for u in range(units) if len(xb[u])]
    d = lambda i, j: float(i != j)  # noqa: E731
    observed = sum((len(xa[u]) + len(xb[u])) / (len(xa[u]) * len(xb[u])) *
                   sum(d(i, j) for i in xa[u] for j in xb[u]) for u in shared)
    observed /= sum(len(xa[u]) + len(xb[u]) for u in shared)
    all_a = np.concatenate([xa[u] for u in shared])
    all_b = np.concatenate([xb[u] for u in shared])
    expected = np.mean([d(i, j) for i in all_a for j in all_b])
    values = np.arange(3.0)
    ca, _ = value_counts(np.repeat(np.arange(units), [len(xa[u]) for u in range(units)]),
                         np.concatenate([xa[u] for u in range(units)]), units, values)
    cb, _ = value_counts(np.repeat(np.arange(units), [len(xb[u]) for u in range(units)]),
                         np.concatenate([xb[u] for u in range(units) if len(xb[u])]), units, values)
    assert cross_group_kappa(ca, cb, values, "nominal") == pytest.approx(1 - observed / expected, rel=1e-12)


def test_agreement_matrix_diagonal_is_within_group_alpha(society):
    votes = group_votes(society.dataset, "country")
    counts = group_value_counts(votes)
    matrix = agreement_matrix(counts.counts, counts.values, "interval")
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(matrix, matrix.T)
    for g in range(3):
        rows = votes.group == g
        raters = np.unique(votes.annotator[rows], return_inverse=True)[1]
        data = np.full((raters.max() + 1, votes.num_units), np.nan)
        data[raters, votes.unit[rows]] = votes.vote[rows]
        assert matrix[g, g] == pytest.approx(
            krippendorff.alpha(reliability_data=data, level_of_measurement="interval"), rel=1e-10)
    normalized = normalized_xrr(matrix)
    np.testing.assert_allclose(np.diag(normalized), 1.0)
    assert normalized[0, 1] == pytest.approx(matrix[0, 1] / np.sqrt(matrix[0, 0] * matrix[1, 1]))


def test_gai_detects_planted_group_structure(society_factory):
    planted = group_votes(society_factory(num_units=120, spread=1.5, seed=4).dataset, "country")
    none = group_votes(society_factory(num_units=120, spread=0.0, seed=4).dataset, "country")
    counts = group_value_counts(planted)
    gai = group_association_index(counts.counts, counts.values, "interval")
    assert (gai > 1.2).all()
    flat = group_value_counts(none)
    assert np.abs(group_association_index(flat.counts, flat.values, "interval") - 1).max() < 0.3
    tested = gai_permutation_test(planted, num_permutations=99, seed=0)
    np.testing.assert_allclose(tested.observed, gai)
    assert (tested.pvalue <= 0.05).all() and tested.pvalue.min() == 0.01   # floor (1 + 0) / (99 + 1), never 0
    null = gai_permutation_test(none, num_permutations=99, seed=0)
    assert (null.pvalue > 0.01).all() and null.null.shape == (99, 3)
