import numpy as np
import pytest

from pluralrm.errors import ConfigError, DataError
from pluralrm.score import RULES, aggregate

# 3 candidates x 4 groups
TABLE = np.array([
    [1.0, 2.0, 3.0, 6.0],
    [0.0, 5.0, 1.0, 2.0],
    [2.0, 2.0, 2.0, 2.0],
])


def test_every_rule_is_documented_in_one_line():
    assert set(RULES) == {"mean", "weighted", "worst", "quantile", "softmin", "borda", "majority"}
    for rule in RULES.values():
        assert rule.meaning and "\n" not in rule.meaning
        assert rule.kind in ("cardinal", "ranking")


def test_cardinal_rules_against_hand_computed_values():
    np.testing.assert_allclose(aggregate(TABLE, "mean"), [3.0, 2.0, 2.0])
    np.testing.assert_allclose(aggregate(TABLE, "weighted", [1, 0, 0, 1]), [3.5, 1.0, 2.0])
    np.testing.assert_allclose(aggregate(TABLE, "weighted", [3, 1, 0, 0]), [1.25, 1.25, 2.0])
    np.testing.assert_allclose(aggregate(TABLE, "worst"), [1.0, 0.0, 2.0])
    # sorted rows: [1,2,3,6], [0,1,2,5]; cumulative shares .25 .5 .75 1
    np.testing.assert_allclose(aggregate(TABLE, "quantile", q=0.25), [1.0, 0.0, 2.0])
    np.testing.assert_allclose(aggregate(TABLE, "quantile", q=0.26), [2.0, 1.0, 2.0])
    np.testing.assert_allclose(aggregate(TABLE, "quantile", q=0.5), [2.0, 1.0, 2.0])
    np.testing.assert_allclose(aggregate(TABLE, "quantile", q=1.0), [6.0, 5.0, 2.0])
    np.testing.assert_allclose(aggregate(TABLE, "quantile", q=0.0), [1.0, 0.0, 2.0])
    # weighted: the last group carries 70% of the weight, so it is the median group of each row
    np.testing.assert_allclose(aggregate(TABLE, "quantile", [1, 1, 1, 7], q=0.5), [6.0, 2.0, 2.0])
    # softmin at tau = 1 with equal weights: -log(mean(exp(-s)))
    expected = -np.log(np.mean(np.exp(-TABLE), axis=1))
    np.testing.assert_allclose(aggregate(TABLE, "softmin"), expected)
    np.testing.assert_allclose(aggregate(TABLE, "softmin", temperature=2.0), -2 * np.log(np.mean(np.exp(-TABLE / 2), axis=1)))


def test_quantile_matches_numpy_inverted_cdf():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 7))
    weights = rng.uniform(0.1, 2.0, size=7)
    for q in (0.03, 0.1, 0.37, 0.5, 0.9, 1.0):
        np.testing.assert_array_equal(
            aggregate(scores, "quantile", q=q), np.quantile(scores, q, axis=1, method="inverted_cdf")
        )
        np.testing.assert_array_equal(
            aggregate(scores, "quantile", weights, q=q),
            [np.quantile(row, q, weights=weights, method="inverted_cdf") for row in scores],
        )


def test_softmin_limits_and_order():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(20, 5)) * 3
    w = rng.uniform(0.5, 1.5, size=5)
    w_bar = w / w.sum()
    # tau -> 0: the minimum (within tau * log(1 / min weight share))
    tau = 1e-3
    np.testing.assert_allclose(aggregate(scores, "softmin", w, temperature=tau), scores.min(1), atol=tau * np.log(1 / w_bar.min()) + 1e-12)
    # tau -> infinity: the weighted mean (error ~ variance / (2 tau))
    np.testing.assert_allclose(aggregate(scores, "softmin", w, temperature=1e7), scores @ w_bar, atol=1e-5)
    # in between it lies between the minimum and the weighted mean, increasing in tau
    taus = [0.1, 0.5, 1.0, 3.0, 10.0]
    values = np.stack([aggregate(scores, "softmin", w, temperature=t) for t in taus])
    assert np.all(values >= scores.min(1) - 1e-12) and np.all(values <= scores @ w_bar + 1e-12)
    assert np.all(np.diff(values, axis=0) >= -1e-12)
    # a zero-weight group is ignored, even when it is the worst
    low = np.array([[5.0, 4.0, -100.0]])
    assert aggregate(low, "softmin", [1, 1, 0], temperature=1e-3)[0] == pytest.approx(4.0, abs=1e-2)
    # large scores do not overflow
    assert np.isfinite(aggregate(np.array([[1e4, -1e4]]), "softmin", temperature=1e-2)).all()


def test_borda_and_majority_against_hand_computed_values():
    # candidates a, b, c; 3 groups rank a > b > c, 2 groups rank b > c > a
    t = np.array([
        [3, 3, 3, 1, 1],
        [2, 2, 2, 3, 3],
        [1, 1, 1, 2, 2],
    ], dtype=float)
    # Borda: a = 3*2 + 2*0 = 6, b = 3*1 + 2*2 = 7, c = 0 + 2*1 = 2
    np.testing.assert_allclose(aggregate(t, "borda"), [6, 7, 2])
    # Copeland: a beats b (3 of 5) and c (3 of 5); b beats c (5 of 5): a is the Condorcet winner
    np.testing.assert_allclose(aggregate(t, "majority"), [2, 1, 0])
    # weights turn the majority: the 2 groups weigh 2 each (4 > 3)
    np.testing.assert_allclose(aggregate(t, "majority", [1, 1, 1, 2, 2]), [0, 2, 1])
    np.testing.assert_allclose(aggregate(t, "borda", [1, 1, 1, 2, 2]), [6, 11, 4])


def test_ranking_ties_count_half():
    t = np.array([[1.0, 0.0], [1.0, 2.0]])
    # group 0 ties a and b (½ each), group 1 prefers b
    np.testing.assert_allclose(aggregate(t, "borda"), [0.5, 1.5])
    # pairwise: a has support ½, b has 1½: b wins its only contest
    np.testing.assert_allclose(aggregate(t, "majority"), [0.0, 1.0])
    # a Condorcet cycle: every candidate wins one contest
    cycle = np.array([[3, 1, 2], [2, 3, 1], [1, 2, 3]], dtype=float)
    np.testing.assert_allclose(aggregate(cycle, "majority"), [1, 1, 1])


def test_ranking_rules_rank_within_each_set_and_ignore_monotone_group_transforms():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(9, 4))
    sets = ["p1"] * 4 + ["p2"] * 2 + ["p1"] * 0 + ["p3"] * 3
    for rule in ("borda", "majority"):
        together = aggregate(scores, rule, sets=sets)
        separate = np.concatenate([aggregate(scores[a:b], rule) for a, b in ((0, 4), (4, 6), (6, 9))])
        np.testing.assert_array_equal(together, separate)
        # per-group shifts and positive rescalings keep every group's ranking
        transformed = scores * np.array([1.0, 3.0, 0.2, 7.0]) + np.array([5.0, -2.0, 0.0, 100.0])
        np.testing.assert_array_equal(aggregate(transformed, rule, sets=sets), together)


def test_sets_need_not_be_contiguous():
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [2.0, 0.0]])
    out = aggregate(scores, "borda", sets=["a", "b", "a", "b"])
    np.testing.assert_array_equal(out, [0.0, 1.0, 2.0, 1.0])


def test_normalize_option_is_applied_before_the_rule():
    t = np.array([[0.0, 10.0], [1.0, 12.0], [2.0, 11.0]])
    # raw worst is always group 0; centred per group: [-1, -1], [0, 1], [1, 0]
    np.testing.assert_allclose(aggregate(t, "worst", normalize="center"), [-1.0, 0.0, 0.0])
    np.testing.assert_allclose(aggregate(t, "worst", normalize="center", reference=np.array([[0.0, 0.0], [2.0, 20.0]])),
                               [-1.0, 0.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(rule="utilitarian"), ConfigError, "unknown aggregation rule 'utilitarian'.*'mean'"),
        (dict(rule="mean", weights=[1, 1, 1, 1]), ConfigError, "use 'weighted'"),
        (dict(rule="worst", weights=[1, 1, 1, 1]), ConfigError, "takes no weights"),
        (dict(rule="weighted"), ConfigError, "needs group weights.*population_weights"),
        (dict(rule="weighted", weights=[1, 1]), ConfigError, "one entry per group \\(4\\)"),
        (dict(rule="borda", weights=[1, -1, 1, 1]), ConfigError, ">= 0"),
        (dict(rule="quantile", q=1.5), ConfigError, "q must be in \\[0, 1\\]"),
        (dict(rule="softmin", temperature=0.0), ConfigError, "temperature must be a positive"),
        (dict(rule="worst", q=0.1), ConfigError, "'worst' takes no parameters; got 'q'"),
        (dict(rule="mean", normalize="minmax"), ConfigError, "normalize must be one of"),
        (dict(rule="mean", sets=["a", "b"]), DataError, "one label per row"),
    ],
)
def test_invalid_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        aggregate(TABLE, **kwargs)


def test_invalid_tables_are_rejected():
    with pytest.raises(DataError, match="NaN"):
        aggregate(np.array([[1.0, np.nan]]), "mean")
    with pytest.raises(DataError, match=r"table \[N, G\]"):
        aggregate(np.array([1.0, 2.0]), "mean")
