"""pluralrm.explain: exact per-value decomposition of reward gaps, the G×K weight table, its
bootstrap intervals and plot."""
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pluralrm.data.schema import GroupSchema
from pluralrm.errors import ConfigError, DataError
from pluralrm.explain import (
    SHARED,
    explain,
    group_value_weights,
    plot_group_value_weights,
)
from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

SCHEMA = GroupSchema.from_columns(
    {"country": ["NG", "US", "US", "IN", "NG"], "language": ["yo", "en", "en", "hi", "en"]}
)
TINY = BackboneConfig(num_buckets=1 << 10, embed_dim=8, hidden_dims=(16,), buckets=(32, 64, 128, 512))
NAMES = ("honesty", "care", "autonomy", "humor")
PROMPT = "How should I tell my grandmother I am moving abroad?"
A = "Tell her gently and in person, and promise to call every week."
B = "Just send a text; it is your life and your decision."


def random_model(kind="values", value_names=NAMES, num_values=0, seed=0):
    """A values model with random (non-zero) group parameters: differences between groups and
    values are what the decomposition must get right; training is not needed for exactness."""
    head = HeadConfig(type=kind, hidden_dim=8, value_names=value_names, num_values=num_values)
    model = RewardModel.create(ModelConfig(backbone=TINY, head=head), SCHEMA, seed=seed)
    params = nnx.state(model.net, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 11), len(leaves))
    nnx.update(model.net, jax.tree.unflatten(tree, [x + 0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)]))
    return model


@pytest.fixture(scope="module")
def model():
    return random_model()


def spec_of(label):
    return None if label == SHARED else dict(kv.split("=") for kv in label.split(","))


def test_contributions_sum_to_the_score_gap_for_every_group(model):
    e = explain(model, PROMPT, A, B, groups="all")
    assert [g.group for g in e.groups] == model.group_labels
    gaps = []
    for g in e.groups:
        ra, rb = model.score([PROMPT, PROMPT], [A, B], groups=spec_of(g.group))
        total = sum(c.contribution for c in g.contributions)
        scale = sum(abs(c.contribution) for c in g.contributions)
        np.testing.assert_allclose(total, float(ra) - float(rb), rtol=0, atol=2e-6 * (1 + scale))
        np.testing.assert_allclose(g.gap, float(ra) - float(rb), rtol=0, atol=1e-6 * (1 + scale))
        np.testing.assert_allclose(g.probability, 1 / (1 + np.exp(-g.gap)), atol=1e-6)
        gaps.append(g.gap)
    assert np.ptp(gaps) > 0.1  # groups really differ: the check above is not one number repeated
    probs = model.predict_preference(PROMPT, A, B, groups="all")[0]
    np.testing.assert_allclose([g.probability for g in e.groups], probs, atol=1e-7)


def test_shared_and_listed_groups(model):
    shared = explain(model, PROMPT, A, B)
    assert [g.group for g in shared.groups] == [SHARED]
    ra, rb = model.score([PROMPT, PROMPT], [A, B])
    np.testing.assert_allclose(sum(c.contribution for c in shared.groups[0].contributions), ra - rb, atol=1e-5)
    listed = explain(model, PROMPT, A, B, groups=["country=NG", {"country": "US", "language": "en"}])
    assert [g.group for g in listed.groups] == ["country=NG", "country=US,language=en"]
    ra, rb = model.score([PROMPT, PROMPT], [A, B], groups="country=NG")
    np.testing.assert_allclose(listed.groups[0].gap, ra - rb, atol=1e-6)
    every = {g.group: g for g in explain(model, PROMPT, A, B, groups="all").groups}
    np.testing.assert_allclose(listed.groups[1].gap, every["country=US,language=en"].gap, atol=1e-6)


def test_contribution_is_weight_times_score_difference_sorted_by_magnitude(model):
    e = explain(model, PROMPT, A, B, groups="all")
    head = model.net.head
    weights = np.asarray(head.value_weights(jnp.asarray(SCHEMA.group_ids())))
    scores = model.value_scores([PROMPT, PROMPT], [A, B])
    np.testing.assert_array_equal(e.scores_a, scores[0].astype(np.float64))
    for g, group in enumerate(e.groups):
        magnitudes = [abs(c.contribution) for c in group.contributions]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert sorted(c.value for c in group.contributions) == sorted(NAMES)
        for c in group.contributions:
            k = NAMES.index(c.value)
            assert c.weight == pytest.approx(float(weights[g, k]), abs=1e-7)
            assert c.contribution == pytest.approx(c.weight * (c.score_a - c.score_b), rel=1e-12)
    np.testing.assert_allclose(e.contribution_matrix().sum(axis=1), [g.gap for g in e.groups], atol=1e-5)


def test_swapping_answers_negates_everything(model):
    ab = explain(model, PROMPT, A, B, groups="all")
    ba = explain(model, PROMPT, B, A, groups="all")
    np.testing.assert_allclose(ab.contribution_matrix(), -ba.contribution_matrix(), atol=1e-6)
    np.testing.assert_allclose([g.probability for g in ab.groups], [1 - g.probability for g in ba.groups], atol=1e-6)


def test_value_names_default_to_indices():
    e = explain(random_model(value_names=(), num_values=3), PROMPT, A, B)
    assert e.value_names == ("value_0", "value_1", "value_2")
    assert {c.value for c in e.groups[0].contributions} == {"value_0", "value_1", "value_2"}


def test_unknown_group_value_falls_back_to_shared_with_a_warning(model):
    with pytest.warns(UserWarning, match="country='FR'"):
        e = explain(model, PROMPT, A, B, groups="country=FR")
    assert e.groups[0].group == SHARED
    with pytest.raises(DataError, match="FR"):
        explain(model, PROMPT, A, B, groups="country=FR", fallback="error")


def test_non_values_head_is_a_clear_error():
    other = random_model(kind="conditioned")
    with pytest.raises(ConfigError, match="'values' head.*'conditioned'"):
        explain(other, PROMPT, A, B)
    with pytest.raises(ConfigError, match="'values' head"):
        group_value_weights(other)


def test_weight_table_shape_labels_and_rows(model, tmp_path):
    table = group_value_weights(model)
    head = model.net.head
    assert table.weights.shape == (SCHEMA.num_groups + 1, len(NAMES))
    assert table.groups == (*model.group_labels, SHARED) and table.value_names == NAMES
    np.testing.assert_array_equal(table.weights[-1], np.asarray(head.w0[...], np.float64))
    np.testing.assert_array_equal(table.weights[:-1], np.asarray(head.value_weights(jnp.asarray(SCHEMA.group_ids()))))
    assert table.lower is None and table.to_dict()["lower"] is None
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(group_value_weights(tmp_path / "m").weights, table.weights)
    png = plot_group_value_weights(table, tmp_path / "plots" / "weights.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bootstrap_needs_data(model):
    with pytest.raises(DataError, match="data="):
        group_value_weights(model, bootstrap=10)


@pytest.mark.slow
def test_bootstrap_intervals_contain_the_estimate_and_narrow_with_more_data(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from society_helpers import frozen_overrides, society

    from pluralrm.train import fit, load_config

    result, table = society(tmp_path, comparisons=8000, value_labels=False)
    data = result.data
    config = load_config(None, [*frozen_overrides(table, "values", 300), "model.head.num_values=6",
                                "model.head.hidden_dim=16", f"run_dir={tmp_path / 'run'}", "eval.every=0"])
    model, _ = fit(config, data)
    objective = json.loads((tmp_path / "run" / "model.json").read_text())["objective"]
    assert objective == {"group_dropout": config.train.group_dropout, "loss": config.loss.type,
                         "margin": config.loss.margin, "tie_param": config.loss.tie_param}
    annotators = sorted(set(data["annotator_id"]))
    quarter = set(annotators[::4])
    few = data.select([i for i, a in enumerate(data["annotator_id"]) if a in quarter])
    tables = {name: group_value_weights(tmp_path / "run", bootstrap=40, data=d, seed=1)
              for name, d in (("all", data), ("quarter", few))}
    for t in tables.values():
        ok = ~np.isnan(t.lower)
        assert ok[:-1].any(axis=1).all() and ok[-1].all()
        assert np.all(t.lower[ok] <= t.weights[ok]) and np.all(t.weights[ok] <= t.upper[ok])
        assert t.refit_offset < 0.5 and "annotators" in t.conditioning
    width = {k: np.nanmean(t.upper - t.lower) for k, t in tables.items()}
    # a quarter of the annotators: intervals about twice as wide (sqrt(4)); allow sampling noise
    assert width["all"] < 0.75 * width["quarter"], width


def test_refit_objective_comes_from_model_json_not_the_training_config(tmp_path):
    """explain sits below train: it reads the objective the trainer recorded in model.json, and
    its fallback equals the trainer's defaults (which it cannot import)."""
    from pluralrm.explain import DEFAULT_OBJECTIVE, _training_settings
    from pluralrm.models.reward_model import write_model_metadata
    from pluralrm.train.config import LoopConfig, LossConfig

    loop, loss = LoopConfig(), LossConfig()
    assert DEFAULT_OBJECTIVE == {"group_dropout": loop.group_dropout, "loss": loss.type,
                                 "margin": loss.margin, "tie_param": loss.tie_param}
    model = random_model()
    write_model_metadata(tmp_path, model.config, model.schema, model.featurizer, model.annotators, {},
                         {"group_dropout": 0.3, "loss": "davidson", "margin": 0.5, "tie_param": 0.2})
    assert _training_settings(tmp_path) == (0.3, "davidson", 0.5, 0.2)
    (tmp_path / "config.yaml").write_text("train:\n  group_dropout: 0.7\n")  # ignored: not read
    assert _training_settings(tmp_path)[0] == 0.3
    write_model_metadata(tmp_path, model.config, model.schema, model.featurizer, model.annotators, {})
    assert _training_settings(tmp_path) == (0.1, "bradley_terry", 0.0, None)


def test_calibrated_temperature_divides_the_gap_not_the_contributions():
    model = random_model(seed=3)
    label = model.group_labels[1]
    model.temperatures = {label: 2.5}
    e = {g.group: g for g in explain(model, PROMPT, A, B, groups="all").groups}
    assert e[label].temperature == 2.5 and e[model.group_labels[0]].temperature == 1.0
    np.testing.assert_allclose(e[label].probability, 1 / (1 + np.exp(-e[label].gap / 2.5)), atol=1e-6)
    np.testing.assert_allclose(sum(c.contribution for c in e[label].contributions), e[label].gap, atol=1e-5)
    listed = explain(model, PROMPT, A, B, groups=spec_of(label)).groups[0]
    assert listed.temperature == 2.5
    np.testing.assert_allclose(listed.probability, e[label].probability, atol=1e-6)
