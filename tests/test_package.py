"""The package's front door: ``import pluralrm as prm`` reaches the README's first example, lazily."""
import subprocess
import sys


def test_flat_names_are_the_real_objects():
    import pluralrm as prm
    from pluralrm.calibration import analyze
    from pluralrm.models.reward_model import RewardModel
    from pluralrm.train import TrainConfig, fit, load_config

    assert prm.fit is fit and prm.load_config is load_config and prm.TrainConfig is TrainConfig
    assert prm.analyze is analyze and prm.RewardModel is RewardModel
    assert {"fit", "load_config", "load", "analyze", "RewardModel"} <= set(dir(prm))


def test_load_is_reward_model_load(tmp_path):
    import pluralrm as prm
    from pluralrm.data.schema import GroupSchema
    from pluralrm.models import BackboneConfig, ModelConfig, RewardModel

    schema = GroupSchema.from_columns({"country": ["NG", "US"]})
    model = RewardModel.create(ModelConfig(backbone=BackboneConfig(num_buckets=64, embed_dim=4, hidden_dims=(8,))), schema)
    model.save(tmp_path / "m")
    loaded = prm.load(tmp_path / "m")
    assert isinstance(loaded, RewardModel)
    assert loaded.score(["p"], ["r"]).tolist() == model.score(["p"], ["r"]).tolist()


def test_import_stays_lazy():
    """``import pluralrm`` must not pull JAX, training or calibration (the CLI's --help is fast)."""
    code = "import sys, pluralrm as prm; prm.load; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax') or m.startswith('pluralrm.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
