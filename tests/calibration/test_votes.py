"""The vote view of a ComparisonDataset: canonical orientation, groups, annotators, rates."""
import datasets
import numpy as np
import pytest

from pluralrm.calibration.votes import group_rates, group_votes
from pluralrm.errors import DataError


def tiny():
    return datasets.Dataset.from_dict({
        "prompt": ["p", "p", "p", "q", "q"],
        "chosen": ["a", "b", "a", "x", "y"],
        "rejected": ["b", "a", "b", "y", "x"],
        "label": [1.0, 1.0, 0.5, 1.0, 1.0],
        "annotator_id": ["u1", "u2", "", "u1", ""],
        "weight": [1.0] * 5,
        "country": ["NG", "US", "US", "", "NG"],
    })


def test_votes_are_canonical_and_grouped():
    v = group_votes(tiny(), "country")
    assert v.group_labels == ("country=NG", "country=US")        # 2 rows each; ties broken by name
    np.testing.assert_array_equal(v.unit, [0, 0, 0, 1, 1])
    np.testing.assert_allclose(v.vote, [1.0, 0.0, 0.5, 1.0, 0.0])   # P(first ≻ second), first = "a" / "x"
    np.testing.assert_array_equal(v.group, [0, 1, 1, -1, 0])        # unknown country → -1
    assert v.annotator[0] == v.annotator[3]                         # u1 twice
    assert len({v.annotator[2], v.annotator[4], v.annotator[0], v.annotator[1]}) == 4  # anonymous rows apart
    np.testing.assert_allclose(v.canonical(np.array([0.9, 0.9, 0.9, 0.2, 0.2])), [0.9, 0.1, 0.9, 0.2, 0.8])


def test_group_rates_sum_votes_per_cell():
    r = group_rates(group_votes(tiny(), "country"))
    np.testing.assert_allclose(r.count, [[1, 2], [1, 0]])
    np.testing.assert_allclose(r.rate, [[1.0, 0.25], [0.0, np.nan]])
    np.testing.assert_allclose(r.variance, [[np.nan, 0.125], [np.nan, np.nan]])  # var of {0, 0.5}


def test_group_labels_order_and_errors():
    v = group_votes(tiny(), ["country"], group_labels=["country=US", "country=NG", "country=BR"])
    np.testing.assert_array_equal(v.group, [1, 0, 0, -1, 1])
    with pytest.raises(DataError, match="country=NG"):
        group_votes(tiny(), "country", group_labels=["country=US"])
    with pytest.raises(DataError, match="not a group attribute"):
        group_votes(tiny(), "language")
    with pytest.raises(DataError, match="not a group attribute"):
        group_votes(tiny(), "label")


def test_multi_attribute_groups(society):
    data = society.dataset.add_column("language", ["en" if i % 2 else "yo" for i in range(society.dataset.num_rows)])
    v = group_votes(data, ["country", "language"])
    assert len(v.group_labels) == 6
    assert all(label.count(",") == 1 and label.startswith("country=") for label in v.group_labels)
