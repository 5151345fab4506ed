"""Krippendorff's alpha against the `krippendorff` package (GPL; a test oracle only, always
called with the level named: it defaults to interval)."""
import krippendorff
import numpy as np
import pytest

from pluralrm.calibration.alpha import LEVELS, alpha_from_counts, alpha_from_votes, krippendorff_alpha, value_counts
from pluralrm.errors import ConfigError, DataError

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 coders x 12 units example
# (the krippendorff package's doctest uses the same data).
HAND = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
])


def oracle(data, level):
    return krippendorff.alpha(reliability_data=data, level_of_measurement=level)


@pytest.mark.parametrize("level", LEVELS)
def test_hand_made_matrix_matches_oracle(level):
    assert krippendorff_alpha(HAND, level) == pytest.approx(oracle(HAND, level), rel=1e-12)


def test_published_values():
    # Krippendorff (2011) reports 0.743 (nominal) and 0.849 (interval) for this matrix
    assert krippendorff_alpha(HAND, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(HAND, "interval") == pytest.approx(0.849, abs=5e-4)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("seed", range(6))
def test_random_matrices_with_missing_values_match_oracle(level, seed):
    rng = np.random.default_rng(seed)
    raters, units = rng.integers(2, 9), rng.integers(5, 60)
    domain = [[0.0, 0.5, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0], [0.25, 1.0, 2.5, 7.0]][seed % 3]
    data = rng.choice(domain, size=(raters, units)).astype(float)
    # planted agreement so alpha is not ~0 everywhere
    data[:, : units // 2] = data[:1, : units // 2]
    data[rng.random(data.shape) < 0.35] = np.nan
    expected = oracle(data, level)
    assert krippendorff_alpha(data, level) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    rater, unit = np.nonzero(~np.isnan(data))
    counts, values = value_counts(unit, data[rater, unit], num_units=units)
    assert alpha_from_counts(counts, values, level) == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("level", LEVELS)
def test_continuous_values_take_the_sparse_path(level):
    rng = np.random.default_rng(3)
    truth = rng.gamma(2.0, 1.0, size=60)
    data = truth[None] + rng.normal(0, 0.3, size=(4, 60))
    data = np.abs(data)
    data[rng.random(data.shape) < 0.3] = np.nan
    assert krippendorff_alpha(data, level) == pytest.approx(oracle(data, level), rel=1e-9)


@pytest.mark.parametrize("level", LEVELS)
def test_dense_and_sparse_paths_agree(level, monkeypatch):
    from pluralrm.calibration import alpha as alpha_module

    dense = krippendorff_alpha(HAND, level)
    monkeypatch.setattr(alpha_module, "DENSE_LIMIT", 0)
    assert krippendorff_alpha(HAND, level) == pytest.approx(dense, rel=1e-12)


def test_batched_counts_equal_one_at_a_time():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 3, size=(4, 30, 3)).astype(float)
    values = np.array([0.0, 0.5, 1.0])
    batched = alpha_from_counts(counts, values, "ordinal")
    assert batched.shape == (4,)
    for b in range(4):
        assert batched[b] == pytest.approx(float(alpha_from_counts(counts[b], values, "ordinal")))


def test_rater_identity_does_not_matter():
    rng = np.random.default_rng(1)
    data = rng.choice([1.0, 2.0, 3.0], size=(4, 25))
    shuffled = np.stack([rng.permutation(col) for col in data.T], axis=1)
    assert krippendorff_alpha(shuffled, "nominal") == pytest.approx(krippendorff_alpha(data, "nominal"))


def test_undefined_alpha_is_nan():
    assert np.isnan(krippendorff_alpha(np.ones((3, 4)), "nominal"))          # no variation
    assert np.isnan(krippendorff_alpha(np.array([[1.0, np.nan], [np.nan, 2.0]]), "interval"))  # nothing pairable
    assert krippendorff_alpha(np.array([[1.0, 2.0], [1.0, 2.0]]), "interval") == pytest.approx(1.0)


def test_votes_path_accepts_any_unit_ids():
    unit = np.array([10, 10, 10, 7, 7, 99, 99, 99])
    value = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    data = np.full((3, 3), np.nan)
    data[:3, 0] = [1, 1, 0]
    data[:2, 1] = [0, 0]
    data[:3, 2] = [1, 1, 1]
    assert alpha_from_votes(unit, value, "nominal") == pytest.approx(oracle(data, "nominal"))


def test_bad_input_is_a_user_error():
    with pytest.raises(ConfigError, match="level of measurement"):
        krippendorff_alpha(HAND, "cardinal")
    with pytest.raises(DataError, match=r"\[raters, units\]"):
        krippendorff_alpha(np.ones(5), "nominal")
    with pytest.raises(DataError, match="infinite"):
        krippendorff_alpha(np.array([[1.0, np.inf], [1.0, 2.0]]), "nominal")
