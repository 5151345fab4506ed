"""Loading Hugging Face safetensors checkpoints into the NNX models (no torch).

:func:`from_pretrained` reads ``config.json``, builds the model *abstractly* with
``nnx.eval_shape`` (no memory for random weights), then streams every tensor of
``model.safetensors`` (or the shards listed in ``model.safetensors.index.json``) through the
family's :class:`~pluralrm.models.transformer.layout.Layout` table: look-up, shape check,
transform, dtype cast and (given a mesh) placement on its shard. Every problem (missing,
unexpected, misshapen or duplicate tensors) is collected and reported in one CheckpointError
whose first line names the first problem.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from safetensors import safe_open

from pluralrm.errors import CheckpointError, ConfigError
from pluralrm.models.transformer.decoder import DecoderConfig, DecoderModel, decoder_layout
from pluralrm.models.transformer.encoder import EncoderConfig, EncoderModel, encoder_layout
from pluralrm.models.transformer.layout import Layout
from pluralrm.pretrained import model_family, read_config, resolve_pretrained

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
MAX_REPORTED = 20

TransformerModel = EncoderModel | DecoderModel


@dataclass(frozen=True)
class Family:
    """How to parse, build and read one family of checkpoints."""

    config_from_hf: Callable[[dict[str, Any], str], Any]
    build: Callable[..., TransformerModel]
    layout: Callable[[Any, bool], Layout]


FAMILIES: dict[str, Family] = {
    "encoder": Family(
        EncoderConfig.from_hf,
        lambda config, *, dtype, remat, with_lm_head, rngs: EncoderModel(config, dtype=dtype, remat=remat, rngs=rngs),
        lambda config, with_lm_head: encoder_layout(config),
    ),
    "decoder": Family(
        DecoderConfig.from_hf,
        lambda config, *, dtype, remat, with_lm_head, rngs: DecoderModel(
            config, dtype=dtype, remat=remat, with_lm_head=with_lm_head, rngs=rngs
        ),
        decoder_layout,
    ),
}


def resolve_dtype(dtype: Any) -> Any:
    """``"float32"``/``"bfloat16"``/``"float16"`` or a jnp dtype -> jnp dtype (ConfigError otherwise)."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ConfigError(f"dtype {dtype!r} is not supported; choose one of {sorted(DTYPES)}")
        return DTYPES[dtype]
    name = jnp.dtype(dtype).name
    if name not in DTYPES:
        raise ConfigError(f"dtype {name!r} is not supported; choose one of {sorted(DTYPES)}")
    return DTYPES[name]


def load_config(path: str | Path) -> tuple[str, EncoderConfig | DecoderConfig]:
    """``(family, config)`` of a local model directory or preset."""
    directory = resolve_pretrained(path).directory
    raw = read_config(directory)
    file = str(directory / "config.json")
    _check_plausible(raw, file)
    family = model_family(raw, file)
    return family, FAMILIES[family].config_from_hf(raw, file)


# Bounds no real checkpoint comes near (the largest open models have ~128 layers, width ~16k,
# vocabularies ~256k): a config.json beyond them is refused before anything is built from it.
PLAUSIBLE_MAX = {"num_hidden_layers": 4096, "hidden_size": 1 << 17, "intermediate_size": 1 << 20,
                 "num_attention_heads": 4096, "num_key_value_heads": 4096, "vocab_size": 1 << 24,
                 "max_position_embeddings": 1 << 24, "head_dim": 1 << 14}


def _check_plausible(raw: dict[str, Any], file: str) -> None:
    for key, most in PLAUSIBLE_MAX.items():
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
            raise CheckpointError(f"{file}: {key}={value!r} is not a plausible size (a positive integer up to {most:,})")


def checkpoint_files(directory: Path) -> list[Path]:
    """The safetensors files of a model directory (the shards of an index, or the single file)."""
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index}: not a valid safetensors index ({type(e).__name__}: {e})") from None
        files = [directory / name for name in dict.fromkeys(weight_map.values())]
        absent = [f.name for f in files if not f.is_file()]
        if absent:
            raise CheckpointError(f"{index}: lists shard {absent[0]!r}, which is not in {directory}")
        return files
    single = directory / "model.safetensors"
    if single.is_file():
        return [single]
    others = sorted(p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".h5", ".msgpack"))
    hint = f" (found {others}: convert them to safetensors with transformers' save_pretrained)" if others else ""
    raise CheckpointError(f"{directory}: no model.safetensors or model.safetensors.index.json{hint}")


def from_pretrained(
    path: str | Path,
    *,
    dtype: Any = "float32",
    remat: bool = False,
    with_lm_head: bool = False,
    mesh: Mesh | None = None,
) -> TransformerModel:
    """Builds an encoder or decoder from a local Hugging Face directory (or preset name).

    Args:
        path: local directory with ``config.json`` and safetensors weights, or a preset name.
            Never a hub id: nothing is downloaded.
        dtype: parameter and compute dtype (``"float32"``, ``"bfloat16"``, ``"float16"``).
        remat: recompute each layer's activations in the backward pass (``nnx.remat``).
        with_lm_head: decoders only: also load ``lm_head.weight`` of untied checkpoints so that
            ``model.logits`` works (tied checkpoints reuse the input embeddings).
        mesh: if given, every parameter is placed directly on its shard
            (:func:`parameter_shardings`), never materialised whole on one device.
    Returns:
        An :class:`EncoderModel` or :class:`DecoderModel` holding the checkpoint's weights.
    Raises:
        CheckpointError: bad directory, unsupported model_type, or tensors that do not fit.
    """
    directory = resolve_pretrained(path).directory
    family_name, config = load_config(directory)
    family = FAMILIES[family_name]
    dtype = resolve_dtype(dtype)
    _check_declared_size(family, config, dtype, with_lm_head, directory)
    abstract_model = nnx.eval_shape(
        lambda: family.build(config, dtype=dtype, remat=remat, with_lm_head=with_lm_head, rngs=nnx.Rngs(0))
    )
    graphdef, abstract = nnx.split(abstract_model)
    params = dict(nnx.to_flat_state(abstract))
    layout = family.layout(config, with_lm_head)
    _check_layout_covers(layout, params)
    shardings = _flat_shardings(abstract, mesh) if mesh is not None else {}

    def place(path: tuple, array: np.ndarray) -> jax.Array:
        if path in shardings:
            return jax.device_put(array, shardings[path])
        return jnp.asarray(array)

    loaded = _read_tensors(checkpoint_files(directory), layout, params, dtype, place, config)
    state = nnx.from_flat_state([(path, var.replace(loaded[path])) for path, var in params.items()])
    return nnx.merge(graphdef, state)


def _check_declared_size(family: Any, config: Any, dtype: Any, with_lm_head: bool, directory: Path) -> None:
    """Refuses a config.json whose model would not fit in memory, before anything is read or
    built: the size is extrapolated from abstract builds of one and two layers (exact, since
    layers are alike; a config of a billion layers costs two tiny traces, not a billion)."""
    import dataclasses

    from pluralrm.models.artefacts import memory_limit_bytes

    def size(layers: int) -> float:
        per_layer = {"sliding_windows": config.sliding_windows[:layers]} if getattr(config, "sliding_windows", ()) else {}
        small = dataclasses.replace(config, num_layers=layers, **per_layer)
        abstract = nnx.eval_shape(lambda: family.build(small, dtype=dtype, remat=False, with_lm_head=with_lm_head,
                                                       rngs=nnx.Rngs(0)))
        return float(sum(float(np.prod(x.shape, dtype=np.float64)) * np.dtype(x.dtype).itemsize
                         for x in jax.tree.leaves(nnx.state(abstract))))

    try:
        one = size(1)
        total = one + (size(2) - one) * (int(config.num_layers) - 1)
    except (ValueError, TypeError, OverflowError, MemoryError) as e:
        raise CheckpointError(f"{directory / 'config.json'}: the model it declares cannot be built ({e})") from None
    limit = memory_limit_bytes()
    if total > limit:
        raise CheckpointError(
            f"{directory / 'config.json'} declares a model of {total / 2**30:.1f} GiB of parameters, over the "
            f"{limit / 2**30:.1f} GiB limit (set PLURALRM_MAX_MODEL_BYTES to allow it)"
        )


def parameter_shardings(state: nnx.State, mesh: Mesh) -> nnx.State:
    """``NamedSharding`` per parameter from its ``out_sharding`` metadata, fitted to ``mesh``.

    A mesh axis that the mesh lacks, or whose size does not divide the dimension (e.g. a vocab
    of 30522 rows over 8 devices), is dropped for that dimension, which is then replicated.
    Use as ``jax.device_put(nnx.state(model), parameter_shardings(nnx.state(model), mesh))``.

    Args:
        state: ``nnx.state(model)`` (concrete or abstract).
        mesh: the device mesh (axes such as ``data`` and ``model``).
    Returns:
        A State of the same structure whose leaves are ``NamedSharding``s.
    """
    return nnx.from_flat_state(
        [(path, var.replace(NamedSharding(mesh, _fit_spec(var, mesh)))) for path, var in nnx.to_flat_state(state)]
    )


def _fit_spec(var: nnx.Variable, mesh: Mesh) -> PartitionSpec:
    shape = var.shape
    axes = tuple(var.get_metadata().get("out_sharding") or ())
    fitted = []
    for i, axis in enumerate(axes + (None,) * (len(shape) - len(axes))):
        size = mesh.shape.get(axis, 0) if isinstance(axis, str) else 0
        fitted.append(axis if size and shape[i] % size == 0 else None)
    return PartitionSpec(*fitted)


def _flat_shardings(abstract: nnx.State, mesh: Mesh) -> dict[tuple, NamedSharding]:
    return {path: var.get_raw_value() for path, var in nnx.to_flat_state(parameter_shardings(abstract, mesh))}


def _check_layout_covers(layout: Layout, params: dict[tuple, Any]) -> None:
    """The table and the module must describe the same parameters (a bug here is ours)."""
    table_paths = {path for path, _ in layout.tensors.values()}
    if table_paths != set(params):
        raise RuntimeError(
            f"internal layout mismatch: only in module {sorted(set(params) - table_paths)[:3]}, "
            f"only in table {sorted(table_paths - set(params))[:3]}"
        )


def _read_tensors(
    files: list[Path],
    layout: Layout,
    params: dict[tuple, Any],
    dtype: Any,
    place: Callable[[tuple, np.ndarray], jax.Array],
    config: Any,
) -> dict[tuple, jax.Array]:
    """Reads and converts every tensor; raises one CheckpointError listing all problems."""
    loaded: dict[tuple, jax.Array] = {}
    seen: dict[str, str] = {}
    bad_shape: list[tuple[int, str]] = []  # (table position, message): reported in table order
    order = {name: i for i, name in enumerate(layout.tensors)}
    unexpected: list[str] = []
    prefix = ""
    for file in files:
        with safe_open(str(file), framework="numpy") as f:
            for raw_name in f.keys():
                name = layout.normalize(raw_name)
                shape = tuple(f.get_slice(raw_name).get_shape())
                if name not in layout.tensors:
                    if not layout.is_ignored(name):
                        unexpected.append(
                            f"unexpected tensor {raw_name!r} with shape {shape} in {file.name} "
                            f"(not part of a {config.model_type} model)"
                        )
                    continue
                prefix = raw_name[: len(raw_name) - len(name)] if raw_name.endswith(name) else prefix
                if name in seen:
                    unexpected.append(f"tensor {raw_name!r} appears twice (in {seen[name]} and {file.name})")
                    continue
                seen[name] = file.name
                path, transform = layout.tensors[name]
                expected = transform.checkpoint_shape(params[path].shape)
                if shape != expected:
                    bad_shape.append((
                        order[name],
                        f"tensor {raw_name!r} in {file.name} has shape {shape}, but config.json implies {expected}",
                    ))
                    continue
                loaded[path] = place(path, transform.apply(f.get_tensor(raw_name)).astype(dtype))
    missing = [
        f"missing tensor {prefix + name!r} (expected shape {transform.checkpoint_shape(params[path].shape)})"
        for name, (path, transform) in layout.tensors.items()
        if name not in seen
    ]
    problems = [message for _, message in sorted(bad_shape)] + missing + unexpected
    if problems:
        where = files[0].parent
        listing = "\n".join(f"  - {p}" for p in problems[:MAX_REPORTED])
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise CheckpointError(
            f"{where}: the checkpoint does not fit its config.json: {problems[0]}. "
            f"{len(problems)} problem(s):\n{listing}{more}\n"
            "Check that config.json and the safetensors files come from the same model."
        )
    return loaded
