"""Untrusted checkpoint directories are refused with clear errors before anything is allocated."""
import json
import os
import re
from pathlib import Path

import pytest

from pluralrm.data.schema import GroupSchema
from pluralrm.errors import CheckpointError
from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

PACKAGE = Path(__file__).resolve().parents[2] / "pluralrm"


@pytest.fixture
def saved(tmp_path):
    schema = GroupSchema.from_columns({"country": ["NG", "US"]})
    config = ModelConfig(backbone=BackboneConfig(num_buckets=256, embed_dim=4, hidden_dims=(8,)), head=HeadConfig(hidden_dim=4))
    return RewardModel.create(config, schema).save(tmp_path / "m")


def test_symlink_out_of_the_directory_is_refused(saved, tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (saved / "annotators.json").unlink()
    os.symlink(outside, saved / "annotators.json")
    with pytest.raises(CheckpointError, match="symbolic link .* outside"):
        RewardModel.load(saved)


def test_symlink_inside_the_directory_is_fine(saved):
    (saved / "annotators.copy.json").write_text("[]")
    os.symlink(saved / "annotators.copy.json", saved / "link.json")
    RewardModel.load(saved)


def test_special_file_is_refused(saved):
    os.mkfifo(saved / "weights" / "pipe")
    with pytest.raises(CheckpointError, match="not a regular file"):
        RewardModel.load(saved)


def test_huge_declared_model_is_refused_without_allocating(saved):
    meta = json.loads((saved / "model.json").read_text())
    meta["config"]["backbone"]["num_buckets"] = 1 << 40
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"declares a model of .* GiB of parameters, over the"):
        RewardModel.load(saved)


def test_huge_vocabulary_is_refused(saved, monkeypatch):
    schema = json.loads((saved / "schema.json").read_text())
    schema["vocabularies"][0] = [f"c{i}" for i in range(200_000)]
    (saved / "schema.json").write_text(json.dumps(schema))
    monkeypatch.setenv("PLURALRM_MAX_MODEL_BYTES", str(1 << 20))
    with pytest.raises(CheckpointError, match="over the"):
        RewardModel.load(saved)


def test_oversized_metadata_is_refused(saved):
    with open(saved / "model.json", "a") as fh:
        fh.write(" " * (17 << 20))
    with pytest.raises(CheckpointError, match="over the .*-byte limit"):
        RewardModel.load(saved)


def test_absurd_saved_shapes_are_refused_before_reading(saved):
    schema = json.loads((saved / "schema.json").read_text())
    schema["vocabularies"][0] = schema["vocabularies"][0] + ["FR", "DE"]
    (saved / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(CheckpointError, match="shape"):
        RewardModel.load(saved)


def test_the_package_never_unpickles_or_executes_loaded_text():
    """Static guard: no pickle, eval/exec, unsafe YAML or remote code anywhere in the package."""
    forbidden = [r"\bimport pickle\b", r"\bpickle\.load", r"(?<![\w.])eval\(", r"(?<![\w.])exec\(",
                 r"yaml\.load\(", r"yaml\.unsafe_load", r"trust_remote_code\s*=\s*True", r"allow_pickle\s*=\s*True"]
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for pattern in forbidden:
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(PACKAGE)}: {pattern}")
    assert not offenders, offenders
