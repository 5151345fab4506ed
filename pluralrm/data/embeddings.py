"""Precomputed embeddings of (prompt, response) pairs, as a lookup featurizer.

The cheap regime of pluralistic reward modeling (PAL and most of its successors) trains
group-conditioned heads on frozen embeddings computed once. ``EmbeddingTable`` stores them as
an ``.npz`` file (keys as a unicode array, vectors as float32; no pickle) and is a Featurizer:
``table(prompts, responses) -> {"embedding": float32 [N, E]}``. A key is the prompt and the
response joined by ``KEY_SEP``; a table built from responses alone (``prompt_in_key=False``)
ignores prompts. A text missing from the table is an error that names it, never a zero vector.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.data.featurize import register_featurizer
from pluralrm.errors import DataError

KEY_SEP = "\x1f"


def pair_key(prompt: str, response: str, prompt_in_key: bool = True) -> str:
    return f"{prompt}{KEY_SEP}{response}" if prompt_in_key else response


@dataclass(frozen=True)
class EmbeddingTable:
    """A table of embeddings keyed by (prompt, response); see the module docstring."""

    path: str
    buckets: tuple[int, ...] = (1,)
    _keys: dict[str, int] = field(init=False, repr=False, compare=False)
    _vectors: np.ndarray = field(init=False, repr=False, compare=False)
    _prompt_in_key: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        path = Path(self.path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys, vectors = npz["keys"], npz["vectors"]
                prompt_in_key = bool(npz["prompt_in_key"]) if "prompt_in_key" in npz else True
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"cannot read embedding table ({e}); expected an .npz with 'keys' and 'vectors'", file=str(path)) from None
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise DataError(f"embedding table has {len(keys)} keys but vectors of shape {vectors.shape}", file=str(path))
        if not np.all(np.isfinite(vectors)):
            raise DataError("embedding table holds non-finite values", file=str(path))
        object.__setattr__(self, "_keys", {str(k): i for i, k in enumerate(keys.tolist())})
        object.__setattr__(self, "_vectors", vectors.astype(np.float32))
        object.__setattr__(self, "_prompt_in_key", prompt_in_key)

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def __len__(self) -> int:
        return len(self._keys)

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        rows = np.empty(len(responses), np.int64)
        for i, (p, r) in enumerate(zip(prompts, responses)):
            index = self._keys.get(pair_key(p, r, self._prompt_in_key))
            if index is None:
                raise DataError(
                    f"no precomputed embedding for response {r[:60]!r} (prompt {p[:40]!r}); "
                    "rebuild the table over this data",
                    file=self.path,
                )
            rows[i] = index
        return {"embedding": self._vectors[rows]}

    def vectors_by_key(self) -> dict[str, np.ndarray]:
        """Every stored embedding, ``{key: float32 [E]}`` (keys as :func:`pair_key` makes them):
        what an in-memory cache starts from when it reads a table back."""
        return {k: self._vectors[i] for k, i in self._keys.items()}

    def to_config(self) -> dict[str, Any]:
        return {"type": "embedding_table", "path": str(Path(self.path).absolute())}

    @staticmethod
    def write(path: str | Path, keys: Sequence[str], vectors: np.ndarray, prompt_in_key: bool = True) -> Path:
        """Writes a table (``keys`` unique, ``vectors [len(keys), E]``) to ``path`` (.npz)."""
        path = Path(path)
        keys = list(keys)
        if len(set(keys)) != len(keys):
            raise DataError("embedding table keys repeat", file=str(path))
        vectors = np.asarray(vectors, np.float32)
        if vectors.shape[0] != len(keys):
            raise DataError(f"{len(keys)} keys but {vectors.shape[0]} vectors", file=str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(keys, dtype=str), vectors=vectors, prompt_in_key=np.array(prompt_in_key))
        tmp.replace(path)
        return path


register_featurizer("embedding_table", EmbeddingTable)
