"""A model directory on disk: model.json, schema.json, annotators.json and the weights.

::

    model.json       format tag, ModelConfig, featurizer config, per-group temperatures
    schema.json      GroupSchema (attributes, vocabularies, groups)
    annotators.json  annotator vocabulary (id = index + 1; 0 = unknown)
    weights/         Orbax checkpoint of the parameters (and the group table)

Writing and validating the metadata, storing fitted temperatures, and restoring Orbax weights
into a ``RewardNet`` after checking every array's shape. Imports the net
(``pluralrm.models.net``), never ``pluralrm.models.reward_model``: ``RewardModel.save``/``load``
and the run-checkpoint loader call this module, not the other way round.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pluralrm.configs import from_dict, to_dict
from pluralrm.data.featurize import featurizer_from_config
from pluralrm.data.schema import GroupSchema
from pluralrm.errors import CheckpointError, ConfigError, DataError
from pluralrm.models.artefacts import check_directory, localize_paths, read_json
from pluralrm.models.config import ModelConfig
from pluralrm.models.net import RewardNet, saved_state

MODEL_FORMAT = "pluralrm-model"
MODEL_VERSION = 1


def write_model_metadata(path: Path, config, schema, featurizer, annotators, temperatures,
                         objective: Mapping[str, Any] | None = None) -> None:
    """model.json, schema.json and annotators.json of a model directory.

    ``objective`` (the trainer passes it): the training objective's settings that later
    analyses need without reading the training config (``group_dropout``, ``loss``, ``margin``,
    ``tie_param``; ``pluralrm.explain``'s weight refits), stored as model.json's ``"objective"``.
    Local paths the model reads again when loaded (a pretrained directory, an embedding table or
    cache) are written absolute: a path relative to the training run's working directory would
    not resolve when the model is scored or served from another one.
    """
    config_dict = to_dict(config)
    backbone = config_dict["backbone"]
    featurizer_dict = featurizer.to_config()
    for entries, key in ((backbone, "path"), (backbone, "embedding_cache"), (featurizer_dict, "path"),
                         (featurizer_dict, "cache_dir")):
        if isinstance(entries.get(key), str):
            entries[key] = _absolute_local_path(entries[key])
    meta = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "config": config_dict,
        "featurizer": featurizer_dict,
        "temperatures": dict(temperatures),
    }
    if objective is not None:
        meta["objective"] = dict(objective)
    (path / "model.json").write_text(json.dumps(meta, indent=1))
    schema.save(path / "schema.json")
    (path / "annotators.json").write_text(json.dumps(list(annotators)))


def _absolute_local_path(text: str) -> str:
    """``text`` made absolute when it names an existing local file or directory (not a preset)."""
    from pluralrm.models.transformer.presets import PRESETS

    if not text or text in PRESETS:
        return text
    local = Path(text).expanduser()
    return str(local.absolute()) if local.exists() else text


def store_temperatures(path: str | Path, temperatures: Mapping[str, float]) -> None:
    """Stores per-group temperatures in a model or run directory's ``model.json`` (atomically);
    ``RewardModel.load`` then applies them in ``predict``/``predict_preference``."""
    from pluralrm.atomic import write_json_atomic

    meta_path = Path(path) / "model.json"
    meta = read_json(meta_path, max_bytes=16 << 20)
    bad = {k: v for k, v in temperatures.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise ConfigError(f"temperatures must be positive and finite, got {bad}")
    meta["temperatures"] = {str(k): float(v) for k, v in temperatures.items()}
    write_json_atomic(meta_path, meta)


def read_model_metadata(path: Path):
    """Reads and validates what ``write_model_metadata`` wrote. Raises CheckpointError."""
    meta_path = path / "model.json"
    if not meta_path.is_file():
        raise CheckpointError(
            f"{path} is not a pluralrm model directory: model.json is missing "
            "(pass a directory written by RewardModel.save or a `pluralrm train` run directory)"
        )
    check_directory(path)
    try:
        meta = read_json(meta_path, max_bytes=16 << 20)
    except CheckpointError as e:
        raise CheckpointError(f"cannot read model metadata: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{meta_path}: not a pluralrm model file (format tag missing)")
    localize_paths(meta, path)  # exported directories: ./backbone, and every listed file present
    if meta.get("version") != MODEL_VERSION:
        raise CheckpointError(
            f"{meta_path}: model format version {meta.get('version')!r}, this pluralrm reads "
            f"{MODEL_VERSION}"
        )
    try:
        config = from_dict(ModelConfig, meta.get("config"))
        featurizer = featurizer_from_config(meta.get("featurizer") or {})
    except ConfigError as e:
        raise CheckpointError(f"{meta_path}: {e}") from None
    schema_dict = read_json(path / "schema.json")
    if not isinstance(schema_dict, dict):
        raise CheckpointError(f"{path / 'schema.json'}: a group schema must be a JSON object")
    try:
        schema = GroupSchema.from_dict(schema_dict, source=str(path / "schema.json"))
    except DataError as e:
        raise CheckpointError(str(e)) from None
    annotators = read_json(path / "annotators.json")
    if not isinstance(annotators, list) or not all(isinstance(a, str) for a in annotators):
        raise CheckpointError(f"{path / 'annotators.json'}: must be a JSON list of strings")
    temperatures = meta.get("temperatures") or {}
    if not isinstance(temperatures, dict) or not all(
        isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in temperatures.values()
    ):
        raise CheckpointError(f"{meta_path}: temperatures must map group labels to positive numbers")
    return config, schema, featurizer, tuple(annotators), {k: float(v) for k, v in temperatures.items()}


def restore_weights(net: RewardNet, weights: Path) -> None:
    """Restores saved parameters into ``net``, checking every array's shape first."""
    import orbax.checkpoint as ocp

    if not weights.is_dir():
        raise CheckpointError(f"{weights} is missing: the model directory has no weights")
    target = saved_state(net).to_pure_dict()
    with ocp.StandardCheckpointer() as ckpt:
        try:
            saved = ckpt.metadata(weights)
        except Exception as e:  # orbax raises several types for unreadable directories
            raise CheckpointError(f"{weights}: not a readable Orbax checkpoint ({e})") from None
        saved_tree = getattr(saved, "item_metadata", saved)
        check_tree_shapes(target, saved_tree, str(weights))
        try:
            restored = ckpt.restore(weights, jax.tree.map(abstract_array, target))
        except Exception as e:
            raise CheckpointError(f"{weights}: cannot restore weights ({e})") from None
    nnx.update(net, restored)


def check_tree_shapes(expected: Any, saved: Any, where: str) -> None:
    """Raises CheckpointError naming the first array whose presence or shape differs."""
    exp = {_path_name(k): v for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    got = {_path_name(k): v for k, v in jax.tree_util.tree_leaves_with_path(saved)}
    for key, value in exp.items():
        if key not in got:
            raise CheckpointError(
                f"{where}: tensor {key} (shape {tuple(np.shape(value))}) is missing from the "
                "checkpoint; was it saved from a different model config?"
            )
        shape = tuple(getattr(got[key], "shape", ()))
        if shape != tuple(np.shape(value)):
            raise CheckpointError(
                f"{where}: tensor {key} has shape {shape} in the checkpoint but the model "
                f"(built from its model.json and schema.json) expects {tuple(np.shape(value))}; "
                "the schema or config does not match these weights"
            )
    extra = sorted(set(got) - set(exp))
    if extra:
        raise CheckpointError(f"{where}: unexpected tensor {extra[0]} in the checkpoint")


def _path_name(path) -> str:
    """``backbone/mlp/layers/0/bias`` (list indices and string keys spelled alike)."""
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def abstract_array(x) -> jax.ShapeDtypeStruct:
    """The shape and dtype of ``x``: Orbax's restore target for it (nothing allocated).

    Restored onto this process's first device, whatever mesh saved it (else Orbax refuses a
    checkpoint written on another number of devices: "Topology mismatch").
    """
    return jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype, sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]))


__all__ = ["MODEL_FORMAT", "MODEL_VERSION", "abstract_array", "check_tree_shapes", "read_model_metadata",
           "restore_weights", "store_temperatures", "write_model_metadata"]
