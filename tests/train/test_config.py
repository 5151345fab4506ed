import pytest

from pluralrm.configs import to_dict
from pluralrm.errors import ConfigError
from pluralrm.train import load_config
from pluralrm.train.config import TrainConfig, config_to_yaml


def test_defaults_load():
    config = load_config(None)
    assert isinstance(config, TrainConfig)
    assert config.model.head.type == "conditioned"


def test_unknown_key_names_it_and_suggests_the_nearest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optimizer:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'optimizer.lrr'; did you mean 'optimizer.lr'"):
        load_config(str(path))
    with pytest.raises(ConfigError, match=r"'model.head.tpye'; did you mean 'model.head.type'"):
        load_config(None, ["model.head.tpye=pooled"])
    with pytest.raises(ConfigError, match=r"'trian'; did you mean 'train'"):
        load_config(None, ["trian.steps=3"])


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match="train.steps.*integer"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(ConfigError, match="head.type must be one of"):
        load_config(None, ["model.head.type=oracle"])
    with pytest.raises(ConfigError, match="loss.type"):
        load_config(None, ["loss.type=hinge"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(None, ["train.steps"])


def test_overrides_parse_yaml_scalars_and_lists():
    config = load_config(None, ["optimizer.lr=3e-4", "model.backbone.hidden_dims=[32, 16]", "train.progress=false"])
    assert config.optimizer.lr == pytest.approx(3e-4)
    assert config.model.backbone.hidden_dims == (32, 16)
    assert config.train.progress is False


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_config(None, ["model.head.type=mixture", "data.groups=[country]"])
    path = tmp_path / "resolved.yaml"
    path.write_text(config_to_yaml(config))
    assert load_config(str(path)) == config
    assert to_dict(load_config(str(path)))["data"]["groups"] == ["country"]


def test_yaml_must_be_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(str(path))
    path.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))
