"""pluralrm.data.summary: counts and the between-group disagreement figure, in closed form."""
import math

import pytest

from pluralrm.data.io import load
from pluralrm.data.summary import summarize


def _row(prompt, chosen, rejected, label, annotator, group):
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "label": label,
            "annotator_id": annotator, "group": group}


@pytest.fixture
def votes():
    return load([
        # unit 1: group A prefers x twice (once written the other way round), B prefers y -> spread 1
        _row("p1", "x", "y", 1.0, "a1", "A"),
        _row("p1", "y", "x", 0.0, "a2", "A"),
        _row("p1", "y", "x", 1.0, "b1", "B"),
        # unit 2: both groups tie -> spread 0
        _row("p2", "x", "y", 0.5, "a1", "A"),
        _row("p2", "y", "x", 0.5, "b1", "B"),
        # unit 3: only A and an unknown group -> not shared
        _row("p3", "x", "z", 0.7, "a1", "A"),
        _row("p3", "x", "z", 0.2, "", ""),
    ])


def test_counts(votes):
    s = summarize(votes)
    assert (s.comparisons, s.annotators, s.units) == (7, 3, 3)
    assert (s.labels.hard, s.labels.ties, s.labels.soft) == (3, 2, 2)
    assert s.group_values == {"group": {"A": 4, "B": 2, "": 1}}
    assert list(s.group_values["group"]) == ["A", "B", ""]


def test_disagreement_closed_form(votes):
    (d,) = summarize(votes).disagreement
    assert d.attribute == "group" and d.units == 2 and d.mean_spread == pytest.approx(0.5)


def test_no_shared_units_is_not_a_number():
    ds = load([_row("p1", "x", "y", 1.0, "a", "A"), _row("p2", "x", "y", 1.0, "b", "B")])
    (d,) = summarize(ds).disagreement
    assert d.units == 0 and math.isnan(d.mean_spread)
    assert "n/a" in summarize(ds).to_text()


def test_to_text(votes):
    text = summarize(votes).to_text()
    for needle in ("comparisons  7", "annotators   3", "units        3", "hard 3 · ties 2 · soft 2",
                   "A 4, B 2, <unknown> 1", "0.500 over 2 units"):
        assert needle in text


def test_without_group_attributes():
    s = summarize(load([{"prompt": "p", "chosen": "a", "rejected": "b"}]))
    assert s.disagreement == () and s.group_values == {}
    assert "disagreement" not in s.to_text()
