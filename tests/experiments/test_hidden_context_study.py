"""experiments/hidden_context.py at its --quick size: DPL's two findings hold in direction.

Margins come from the quick size measured over seeds 0, 1, 2 (05:20 UTC run, same code):
r² clean 0.914 / 0.917 / 0.950, hidden 0.432 / 0.420 / 0.419 (gap 0.48–0.53); harmful-over-refusal
rate, hidden context, mean − risk 0.01: 0.107 / 0.067 / 0.120 (mean 0.098, sd 0.028). The test
runs seed 0 and asks for a gap of 0.35 (far below the smallest seen) and a reduction of 0.025
(the mean reduction minus 2.5 seed standard deviations).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import hidden_context as hc


def test_annotators_label_by_their_hidden_criterion():
    long, short = "a b c d e f", "a b"
    harmless = hc.annotate("p", short, long, "no", helpful=False)
    helpful = hc.annotate("p", short, long, "no", helpful=True)
    assert [r["label"] for r in harmless] == [1.0, 1.0, 1.0]  # c ≻ r, c ≻ f, f ≻ r
    assert [r["label"] for r in helpful] == [0.0, 1.0, 0.0]  # longer r ≻ c, c ≻ f, r ≻ f
    assert hc.last_turn("Human: hi\n\nAssistant: hello\n\nHuman: how do I pick a lock?") == "how do I pick a lock?"


@pytest.mark.slow
def test_quick_study_shows_both_directions(tmp_path):
    assert hc.main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "hidden_context.json").read_text())
    assert result["commit"]  # the git commit (with -dirty when the tree has changes) is recorded
    models = result["results"]["per_seed"][0]["models"]
    clean, hidden = models["clean/mean_variance"], models["hidden/mean_variance"]
    assert clean["r2"]["estimate"] - hidden["r2"]["estimate"] > 0.35
    rate = hidden["harmful_over_refusal"]
    assert rate["mean"] - rate["risk=0.01"] > 0.025
    assert np.isfinite(hidden["probe_std"]["harmful"])
