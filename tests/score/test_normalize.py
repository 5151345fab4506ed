import numpy as np
import pytest

from pluralrm.errors import DataError
from pluralrm.score import aggregate, group_stats, standardize
from pluralrm.score.normalize import StatsAccumulator


def test_center_and_zscore_by_hand():
    t = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 13.0]])
    np.testing.assert_allclose(standardize(t, "center"), [[-2, -1], [0, -1], [2, 2]])
    std0 = np.sqrt(8 / 3)  # population std of 0, 2, 4
    std1 = np.sqrt(2.0)  # of 10, 10, 13
    np.testing.assert_allclose(standardize(t, "zscore"), [[-2 / std0, -1 / std1], [0, -1 / std1], [2 / std0, 2 / std1]])
    np.testing.assert_array_equal(standardize(t, "none"), t)


def test_a_group_that_scores_every_candidate_alike_is_only_centred():
    t = np.array([[1.0, 5.0], [3.0, 5.0]])
    np.testing.assert_allclose(standardize(t, "zscore"), [[-1.0, 0.0], [1.0, 0.0]])


def test_statistics_per_candidate_set_or_from_a_reference():
    t = np.array([[0.0], [2.0], [10.0], [30.0]])
    np.testing.assert_allclose(standardize(t, "center", sets=["a", "a", "b", "b"])[:, 0], [-1, 1, -10, 10])
    np.testing.assert_allclose(standardize(t, "center", reference=np.array([[0.0], [20.0]]))[:, 0], [-10, -8, 0, 20])
    stats = group_stats(np.array([[0.0], [20.0]]))
    np.testing.assert_allclose(standardize(t, "zscore", reference=stats)[:, 0], [-1, -0.8, 0, 2])
    with pytest.raises(DataError, match="reference statistics cover 1 groups but the scores have 2"):
        standardize(np.zeros((2, 2)), "center", reference=stats)


def test_streaming_statistics_equal_the_batch_ones():
    rng = np.random.default_rng(0)
    scores = rng.normal(3.0, 2.0, size=(1000, 5))
    acc = StatsAccumulator()
    for a, b in ((0, 1), (1, 300), (300, 301), (301, 1000)):
        acc.update(scores[a:b])
    stats = acc.result()
    np.testing.assert_allclose(stats.mean, scores.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, scores.std(0), rtol=1e-10)
    assert stats.count == 1000
    with pytest.raises(DataError, match="no rows"):
        StatsAccumulator().result()


def test_per_group_constants_decide_the_worst_off_group_unless_normalised():
    """Pairwise training identifies each group's reward only up to a constant: shifting one
    group's rewards must not change what a cross-group rule chooses — after centring."""
    rng = np.random.default_rng(3)
    t = rng.normal(size=(6, 3))
    shifted = t + np.array([0.0, -50.0, 7.0])  # same preferences within every group
    for normalize in ("center", "zscore"):
        for rule in ("worst", "quantile", "softmin", "mean"):
            np.testing.assert_allclose(aggregate(shifted, rule, normalize=normalize), aggregate(t, rule, normalize=normalize),
                                       atol=1e-9)
    # without normalisation the shifted group is always the worst off: the choice follows it alone
    assert np.argmax(aggregate(shifted, "worst")) == np.argmax(shifted[:, 1])
