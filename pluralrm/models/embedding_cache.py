"""Compute embeddings once, reuse them for every head: the frozen-backbone regime.

``cache_embeddings`` runs any backbone (a pretrained transformer, or the trunk of a trained
reward model) over every distinct (prompt, response) of a ComparisonDataset and writes an
``EmbeddingTable`` (``pluralrm.data.embeddings``); a ``frozen`` backbone with
``path: table.npz`` then trains heads without touching the encoder again.

``EncoderEmbeddings`` is the featurizer behind ``frozen`` backbones whose ``path`` is a
pretrained encoder (a local Hugging Face directory or a preset such as ``minilm-l6``): it embeds
texts on demand with that encoder and memoises them on disk in ``cache_dir`` (one table per
encoder), so repeated runs over the same data pay the encoder once.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from pluralrm.data.embeddings import EmbeddingTable, pair_key
from pluralrm.data.featurize import Featurizer, register_featurizer
from pluralrm.models.compiled import jit_over_state, pad_batch


def _embed_fn(backbone: nnx.Module) -> Callable[[dict], np.ndarray]:
    run = jit_over_state(backbone, lambda module, inputs: module.features(inputs))
    state = nnx.state(backbone)
    return lambda inputs: np.asarray(run(state, {k: jnp.asarray(v) for k, v in inputs.items()}), np.float32)


def embed_pairs(
    backbone: nnx.Module,
    featurizer: Featurizer,
    prompts: Sequence[str],
    responses: Sequence[str],
    batch_size: int = 128,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``backbone.features`` of (prompt, response) pairs, batched. Returns ``[N, D]`` float32."""
    embed = _embed_fn(backbone)
    out = []
    for start in range(0, len(prompts), batch_size):
        stop = min(start + batch_size, len(prompts))
        inputs = featurizer(list(prompts[start:stop]), list(responses[start:stop]))
        # one compiled shape per length bucket, not per batch size
        inputs = pad_batch(inputs, batch_size)
        out.append(embed(inputs)[: stop - start])
        if progress is not None:
            progress(stop, len(prompts))
    return np.concatenate(out) if out else np.zeros((0, backbone.dim), np.float32)


def cache_embeddings(
    dataset: Any,
    backbone: nnx.Module,
    featurizer: Featurizer,
    path: str | Path,
    batch_size: int = 128,
    prompt_in_key: bool = True,
) -> Path:
    """Embeds every distinct (prompt, response) of a ComparisonDataset and writes a table.

    Args:
      dataset: a ComparisonDataset (its chosen and rejected responses are embedded).
      backbone, featurizer: any backbone and the featurizer that feeds it.
      path: where to write the ``.npz`` table.
      prompt_in_key: key by (prompt, response) (default) or by response alone.

    Returns:
      The table's path, ready for ``BackboneConfig(type="frozen", path=...)``.
    """
    prompts, responses, keys, seen = [], [], [], set()
    for column in ("chosen", "rejected"):
        for p, r in zip(dataset["prompt"], dataset[column]):
            key = pair_key(p, r, prompt_in_key)
            if key not in seen:
                seen.add(key)
                keys.append(key)
                prompts.append(p)
                responses.append(r)
    vectors = embed_pairs(backbone, featurizer, prompts, responses, batch_size)
    return EmbeddingTable.write(path, keys, vectors, prompt_in_key)


@dataclass(frozen=True)
class EncoderEmbeddings:
    """Featurizer: ``{"embedding": [N, D]}`` from a pretrained encoder, memoised on disk."""

    path: str
    pooling: str = "auto"
    max_length: int = 256
    cache_dir: str = ""
    buckets: tuple[int, ...] = (1,)
    _state: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _encoder(self):
        if "backbone" not in self._state:
            from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig

            config = TransformerBackboneConfig(path=self.path, pooling=self.pooling, max_length=self.max_length, trainable="none")
            self._state["backbone"] = TransformerBackbone.from_config(config)
            self._state["featurizer"] = config.featurizer()
            self._state["memo"] = self._load_disk_cache()
        return self._state["backbone"], self._state["featurizer"], self._state["memo"]

    @property
    def dim(self) -> int:
        return int(self._encoder()[0].dim)

    def _cache_file(self) -> Path | None:
        if not self.cache_dir:
            return None
        tag = hashlib.sha1(f"{Path(self.path).absolute() if Path(self.path).exists() else self.path}|{self.pooling}|{self.max_length}".encode()).hexdigest()[:16]
        return Path(self.cache_dir) / f"embeddings-{tag}.npz"

    def _load_disk_cache(self) -> dict[str, np.ndarray]:
        file = self._cache_file()
        if file is None or not file.is_file():
            return {}
        table = EmbeddingTable(str(file))
        return table.vectors_by_key()

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        backbone, featurizer, memo = self._encoder()
        keys = [pair_key(p, r) for p, r in zip(prompts, responses)]
        missing = [i for i, k in enumerate(keys) if k not in memo]
        if missing:
            new = embed_pairs(backbone, featurizer, [prompts[i] for i in missing], [responses[i] for i in missing])
            for i, vector in zip(missing, new):
                memo[keys[i]] = vector
            file = self._cache_file()
            if file is not None:
                EmbeddingTable.write(file, list(memo), np.stack(list(memo.values())))
        return {"embedding": np.stack([memo[k] for k in keys]) if keys else np.zeros((0, backbone.dim), np.float32)}

    def to_config(self) -> dict[str, Any]:
        return {"type": "encoder_embeddings", "path": self.path, "pooling": self.pooling,
                "max_length": self.max_length, "cache_dir": self.cache_dir}


register_featurizer("encoder_embeddings", EncoderEmbeddings)
