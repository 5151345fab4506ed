"""experiments/fewshot.py at its --quick size, and its splits."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import common, fewshot, societies


def test_new_annotators_are_held_out_and_tested_on_held_out_items(tmp_path):
    args = common.parse_args("fewshot", fewshot.__doc__, ["--quick"])
    study = common.load_study(fewshot.FewShotConfig, args)
    society = societies.make_society(study, 0)
    truth = society.truth
    train, people = fewshot.splits(society, study, 0)
    train_annotators = set(truth.row_annotator[train])
    train_items = set(truth.row_item[train])
    assert people and not train_annotators & set(people)
    for a, p in people.items():
        assert np.all(truth.row_annotator[p["pool"]] == a) and np.all(truth.row_annotator[p["test"]] == a)
        assert set(truth.row_item[p["test"]]).isdisjoint(train_items)
        assert set(truth.row_item[p["pool"]]).isdisjoint(truth.row_item[p["test"]])
    refs = fewshot.references(truth, people[next(iter(people))]["test"])
    assert refs["bayes_annotator"] >= refs["bayes_group"] - 1e-12


@pytest.mark.slow
def test_quick_run(tmp_path):
    assert fewshot.main(["--quick", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "fewshot.json").read_text())
    assert (tmp_path / "fewshot.png").stat().st_size > 0
    seed = saved["results"]["per_seed"][0]
    assert set(seed["models"]["mixture/empirical"]["accuracy_by_shots"]) == {"0", "2"}
    assert 0.3 < seed["models"]["pooled"]["accuracy"] < 1.0
    assert "mixture adapted, empirical-Bayes prior" in saved["tables"]["accuracy"]


@pytest.mark.slow
def test_finding_accuracy_rises_with_shots(tmp_path):
    """The study's finding on one seed at the default size (per-group head, empirical prior,
    0 and 50 shots; the baselines).

    Measured spread (experiments/results/fewshot.json, default size, seeds 0-2): per_group /
    empirical accuracy at 50 shots − at 0 shots = 0.019 / 0.044 / 0.052; conditioned − pooled
    accuracy = 0.071 / 0.071 / 0.142. Margins: half the smallest measured value, 0.009 and 0.035."""
    assert fewshot.main(["--seeds", "0", "--set", "shots=[0,50]", "--set", "priors=[empirical]",
                         "--set", "adaptive={per_group: {use_annotators: true, annotator_shrinkage: 0.01}}",
                         "--out", str(tmp_path)]) == 0
    models = json.loads((tmp_path / "fewshot.json").read_text())["results"]["per_seed"][0]["models"]
    shots = models["per_group/empirical"]["accuracy_by_shots"]
    assert shots["50"] - shots["0"] > 0.009, shots
    assert models["conditioned"]["accuracy"] - models["pooled"]["accuracy"] > 0.035
