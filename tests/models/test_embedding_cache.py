import sys
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from pluralrm.data.embeddings import EmbeddingTable
from pluralrm.errors import DataError
from pluralrm.models.backbones import build_backbone
from pluralrm.models.config import BackboneConfig
from pluralrm.models.embedding_cache import cache_embeddings, embed_pairs
from pluralrm.train import fit, load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from tiny_run import make_dataset  # noqa: E402


def test_cache_embeddings_round_trip_and_frozen_training(tmp_path):
    train, test = make_dataset(300)
    backbone, featurizer = build_backbone(
        BackboneConfig(num_buckets=1 << 10, embed_dim=8, hidden_dims=(12,)), nnx.Rngs(0)
    )
    both = train.select(range(len(train)))
    from datasets import concatenate_datasets

    path = cache_embeddings(concatenate_datasets([both, test]), backbone, featurizer, tmp_path / "e.npz", batch_size=64)
    table = EmbeddingTable(str(path))
    assert table.dim == 12
    direct = embed_pairs(backbone, featurizer, train["prompt"][:5], train["chosen"][:5])
    np.testing.assert_allclose(table(train["prompt"][:5], train["chosen"][:5])["embedding"], direct, rtol=1e-6)
    with pytest.raises(DataError, match="no precomputed embedding"):
        table(["unseen prompt"], ["unseen response"])

    config = load_config(None, [
        "model.backbone.type=frozen", f"model.backbone.path={path}", "model.backbone.hidden_dims=[8]",
        "model.head.hidden_dim=8", "train.steps=20", "train.batch_size=16", "train.progress=false",
        "eval.every=20", f"run_dir={tmp_path / 'run'}", "checkpoint.async_save=false",
    ])
    model, result = fit(config, train, test)
    assert result.steps == 20
    from pluralrm.models import RewardModel

    loaded = RewardModel.load(tmp_path / "run")
    np.testing.assert_array_equal(
        loaded.score(test["prompt"][:4], test["chosen"][:4]), model.score(test["prompt"][:4], test["chosen"][:4])
    )


def test_table_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("nope")
    with pytest.raises(DataError, match="cannot read embedding table"):
        EmbeddingTable(str(bad))
    with pytest.raises(DataError, match="keys repeat"):
        EmbeddingTable.write(tmp_path / "t.npz", ["a", "a"], np.zeros((2, 3)))
    path = EmbeddingTable.write(tmp_path / "t.npz", ["a", "b"], np.array([[1, 2], [3, np.nan]]))
    with pytest.raises(DataError, match="non-finite"):
        EmbeddingTable(str(path))


def test_vectors_by_key_gives_back_what_was_written(tmp_path):
    from pluralrm.data.embeddings import pair_key

    keys = [pair_key("p", "a"), pair_key("p", "b")]
    path = EmbeddingTable.write(tmp_path / "t.npz", keys, np.array([[1.0, 2.0], [3.0, 4.0]]))
    got = EmbeddingTable(str(path)).vectors_by_key()
    assert list(got) == keys
    np.testing.assert_array_equal(np.stack(list(got.values())), [[1, 2], [3, 4]])
    assert all(v.dtype == np.float32 for v in got.values())
