"""experiments/common.py: study configs, statistics, splits and probe sets."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments import common, societies
from pluralrm.errors import ConfigError
from pluralrm.simulate import SocietyConfig, generate

SMALL = SocietyConfig(countries=2, languages=2, annotators_per_group=6, comparisons=400, seed=5)


def test_interval_is_a_student_t_interval():
    values = [0.70, 0.74, 0.71, 0.79]
    iv = common.interval(values)
    want = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert iv == {"mean": pytest.approx(np.mean(values)), "half": pytest.approx(want), "n": 4}
    assert np.isnan(common.interval([0.5])["half"]) and common.interval([0.5])["mean"] == 0.5
    assert common.interval([float("nan"), 1.0])["n"] == 1
    assert common.fmt({"mean": 0.8123, "half": 0.0104, "n": 3}) == "0.812 ± 0.010"
    assert common.fmt({"mean": float("nan"), "half": float("nan"), "n": 0}) == "–"


def _args(tmp_path, *argv):
    config = tmp_path / "study.yaml"
    config.write_text(
        "seeds: [0, 1, 2]\nheads: [pooled, conditioned]\nsociety: {comparisons: 100, heterogeneity: 2.0}\n"
        "train: {train: {steps: 50}}\n"
        "quick: {seeds: [0], heads: [pooled], society: {comparisons: 10}, train: {train: {batch_size: 8}}}\n")
    return common.parse_args("washout", "doc", ["--config", str(config), *argv])


def test_quick_block_merges_society_and_train_and_replaces_the_rest(tmp_path):
    from experiments.washout import WashoutConfig

    study = common.load_study(WashoutConfig, _args(tmp_path, "--quick"))
    assert study.seeds == (0,) and study.heads == ("pooled",)
    assert study.society == {"comparisons": 10, "heterogeneity": 2.0}
    assert study.train == {"train": {"steps": 50, "batch_size": 8}}
    default = common.load_study(WashoutConfig, _args(tmp_path, "--seeds", "3,4", "--set", "test_size=0.5"))
    assert default.seeds == (3, 4) and default.test_size == 0.5 and default.heads == ("pooled", "conditioned")
    with pytest.raises(ConfigError, match="unknown config key"):
        common.load_study(WashoutConfig, _args(tmp_path, "--set", "headz=[pooled]"))


def test_train_config_layers_defaults_study_and_model_choices(tmp_path):
    from experiments.washout import WashoutConfig

    study = common.load_study(WashoutConfig, _args(tmp_path))
    config = common.train_config(study, seed=7, head="mixture", steps=9, model={"head": {"num_prototypes": 3}})
    assert config.train.steps == 9 and config.train.seed == 7 and not config.train.progress
    assert config.model.head.type == "mixture" and config.model.head.num_prototypes == 3
    assert config.eval.every == 0 and not config.checkpoint.async_save
    assert common.steps_for(config, rows=1000, epochs=2.0) == max(9, int(np.ceil(2000 / config.train.batch_size)))


def test_item_split_holds_out_whole_items():
    data = generate(SMALL).data
    train, test = common.item_split(data, 0.25, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(data)
    items = np.asarray(data["item_id"])
    assert not set(items[train]) & set(items[test])


def test_probe_set_draws_new_items_for_the_same_society():
    result = generate(SMALL)
    probe, rows = societies.probe_set([result], 300, candidate_sampling="negatively_correlated")
    assert np.array_equal(probe.truth.group_value_weights, result.truth.group_value_weights)
    assert len(probe.data) == 300 and 0 < len(rows) <= 300
    seen = set(societies._item_keys(result.truth))
    assert not [k for k in np.asarray(societies._item_keys(probe.truth))[rows] if k in seen]
    with pytest.raises(ConfigError, match="society differs"):
        societies.probe_set([result], 50, heterogeneity=0.0)


def test_results_file_records_the_command(tmp_path):
    import json
    import time

    from experiments.washout import WashoutConfig

    args = _args(tmp_path, "--quick", "--out", str(tmp_path / "out"))
    study = common.load_study(WashoutConfig, args)
    path = common.write_results(args, study, {"x": np.float64(float("nan")), "y": np.arange(2)},
                                time.perf_counter(), {"t": "| a |"})
    saved = json.loads(path.read_text())
    assert saved["command"].startswith("python experiments/washout.py --config ") and "--quick" in saved["command"]
    assert saved["size"] == "quick" and saved["seeds"] == [0]
    assert saved["results"] == {"x": None, "y": [0, 1]} and saved["tables"] == {"t": "| a |"}
