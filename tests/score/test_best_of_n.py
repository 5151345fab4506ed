import sys
from pathlib import Path

import numpy as np
import pytest

from pluralrm.errors import DataError
from pluralrm.score import aggregate, best_of_n, group_scores, population_weights, select

sys.path.insert(0, str(Path(__file__).parent))
from score_helpers import PROMPTS, RESPONSES, SCHEMA, tiny_model  # noqa: E402

LABELS = ["g0", "g1", "g2"]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


# ----------------------------------------------------------------------------- decisive groups
def test_worst_decisive_group_is_the_worst_off_under_the_choice():
    s = select(np.array([[3.0, 1.0, 4.0], [2.0, 2.5, 5.0]]), "worst", group_labels=LABELS)
    assert s.index == 1 and s.decisive_group == 0 and s.decisive_label == "g0"
    np.testing.assert_array_equal(s.scores, [1.0, 2.0])
    assert "worst-off" in s.decisive_reason


def test_quantile_decisive_group_is_the_quantile_group():
    t = np.array([[1.0, 9.0, 5.0, 7.0], [3.0, 4.0, 0.0, 6.0]])
    s = select(t, "quantile", q=0.5)
    # medians (lower): row 0 sorted 1,5,7,9 -> 5 (group 2); row 1 sorted 0,3,4,6 -> 3 (group 0)
    np.testing.assert_array_equal(s.scores, [5.0, 3.0])
    assert s.index == 0 and s.decisive_group == 2


def test_softmin_decisive_group_has_the_largest_share_and_tends_to_the_worst():
    t = np.array([[3.0, 1.0, 4.0], [2.0, 2.5, 5.0]])
    cold = select(t, "softmin", temperature=1e-3)
    worst = select(t, "worst")
    assert (cold.index, cold.decisive_group) == (worst.index, worst.decisive_group)
    # hot: shares follow the weights; the heaviest group decides
    hot = select(t, "softmin", [1.0, 1.0, 5.0], temperature=1e6)
    assert hot.decisive_group == 2


def test_mean_decisive_group_contributes_most_to_the_lead():
    s = select(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), "mean")
    assert s.index == 1 and s.decisive_group == 2
    w = select(np.array([[1.0, 0.0, 0.0], [0.0, 0.1, 3.0]]), "weighted", [1.0, 100.0, 0.1])
    # leads per group weighted: [-1 * 1, 0.1 * 100, 3 * 0.1]: group 1 carries the choice
    assert w.index == 1 and w.decisive_group == 1
    only = select(np.array([[1.0, 2.0]]), "mean")
    assert only.index == 0 and only.decisive_group is None and "only one candidate" in only.decisive_reason


def test_ranking_decisive_group_is_the_heaviest_pivotal_group():
    # candidate 0 = b, 1 = a; groups 0 and 1 prefer a, group 2 prefers b
    t = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    for rule in ("borda", "majority"):
        s = select(t, rule, group_labels=LABELS)
        assert s.index == 1
        # without g0 (or g1) a and b tie and the tie goes to candidate 0: both pivotal, g0 first
        assert s.decisive_group == 0, rule
        assert "candidate 0 would win instead of candidate 1" in s.decisive_reason
        heavy = select(t, rule, [1.0, 2.0, 1.0], group_labels=LABELS)
        # without g0, a still wins 2 to 1: only g1 is pivotal
        assert heavy.index == 1 and heavy.decisive_group == 1, rule


def test_no_decisive_group_when_no_single_removal_changes_the_winner():
    t = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    for rule in ("borda", "majority"):
        s = select(t, rule)
        assert s.index == 1 and s.decisive_group is None
        assert "no single group" in s.decisive_reason


def test_majority_pivot_over_three_candidates():
    # 3 groups rank a > b > c, 2 groups rank b > c > a: a is the Condorcet winner by 3 to 2;
    # removing any of the first three groups makes a vs b a 2-2 tie: each of them is pivotal
    t = np.array([[3, 3, 3, 1, 1], [2, 2, 2, 3, 3], [1, 1, 1, 2, 2]], dtype=float)
    s = select(t, "majority", [1, 1, 1.5, 1, 1])
    assert s.index == 0
    assert s.decisive_group == 2  # the heaviest of the pivotal groups 0, 1, 2


def test_selection_scores_equal_aggregate():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(5, 4))
    for rule, kw in [("mean", {}), ("worst", {}), ("quantile", {"q": 0.3}), ("softmin", {"temperature": 0.5}),
                     ("borda", {}), ("majority", {})]:
        s = select(t, rule, normalize="zscore", **kw)
        np.testing.assert_array_equal(s.scores, aggregate(t, rule, normalize="zscore", **kw))
        assert s.index == int(np.argmax(s.scores))
        np.testing.assert_array_equal(s.table, t)


# ----------------------------------------------------------------------------- with a model
def test_group_scores_agree_with_score_and_score_all_groups(model):
    table, labels = group_scores(model, PROMPTS, RESPONSES)
    expected, expected_labels = model.score_all_groups(PROMPTS, RESPONSES)
    np.testing.assert_array_equal(table, expected)
    assert labels == expected_labels == SCHEMA.group_labels()
    # each schema group as a spec gives the same column (one batched call for all specs)
    specs = [dict(zip(SCHEMA.attributes, g)) for g in SCHEMA.groups]
    by_spec, spec_labels = group_scores(model, PROMPTS, RESPONSES, specs)
    np.testing.assert_allclose(by_spec, table, rtol=1e-6, atol=1e-6)
    assert spec_labels == labels
    one, one_label = group_scores(model, PROMPTS, RESPONSES, "country=IN,language=hi")
    np.testing.assert_allclose(one[:, 0], model.score(PROMPTS, RESPONSES, groups="country=IN,language=hi"), rtol=1e-6, atol=1e-6)
    assert one_label == ["country=IN,language=hi"]


def test_best_of_n_over_all_groups(model):
    prompt = "Is it fine to skip the ceremony?"
    result = best_of_n(model, prompt, RESPONSES, rule="worst", normalize="center")
    table, _ = model.score_all_groups([prompt] * 3, RESPONSES)
    np.testing.assert_array_equal(result.table, table)
    centred = table - table.mean(0)
    np.testing.assert_allclose(result.scores, centred.min(1), rtol=1e-6)
    assert result.index == int(np.argmax(centred.min(1)))
    assert result.candidate == RESPONSES[result.index]
    assert result.decisive_group == int(np.argmin(centred[result.index]))
    assert result.decisive_label == SCHEMA.group_labels()[result.decisive_group]


def test_best_of_n_for_one_group_is_that_groups_argmax(model):
    prompt = PROMPTS[0]
    result = best_of_n(model, prompt, RESPONSES, groups="country=NG,language=yo")
    scores = model.score([prompt] * 3, RESPONSES, groups="country=NG,language=yo")
    assert result.index == int(np.argmax(scores))
    assert result.group_labels == ["country=NG,language=yo"]


def test_weighted_defaults_to_population_shares(model):
    result = best_of_n(model, PROMPTS[0], RESPONSES, rule="weighted")
    np.testing.assert_allclose(result.weights, np.array([3, 2, 1, 1]) / 7)
    np.testing.assert_allclose(result.scores, result.table @ (np.array([3, 2, 1, 1]) / 7), rtol=1e-6)
    # "country=NG" matches NG/yo (2) and NG/en (1); "country=US" US/en (3)
    np.testing.assert_allclose(population_weights(SCHEMA, ["country=NG", "country=US"]), [0.5, 0.5])
    with pytest.raises(DataError, match="has training comparisons, so they have no population weight"):
        population_weights(SCHEMA, ["country=IN,language=en"])
    with pytest.raises(DataError, match="unknown group attribute 'religion'"):
        population_weights(SCHEMA, ["religion=x"])


def test_unseen_group_values_follow_the_fallback_policy(model):
    prompt = PROMPTS[1]
    pooled = model.score([prompt] * 3, RESPONSES, groups=None)
    with pytest.warns(UserWarning, match="country='FR'"):
        result = best_of_n(model, prompt, RESPONSES, groups=["country=FR", "country=US,language=en"])
    np.testing.assert_allclose(result.table[:, 0], pooled, rtol=1e-6, atol=1e-6)
    with pytest.raises(DataError, match="'FR'"):
        best_of_n(model, prompt, RESPONSES, groups="country=FR", fallback="error")
    with pytest.warns(UserWarning, match="nearest known value 'NG'"):
        near = best_of_n(model, prompt, RESPONSES, groups={"country": "NGA", "language": "yo"}, fallback="nearest")
    np.testing.assert_allclose(near.table[:, 0], model.score([prompt] * 3, RESPONSES, groups="country=NG,language=yo"),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(DataError, match="unknown group attribute 'religion'"):
        best_of_n(model, prompt, RESPONSES, groups="religion=x")


def test_best_of_n_needs_candidates(model):
    with pytest.raises(DataError, match="at least one candidate"):
        best_of_n(model, PROMPTS[0], [])
    with pytest.raises(DataError, match="empty list"):
        best_of_n(model, PROMPTS[0], RESPONSES, groups=[])
