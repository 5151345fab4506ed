"""Checkpoint loading: prefixes, shards, dtypes, sharding metadata, and errors users can act on."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hf_oracle import padded_batch
from safetensors.numpy import load_file, save_file

from pluralrm.errors import CheckpointError, ConfigError
from pluralrm.models.transformer import from_pretrained, parameter_shardings
from pluralrm.models.transformer.layers import fsdp_axes


def run(model, ids, mask) -> np.ndarray:
    return np.asarray(model(jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32)), np.float32)


def params(model) -> dict:
    return {path: np.asarray(v.get_value()) for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite_tensors(directory: Path, edit) -> None:
    tensors = load_file(str(directory / "model.safetensors"))
    save_file(edit(dict(tensors)), str(directory / "model.safetensors"))


@pytest.mark.parametrize("with_prefix", ["bert-mlm", "llama-lm"])
def test_base_model_prefix_and_task_heads(tiny_checkpoint, tmp_path, with_prefix):
    """``bert.``/``model.`` prefixed checkpoints with task heads (cls.*, lm_head) load as backbones;
    a prefix-free copy gives the same parameters."""
    prefixed_dir, _ = tiny_checkpoint(with_prefix)
    names = load_file(str(prefixed_dir / "model.safetensors")).keys()
    assert all(n.startswith(("bert.", "cls.", "model.", "lm_head.")) for n in names)
    stripped = copy_checkpoint(prefixed_dir, tmp_path / "stripped")
    rewrite_tensors(stripped, lambda t: {k.split(".", 1)[1] if k.startswith(("bert.", "model.")) else k: v for k, v in t.items()})
    a, b = params(from_pretrained(prefixed_dir)), params(from_pretrained(stripped))
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_array_equal(a[path], b[path])


def test_sharded_checkpoint_loads_identically(tiny_checkpoint, tmp_path):
    directory, _ = tiny_checkpoint("qwen3")
    tensors = load_file(str(directory / "model.safetensors"))
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    shutil.copy(directory / "config.json", sharded / "config.json")
    names = sorted(tensors)
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2:])):
        file = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(sharded / file))
        weight_map.update({n: file for n in part})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    a, b = params(from_pretrained(directory)), params(from_pretrained(sharded))
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_array_equal(a[path], b[path])


def test_index_naming_an_absent_shard(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "gone.safetensors"}}))
    with pytest.raises(CheckpointError, match="gone.safetensors"):
        from_pretrained(directory)


@pytest.mark.parametrize("name", ["bert", "llama"])
def test_bfloat16_load_is_close(tiny_checkpoint, name):
    directory, _ = tiny_checkpoint(name)
    ids, mask = padded_batch(seed=6)
    full = run(from_pretrained(directory), ids, mask)
    half_model = from_pretrained(directory, dtype="bfloat16")
    assert all(v.dtype == jnp.bfloat16 for v in params(half_model).values())
    half = run(half_model, ids, mask)
    scale = np.abs(full[mask > 0]).max()
    assert np.abs(half - full)[mask > 0].max() < 0.05 * scale


def test_unknown_dtype(tiny_checkpoint):
    with pytest.raises(ConfigError, match="bfloat16"):
        from_pretrained(tiny_checkpoint("bert")[0], dtype="int8")


# --------------------------------------------------------------------------- errors
def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such local directory"):
        from_pretrained(tmp_path / "nope")


@pytest.mark.parametrize("hub_id", ["bert-base-uncased", "Qwen/Qwen3-0.6B"])
def test_hub_id_is_refused_without_download(hub_id, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="never downloads") as info:
        from_pretrained(hub_id)
    assert "local directory" in str(info.value)


def test_missing_tensor_is_named_with_expected_shape(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    rewrite_tensors(directory, lambda t: {k: v for k, v in t.items() if k != "encoder.layer.1.output.dense.weight"})
    with pytest.raises(CheckpointError) as info:
        from_pretrained(directory)
    first_line = str(info.value).splitlines()[0]
    assert "missing tensor 'encoder.layer.1.output.dense.weight'" in first_line
    assert "(32, 64)" in first_line


def test_shape_mismatch_names_both_shapes(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("llama")[0], tmp_path / "ckpt")
    config = json.loads((directory / "config.json").read_text())
    config["intermediate_size"] = 48
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        from_pretrained(directory)
    message = str(info.value)
    assert "'layers.0.mlp.gate_proj.weight'" in message.splitlines()[0]
    assert "(64, 32)" in message and "(48, 32)" in message
    # gate and up (weight and bias) and down (weight) in each of 2 layers: all reported at once
    assert "10 problem(s)" in message


def test_unexpected_tensor_is_rejected(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    extra = "encoder.layer.0.attention.self.distance_embedding.weight"
    rewrite_tensors(directory, lambda t: {**t, extra: np.zeros((79, 8), np.float32)})
    with pytest.raises(CheckpointError, match=f"unexpected tensor '{extra}' with shape \\(79, 8\\)"):
        from_pretrained(directory)


def test_unsupported_model_type_lists_supported(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    (directory / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="'gpt2' is not supported") as info:
        from_pretrained(directory)
    for supported in ("bert", "roberta", "xlm-roberta", "llama", "mistral", "qwen2", "qwen3"):
        assert f"'{supported}'" in str(info.value)


def test_pytorch_bin_only_directory(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    (directory / "model.safetensors").rename(directory / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        from_pretrained(directory)


def test_unsupported_position_embedding_type(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    config = json.loads((directory / "config.json").read_text())
    config["position_embedding_type"] = "relative_key"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="relative_key"):
        from_pretrained(directory)


# --------------------------------------------------------------------------- sharding
def test_matrices_carry_fsdp_metadata_on_their_largest_axis(tiny_checkpoint):
    model = from_pretrained(tiny_checkpoint("llama")[0])
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        axes = var.get_metadata().get("out_sharding")
        if var.ndim >= 2:
            assert axes == fsdp_axes(var.shape), path
            assert axes[int(np.argmax(var.shape))] == "model"
        else:
            assert axes is None, path
    assert fsdp_axes((32, 64)) == (None, "model") and fsdp_axes((97, 32)) == ("model", None)


def test_parameter_shardings_drop_axes_that_do_not_divide(tiny_checkpoint):
    model = from_pretrained(tiny_checkpoint("bert")[0])  # vocab 97 is prime
    mesh = jax.sharding.AbstractMesh((1, 2), ("data", "model"))
    specs = {path: s.get_raw_value().spec for path, s in nnx.to_flat_state(parameter_shardings(nnx.state(model), mesh))}
    assert specs[("embeddings", "word", "embedding")] == jax.sharding.PartitionSpec(None, None)
    assert specs[("layers", 0, "up", "kernel")] == jax.sharding.PartitionSpec(None, "model")
    assert specs[("layers", 0, "up", "bias")] == jax.sharding.PartitionSpec(None)


def test_load_onto_a_mesh(tiny_checkpoint):
    directory, _ = tiny_checkpoint("qwen2")
    mesh = jax.make_mesh((1, 1), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    placed = from_pretrained(directory, mesh=mesh)
    kernel = placed.layers[0].up.kernel.get_value()
    assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, "model")
    ids, mask = padded_batch(seed=7)
    np.testing.assert_array_equal(run(placed, ids, mask), run(from_pretrained(directory), ids, mask))


# ---- untrusted directories: refused before anything is read or allocated
def test_absurd_declared_size_is_refused_before_allocating(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("llama")[0], tmp_path / "ckpt")
    config = json.loads((directory / "config.json").read_text())
    config.update(hidden_size=1 << 14, intermediate_size=1 << 16, num_hidden_layers=4000)
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"declares a model of [\d,.]+ GiB of parameters, over the"):
        from_pretrained(directory)


@pytest.mark.parametrize("key, value", [("num_hidden_layers", 10**9), ("hidden_size", -8), ("vocab_size", "many"),
                                        ("intermediate_size", 2.5)])
def test_implausible_sizes_are_refused_before_building(tiny_checkpoint, tmp_path, key, value):
    directory = copy_checkpoint(tiny_checkpoint("llama")[0], tmp_path / "ckpt")
    config = json.loads((directory / "config.json").read_text())
    config[key] = value
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"{key}=.* is not a plausible size"):
        from_pretrained(directory)


def test_weights_linked_from_outside_are_refused(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    outside = tmp_path / "elsewhere.safetensors"
    (directory / "model.safetensors").rename(outside)
    (directory / "model.safetensors").symlink_to(outside)
    with pytest.raises(CheckpointError, match="symbolic link .* outside"):
        from_pretrained(directory)


def test_hub_cache_snapshot_links_are_allowed(tiny_checkpoint, tmp_path):
    # models--org--name/snapshots/<sha>/file -> ../../blobs/<hash>: how the HF cache lays files out
    source = tiny_checkpoint("bert")[0]
    repo = tmp_path / "models--org--tiny"
    snapshot, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for i, f in enumerate(sorted(p for p in source.iterdir() if p.is_file())):
        shutil.copy(f, blobs / f"blob{i}")
        (snapshot / f.name).symlink_to(Path("../../blobs") / f"blob{i}")
    reference = params(from_pretrained(source))
    loaded = params(from_pretrained(snapshot))
    assert reference.keys() == loaded.keys()
    for k in reference:
        np.testing.assert_array_equal(reference[k], loaded[k])


def test_a_fifo_in_the_directory_is_refused_not_read(tiny_checkpoint, tmp_path):
    import os

    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    (directory / "model.safetensors").unlink()
    os.mkfifo(directory / "model.safetensors")  # reading it would block forever
    with pytest.raises(CheckpointError, match="not a regular file"):
        from_pretrained(directory)


def test_a_huge_config_json_is_refused(tiny_checkpoint, tmp_path):
    directory = copy_checkpoint(tiny_checkpoint("bert")[0], tmp_path / "ckpt")
    with open(directory / "config.json", "r+b") as f:
        f.truncate(17 << 20)  # sparse: 17 MiB on paper
    with pytest.raises(CheckpointError, match="over the .*-byte limit for metadata"):
        from_pretrained(directory)
