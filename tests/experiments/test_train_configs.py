"""Every config shipped in experiments/configs/ loads, and the transformer ones fit their models.

A shipped config is either a ``pluralrm train`` config (``TRAIN_CONFIGS``, loaded through
``pluralrm.train.load_config``) or a study's config (``experiments/<name>.py`` exists and its
own tests run it). The MiniLM and e5 configs are checked against the preset's files: the
tokenizer featurizer the run would build, the position table, the layer count; the decoder config
refuses to load without ``model.backbone.path`` and builds a backbone once it is given one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pluralrm.cli import main
from pluralrm.errors import ConfigError
from pluralrm.models.transformer.presets import model_family, read_config, resolve_pretrained
from pluralrm.train import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"
TRAIN_CONFIGS = {
    "pooled_hashing": ("hashing", "pooled"),
    "conditioned_hashing": ("hashing", "conditioned"),
    "values_hashing": ("hashing", "values"),
    "pooled_minilm": ("minilm-l6", "pooled"),
    "conditioned_minilm": ("minilm-l6", "conditioned"),
    "conditioned_e5_multilingual": ("e5-small-multilingual", "conditioned"),
    "conditioned_decoder": ("", "conditioned"),
}
PRESET_CONFIGS = [name for name, (path, _) in TRAIN_CONFIGS.items() if path not in ("hashing", "")]


def test_every_shipped_config_is_a_train_config_or_a_studys():
    for file in CONFIGS.glob("*.yaml"):
        is_study = (CONFIGS.parent / f"{file.stem}.py").is_file()
        assert (file.stem in TRAIN_CONFIGS) != is_study, f"{file.name}: neither listed here nor a study's config"


@pytest.mark.parametrize("name", [n for n in TRAIN_CONFIGS if n != "conditioned_decoder"])
def test_train_configs_load(name):
    path, head = TRAIN_CONFIGS[name]
    config = load_config(str(CONFIGS / f"{name}.yaml"))
    assert config.model.head.type == head
    if path == "hashing":
        assert config.model.backbone.type == "hashing"
    else:
        assert (config.model.backbone.type, config.model.backbone.path) == ("transformer", path)
    assert config.run_dir == f"runs/{name}"
    assert config.eval.every <= config.train.steps and config.checkpoint.every <= config.train.steps


def test_decoder_config_needs_a_model_path(tmp_path, capsys):
    config_file = str(CONFIGS / "conditioned_decoder.yaml")
    with pytest.raises(ConfigError, match=r"--set model\.backbone\.path=DIR"):
        load_config(config_file)
    assert main(["train", "--config", config_file, "--out", str(tmp_path / "run")]) == 1
    assert "model.backbone.path" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_decoder_config_builds_on_a_local_llama_directory(tmp_path):
    from flax import nnx

    from pluralrm.models.backbones import build_backbone
    from tests.e2e.tiny_models import write_tiny_model

    directory = write_tiny_model("llama", tmp_path / "tiny-llama")
    config = load_config(str(CONFIGS / "conditioned_decoder.yaml"),
                         [f"model.backbone.path={directory}", "model.backbone.max_length=32",
                          "model.backbone.buckets=[32]"])
    assert config.train.dtype == "bfloat16" and config.model.backbone.remat
    backbone, featurizer = build_backbone(config.model.backbone, nnx.Rngs(0))
    assert (backbone.family, backbone.pooling) == ("decoder", "last")
    assert featurizer.template == "chat"
    inputs = featurizer(["what do you think"], ["a good answer"])
    features = backbone.features({k: np.asarray(v) for k, v in inputs.items()})
    assert features.shape == (1, backbone.dim) and np.all(np.isfinite(features))


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESET_CONFIGS)
def test_preset_configs_fit_their_models(name):
    """The preset resolves, its config.json admits the lengths, layers and pooling asked for, and
    the run's tokenizer featurizer encodes a society row within max_length."""
    from pluralrm.models.transformer import TransformerBackboneConfig
    from pluralrm.models.transformer.backbone import FAMILY_POOLINGS

    backbone = load_config(str(CONFIGS / f"{name}.yaml")).model.backbone
    try:
        pretrained = resolve_pretrained(backbone.path)
    except Exception as e:  # noqa: BLE001  (a preset whose package is not installed)
        pytest.skip(f"{backbone.path}: {e}")
    raw = read_config(pretrained.directory)
    assert model_family(raw) == "encoder"
    assert backbone.max_length <= raw["max_position_embeddings"]
    assert max(backbone.buckets) <= backbone.max_length
    if backbone.trainable == "top_k":
        assert 1 <= backbone.top_k_layers <= raw["num_hidden_layers"]
    assert pretrained.pooling in FAMILY_POOLINGS["encoder"]
    transformer_config = TransformerBackboneConfig(
        path=backbone.path, pooling=backbone.pooling, max_length=backbone.max_length, buckets=backbone.buckets,
    )
    featurizer = transformer_config.featurizer()
    assert featurizer.template == "pair"
    from pluralrm.simulate import load_default

    rows = load_default().data.select(range(4))
    batch = featurizer(list(rows["prompt"]), list(rows["chosen"]))
    assert batch["input_ids"].shape[1] in featurizer.buckets
    assert int(batch["input_ids"].max()) < raw["vocab_size"]
