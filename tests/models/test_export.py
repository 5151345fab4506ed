"""Shareable model directories (`pluralrm export`): safetensors weights, config.json, schema,
tokenizer files for transformer backbones, a model card from the run's facts; loading them back
(from another place, scores unchanged), a missing tokenizer file named, hub ids offline."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from pluralrm.cli import main
from pluralrm.errors import CheckpointError
from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "score"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from score_helpers import SCHEMA  # noqa: E402

PROMPTS = ["question 1", "question 2", "question 3"]
RESPONSES = ["good answer 3 x", "bad answer 4 y", "good answer 9 x"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tiny_run import make_dataset, tiny_config

    from pluralrm.train import fit

    run = tmp_path_factory.mktemp("run") / "r"
    train, test = make_dataset(300)
    fit(tiny_config(run, 10, ["eval.every=10", "data.path=prefs.jsonl"]), train, test)
    return run


@pytest.mark.slow
def test_export_writes_a_self_contained_directory_that_loads_with_the_same_scores(run_dir, tmp_path, capsys):
    out = tmp_path / "share"
    assert main(["export", str(run_dir), "--out", str(out), "--license", "apache-2.0"]) == 0
    assert "pluralrm export: wrote" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "annotators.json", "config.json", "model.json", "model.safetensors", "schema.json"]
    assert (out / "model.safetensors").read_bytes()[:1] != b"\x80"  # not a pickle (protocol >= 2 starts 0x80)
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "pluralrm"} and any(k.startswith("head/") for k in f.keys())
    original = RewardModel.load(run_dir)
    moved = tmp_path / "elsewhere"
    shutil.move(str(out), moved)
    exported = RewardModel.load(moved)
    for groups in (None, "country=A", "country=B"):
        np.testing.assert_array_equal(exported.score(PROMPTS, RESPONSES, groups=groups),
                                      original.score(PROMPTS, RESPONSES, groups=groups))
    config = json.loads((moved / "config.json").read_text())
    assert config["model_type"] == "pluralrm" and config["groups"] == original.group_labels
    assert config["weights"] == "model.safetensors"
    card = (moved / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\nlibrary_name: pluralrm\n")
    summary = json.loads((run_dir / "summary.json").read_text())["final_eval"]["groups"]
    for label, count in zip(original.group_labels, original.schema.group_counts):
        ev = next(g for g in summary if g["group"] == label)
        assert f"| {label} | {int(count)} | {ev['accuracy']:.3f} | {ev['count']} |" in card
    assert "Trained on: prefs.jsonl." in card and "Not calibrated" in card
    assert main(["export", str(run_dir), "--out", str(moved)]) == 1  # refuses a non-empty --out
    assert "--overwrite" in capsys.readouterr().err


def _tiny_llama_dir(directory: Path) -> Path:
    from hf_oracle import build_tiny
    from test_tokenize import write_decoder_dir

    build_tiny("llama", directory)
    config = json.loads((directory / "config.json").read_text())
    write_decoder_dir(directory, None)  # tokenizer files (it also writes a minimal config.json)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.mark.slow
def test_transformer_backbones_carry_their_tokenizer_and_a_missing_file_is_named(tmp_path):
    pytest.importorskip("torch")
    base = _tiny_llama_dir(tmp_path / "tiny-llama")
    config = ModelConfig(backbone=BackboneConfig(type="transformer", path=str(base), max_length=32, buckets=(16, 32)),
                         head=HeadConfig(type="conditioned", hidden_dim=8))
    model = RewardModel.create(config, SCHEMA, seed=0)
    texts = (["how do you think", "what about weather"], ["yes it is mild", "no rain"])
    expected = model.score(*texts, groups="country=NG")
    from pluralrm.models.export import export_model

    out = export_model(model, tmp_path / "share", license="apache-2.0")
    assert (out / "backbone" / "tokenizer.json").is_file() and (out / "backbone" / "model.safetensors").is_file()
    meta = json.loads((out / "model.json").read_text())
    assert meta["config"]["backbone"]["path"] == "./backbone" and meta["featurizer"]["path"] == "./backbone"
    assert "backbone/tokenizer.json" in meta["export"]["files"]
    assert "base_model: tiny-llama" in (out / "README.md").read_text()
    shutil.rmtree(base)  # the export needs nothing from the original place
    np.testing.assert_allclose(RewardModel.load(out).score(*texts, groups="country=NG"), expected, rtol=1e-5, atol=1e-6)
    (out / "backbone" / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"backbone/tokenizer.json is missing: the exported model directory "
                                              r"lists this tokenizer file"):
        RewardModel.load(out)


def test_a_hub_repo_id_offline_is_a_clear_error_naming_the_id(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match=r"no-such-owner/plural-rm: no such local directory, and the Hugging "
                                              r"Face hub model 'no-such-owner/plural-rm' could not be fetched"):
        RewardModel.load("no-such-owner/plural-rm")


def test_model_card_reports_calibration_temperatures_and_missing_evaluation():
    from score_helpers import tiny_model

    from pluralrm.models.export import model_card

    model = tiny_model()
    model.temperatures.update({"country=NG,language=yo": 1.7, "country=US,language=en": 0.8})
    card = model_card(model, None, "prefs.jsonl", "cc-by-4.0", [])
    assert card.startswith("---\nlicense: cc-by-4.0\n") and "base_model" not in card
    assert "| country=NG,language=yo | 1.700 |" in card and "| country=US,language=en | 0.800 |" in card
    assert "| country=US,language=en | 3 | n/a | n/a |" in card
    assert "Held-out accuracy: not recorded" in card and "Trained on: prefs.jsonl." in card


def test_a_hub_repo_id_loads_the_snapshot_the_hub_client_returns(tmp_path, monkeypatch):
    """The hub is not reachable from tests: the hub client's download is replaced by a local
    exported directory, which checks our side (repo id → snapshot → load), not the hub."""
    import huggingface_hub
    from score_helpers import PROMPTS as P
    from score_helpers import RESPONSES as R
    from score_helpers import tiny_model

    from pluralrm.models.export import export_model

    model = tiny_model()
    share = export_model(model, tmp_path / "share")
    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: asked.append(repo_id) or str(share))
    loaded = RewardModel.load("me/plural-rm")
    assert asked == ["me/plural-rm"]
    np.testing.assert_array_equal(loaded.score(P, R, groups="country=NG"), model.score(P, R, groups="country=NG"))

