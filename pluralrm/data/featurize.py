"""Featurizers: text pairs -> padded numpy arrays the backbones read.

A featurizer maps ``(prompts, responses)`` to a dict of equally shaped integer arrays
``[N, L]``, where ``L`` is rounded up to one of a few *length buckets* so that a jitted model
sees a bounded number of shapes (one compilation per bucket). ``pair_inputs`` featurizes
(prompt, chosen) and (prompt, rejected) together into ``[N, 2, L]`` arrays: the layout every
train and eval batch uses, pair axis second so that sharding the batch axis keeps both sides
of a comparison on one device.

Featurizers are plain configuration + code: ``to_config()`` returns JSON saved with every
checkpoint and ``featurizer_from_config`` rebuilds the same featurizer at scoring time.
"""
from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from pluralrm.errors import ConfigError

DEFAULT_BUCKETS: tuple[int, ...] = (64, 128, 256, 512)


class Featurizer(Protocol):
    """Turns texts into padded integer arrays (see module docstring)."""

    buckets: tuple[int, ...]

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        ...

    def to_config(self) -> dict[str, Any]:
        ...


def bucket_length(length: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= length (the largest bucket if length exceeds them all)."""
    for b in buckets:
        if length <= b:
            return int(b)
    return int(buckets[-1])


def pad_rows(rows: Sequence[np.ndarray], length: int, pad_value: int = 0, left: bool = False) -> np.ndarray:
    """Stacks 1-D int arrays into ``[N, length]``, truncating rows that are longer."""
    out = np.full((len(rows), length), pad_value, dtype=np.int32)
    for i, r in enumerate(rows):
        r = r[:length]
        if left:
            out[i, length - len(r):] = r
        else:
            out[i, : len(r)] = r
    return out


def pair_inputs(
    featurizer: Featurizer,
    prompts: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
) -> dict[str, np.ndarray]:
    """Featurizes both sides of N comparisons. Returns arrays ``[N, 2, L]`` (0 = chosen)."""
    n = len(prompts)
    feats = featurizer(list(prompts) * 2, list(chosen) + list(rejected))
    return {k: np.stack([v[:n], v[n:]], axis=1) for k, v in feats.items()}


# --------------------------------------------------------------------------- hashing
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_PRIME = np.uint64(1099511628211)  # FNV-64 prime, used as the rolling-hash base


@dataclass(frozen=True)
class HashingFeaturizer:
    """Hashed character and word n-grams of prompt and response (no vocabulary, any language).

    Each text becomes the multiset of its character n-grams (``char_ngrams``) and word n-grams
    (``word_ngrams``), hashed into ``num_buckets - 1`` ids (id 0 is padding). Prompt and
    response n-grams are hashed with different seeds so the model can tell them apart; the
    response comes first, so truncation to ``max_length`` drops prompt n-grams before response
    ones.

    Output: ``{"ids": int32 [N, L]}``, L a bucket >= the longest row (capped at max_length).
    """

    num_buckets: int = 1 << 18
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    word_ngrams: tuple[int, ...] = (1, 2)
    lowercase: bool = True
    max_length: int = 512
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    include_prompt: bool = True
    _cache: Callable[..., np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.num_buckets < 2:
            raise ConfigError(f"hashing num_buckets must be >= 2, got {self.num_buckets}")
        if not self.char_ngrams and not self.word_ngrams:
            raise ConfigError("hashing featurizer needs char_ngrams or word_ngrams")
        if any(n < 1 for n in self.char_ngrams + self.word_ngrams):
            raise ConfigError("n-gram sizes must be >= 1")
        buckets = tuple(sorted(int(b) for b in self.buckets if b <= self.max_length))
        if not buckets or buckets[-1] != self.max_length:
            buckets = buckets + (self.max_length,)
        object.__setattr__(self, "buckets", buckets)
        object.__setattr__(self, "_cache", lru_cache(maxsize=1 << 16)(self._text_ids))

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses differ in length")
        rows = []
        for p, r in zip(prompts, responses):
            ids = self._cache(r, 1)
            if self.include_prompt:
                ids = np.concatenate([ids, self._cache(p, 2)])
            rows.append(ids)
        longest = max((len(r) for r in rows), default=1)
        return {"ids": pad_rows(rows, bucket_length(max(longest, 1), self.buckets))}

    def clear_cache(self) -> None:
        """Forgets the memoised n-gram ids of every text, so the next call featurises from
        scratch (what a benchmark of featurisation times)."""
        self._cache.cache_clear()

    def to_config(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_cache", None)
        return {"type": "hashing", **d}

    def _text_ids(self, text: str, seed: int) -> np.ndarray:
        if self.lowercase:
            text = text.lower()
        parts = []
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        padded = np.concatenate([[np.uint64(2)], codes, [np.uint64(3)]])  # word-boundary marks
        for n in self.char_ngrams:
            parts.append(_rolling_hash(padded, n, seed * 31 + n))
        words = text.split()
        if words:
            word_hash = np.array([zlib.crc32(w.encode("utf-8")) for w in words], dtype=np.uint64)
            for n in self.word_ngrams:
                parts.append(_rolling_hash(word_hash, n, seed * 31 + 17 + n))
        h = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        return (1 + h % np.uint64(self.num_buckets - 1)).astype(np.int32)


def _rolling_hash(codes: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Polynomial hash of every length-n window of ``codes`` (uint64 wrap-around)."""
    if len(codes) < n:
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        h = np.full(len(codes) - n + 1, np.uint64(seed * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
        for j in range(n):
            h = (h * _PRIME) ^ codes[j : len(codes) - n + 1 + j]
        # final avalanche (splitmix64) so that nearby n-grams spread over all buckets
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


# --------------------------------------------------------------------------- registry
_FEATURIZERS: dict[str, Callable[..., Featurizer]] = {"hashing": HashingFeaturizer}
_LAZY = {
    "tokenizer": "pluralrm.data.tokenize",
    "embedding_table": "pluralrm.data.embeddings",
    "encoder_embeddings": "pluralrm.models.embedding_cache",
}


def register_featurizer(name: str, factory: Callable[..., Featurizer]) -> None:
    """Makes ``featurizer_from_config({"type": name, ...})`` build ``factory(**rest)``."""
    _FEATURIZERS[name] = factory


def featurizer_from_config(config: dict[str, Any]) -> Featurizer:
    """Rebuilds a featurizer from ``to_config()`` output."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"a featurizer config must be a mapping with a 'type', got {type(config).__name__}")
    config = dict(config)
    kind = config.pop("type", None)
    if not isinstance(kind, str):
        raise ConfigError(f"a featurizer config needs a 'type' string; known: {sorted(_FEATURIZERS)}")
    if kind not in _FEATURIZERS and kind in _LAZY:
        importlib.import_module(_LAZY[kind])  # the module registers itself
    if kind not in _FEATURIZERS:
        raise ConfigError(
            f"unknown featurizer type {kind!r}; known: {sorted(_FEATURIZERS)}"
        )
    for key, value in list(config.items()):
        if isinstance(value, list):
            config[key] = tuple(value)
    try:
        return _FEATURIZERS[kind](**config)
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"invalid {kind} featurizer config: {e}") from None
