"""pluralrm.simulate.recovery: scoring predictions against the planted truth."""
from __future__ import annotations

import numpy as np
import pytest

from pluralrm.simulate import SocietyConfig, generate
from pluralrm.simulate.recovery import (
    between_group_variance,
    deviation_correlation,
    expected_accuracy,
    group_recovery,
    truth_retention,
)

SOCIETY = SocietyConfig(countries=3, languages=2, annotators_per_group=15, comparisons=3_000,
                        group_proportions=(0.6, 0.3, 0.1), heterogeneity=1.5, seed=11)


@pytest.fixture(scope="module")
def truth():
    return generate(SOCIETY).truth


def test_expected_accuracy_closed_form():
    prob = np.array([0.9, 0.2, 0.5, 0.51])
    p = np.array([0.7, 0.7, 0.3, 0.1])
    np.testing.assert_allclose(expected_accuracy(prob, p), [0.7, 0.3, 0.5, 0.1])


def _own_group_p(truth, rows):
    return truth.p_group[rows, truth.row_group[rows]]


def test_truth_itself_reaches_the_group_aware_bayes_accuracy(truth):
    rows = np.arange(0, len(truth.row_item), 2)
    table = group_recovery(truth, rows, _own_group_p(truth, rows))
    assert table[0].group == "all" and table[0].rows == len(rows)
    assert [g.group for g in table[1:]] == [lbl for c, lbl in enumerate(truth.group_labels)
                                            if np.any(truth.row_group[rows] == c)]
    for g in table:
        assert g.expected_accuracy == pytest.approx(g.bayes_group, abs=1e-12)
        assert g.regret == pytest.approx(0.0, abs=1e-12)
        assert g.bayes_annotator >= g.bayes_group - 1e-12  # knowing the person never hurts


def test_population_rule_reaches_the_group_blind_bayes_accuracy(truth):
    rows = np.arange(len(truth.row_item))
    table = group_recovery(truth, rows, truth.p_pooled[rows])
    for g in table:
        assert g.expected_accuracy == pytest.approx(g.bayes_blind, abs=1e-12)
    # the society is heterogeneous: ignoring groups costs the minority the most
    minority = min(table[1:], key=lambda g: g.share)
    assert minority.bayes_group - minority.bayes_blind > 0.02


def test_observed_accuracy_agrees_with_expected_within_sampling_noise(truth):
    rows = np.arange(len(truth.row_item))
    prob = _own_group_p(truth, rows)
    labels = np.ones(len(rows))  # every row is written with its winner as chosen (no ties here)
    table = group_recovery(truth, rows, prob, labels)
    overall = table[0]
    # labels were drawn with p_annotator; their mean over a group's annotators is p_group
    sd = np.sqrt(0.25 / overall.rows)
    assert abs(overall.observed_accuracy - overall.expected_accuracy) < 4 * sd
    assert np.isnan(group_recovery(truth, rows, prob)[0].observed_accuracy)


def test_ties_are_left_out_of_observed_accuracy(truth):
    rows = np.arange(4)
    labels = np.array([1.0, 0.5, 0.5, 1.0])
    prob = np.array([0.8, 0.1, 0.9, 0.3])
    assert group_recovery(truth, rows, prob, labels)[0].observed_accuracy == pytest.approx(0.5)


def test_retention_and_deviation_correlation_oracles(truth):
    p = truth.p_group
    pooled = np.repeat(truth.p_pooled[:, None], p.shape[1], axis=1)
    assert truth_retention(pooled, p) == pytest.approx(0.0, abs=1e-20)
    assert truth_retention(p, p) == pytest.approx(1.0)
    stretched = 0.5 + 2.0 * (p - 0.5)  # doubles every deviation: 4x the variance
    assert truth_retention(stretched, p) == pytest.approx(4.0)
    assert deviation_correlation(p, p) == pytest.approx(1.0)
    assert deviation_correlation(1.0 - p, p) == pytest.approx(-1.0)
    assert deviation_correlation(stretched, p) == pytest.approx(1.0)
    assert np.isnan(deviation_correlation(pooled, p))
    np.testing.assert_allclose(between_group_variance(p), np.var(p, axis=1))


def test_homogeneous_society_has_nothing_to_retain():
    # no values differ and no harms (local harms differ by country even in a homogeneous society)
    truth = generate(SOCIETY.replace(heterogeneity=0.0, harm_rate=0.0, local_harm_rate=0.0, comparisons=500)).truth
    assert np.isnan(truth_retention(truth.p_group, truth.p_group))


def test_shape_mismatches_raise(truth):
    with pytest.raises(ValueError):
        group_recovery(truth, np.arange(5), np.ones(4))
    with pytest.raises(ValueError):
        truth_retention(np.ones((3, 2)), np.ones((3, 3)))
