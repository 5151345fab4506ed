import json
import shutil

import numpy as np
import pytest

from pluralrm.data.schema import GroupSchema
from pluralrm.errors import CheckpointError, DataError
from pluralrm.models import HEADS, BackboneConfig, HeadConfig, ModelConfig, RewardModel

SCHEMA = GroupSchema.from_columns(
    {"country": ["NG", "US", "US", "IN", "NG"], "language": ["yo", "en", "en", "hi", "en"]}
)
TINY = BackboneConfig(num_buckets=1 << 10, embed_dim=8, hidden_dims=(16,), buckets=(32, 64, 128, 512))
PROMPTS = ["How do I greet my elders?", "Is it fine to skip the ceremony?", "Tell me a joke"]
RESPONSES = ["Bow and greet them first.", "Yes, if you are busy.", "Why did the chicken cross?"]


def tiny_model(kind="conditioned", seed=0, annotators=("a", "b")):
    config = ModelConfig(backbone=TINY, head=HeadConfig(type=kind, hidden_dim=8, num_values=3, use_annotators=True))
    model = RewardModel.create(config, SCHEMA, annotators=annotators, seed=seed)
    # give group parameters non-zero values so that groups differ
    import jax
    from flax import nnx

    params = nnx.state(model.net, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 7), len(leaves))
    nnx.update(model.net, jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)]))
    return model


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_save_load_round_trip_gives_identical_scores(kind, tmp_path):
    model = tiny_model(kind)
    before = model.score_all_groups(PROMPTS, RESPONSES)[0]
    model.save(tmp_path / "m")
    loaded = RewardModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score_all_groups(PROMPTS, RESPONSES)[0], before)
    assert loaded.schema == model.schema and loaded.annotators == model.annotators
    assert loaded.config == model.config


def test_score_matches_score_all_groups():
    model = tiny_model()
    table, labels = model.score_all_groups(PROMPTS, RESPONSES)
    assert table.shape == (3, SCHEMA.num_groups)
    for g, label in enumerate(labels):
        spec = dict(kv.split("=") for kv in label.split(","))
        np.testing.assert_allclose(model.score(PROMPTS, RESPONSES, groups=spec), table[:, g], rtol=1e-6, atol=1e-6)
    assert not np.allclose(table[:, 0], table[:, 1])


def test_predict_preference_is_orientation_free():
    model = tiny_model("distributional")
    p_ab = model.predict_preference(PROMPTS, RESPONSES, RESPONSES[::-1], groups="country=NG")
    p_ba = model.predict_preference(PROMPTS, RESPONSES[::-1], RESPONSES, groups="country=NG")
    np.testing.assert_allclose(p_ab + p_ba, 1.0, atol=1e-6)
    every = model.predict_preference(PROMPTS, RESPONSES, RESPONSES[::-1], groups="all")
    assert every.shape == (3, SCHEMA.num_groups)


def test_scores_do_not_depend_on_batch_composition():
    model = tiny_model()
    alone = np.concatenate([model.score([p], [r], groups="country=IN") for p, r in zip(PROMPTS, RESPONSES)])
    together = model.score(PROMPTS, RESPONSES, groups="country=IN")
    np.testing.assert_allclose(alone, together, rtol=1e-6, atol=1e-6)


def test_unseen_group_policies():
    model = tiny_model()
    with pytest.warns(UserWarning, match="country='FR'"):
        pooled = model.score(PROMPTS, RESPONSES, groups={"country": "FR"})
    np.testing.assert_array_equal(pooled, model.score(PROMPTS, RESPONSES, groups=None))
    with pytest.raises(DataError, match="FR"):
        model.score(PROMPTS, RESPONSES, groups={"country": "FR"}, fallback="error")
    with pytest.warns(UserWarning, match="nearest known value 'NG'"):
        near = model.score(PROMPTS, RESPONSES, groups={"country": "NGA"}, fallback="nearest")
    np.testing.assert_array_equal(near, model.score(PROMPTS, RESPONSES, groups={"country": "NG"}))
    with pytest.raises(DataError, match="unknown group attribute 'religion'"):
        model.score(PROMPTS, RESPONSES, groups={"religion": "x"})


def test_loading_a_directory_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="model.json is missing"):
        RewardModel.load(tmp_path)
    with pytest.raises(CheckpointError, match="not a directory"):
        RewardModel.load(tmp_path / "nope")
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read model metadata"):
        RewardModel.load(tmp_path)


def test_loading_with_a_mismatched_schema_names_the_tensor(tmp_path):
    model = tiny_model()
    path = model.save(tmp_path / "m")
    schema = json.loads((path / "schema.json").read_text())
    schema["vocabularies"][0].append("FR")  # one more country than the weights were built for
    (path / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(CheckpointError, match=r"gamma/tables/0/embedding.*shape \(4, 8\).*expects \(5, 8\)"):
        RewardModel.load(path)


def test_loading_without_weights(tmp_path):
    path = tiny_model().save(tmp_path / "m")
    shutil.rmtree(path / "weights")
    with pytest.raises(CheckpointError, match="no weights"):
        RewardModel.load(path)
