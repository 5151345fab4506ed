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
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

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

    The texts of a call are hashed together (:meth:`text_ids`): their characters laid end to end
    in one array, every n-gram hash computed in a few whole-array numpy passes, not a dozen small
    ones per text (at 10M mostly distinct comparisons the per-text passes were the training
    loop's bottleneck). The ids of the last ``CACHE_TEXTS`` texts are memoised (simulated and
    real preference data repeat prompts and responses).

    Output: ``{"ids": int32 [N, L]}``, L a bucket >= the longest row (capped at max_length).
    """

    CACHE_TEXTS: ClassVar[int] = 1 << 16

    num_buckets: int = 1 << 18
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    word_ngrams: tuple[int, ...] = (1, 2)
    lowercase: bool = True
    max_length: int = 512
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    include_prompt: bool = True
    _memo: OrderedDict = field(init=False, repr=False, compare=False)
    _memo_lock: threading.Lock = field(init=False, repr=False, compare=False)

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
        object.__setattr__(self, "_memo", OrderedDict())
        object.__setattr__(self, "_memo_lock", threading.Lock())  # the server featurizes from threads

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses differ in length")
        rows = self.text_ids(responses, 1)
        sizes = np.fromiter((len(r) for r in rows), np.int64, len(rows))
        # the prompt's ids follow the response's in a row: only rows with room left need them
        short = np.flatnonzero(sizes < self.max_length).tolist() if self.include_prompt else []
        after = dict(zip(short, self.text_ids([prompts[i] for i in short], 2)))
        for i, ids in after.items():
            sizes[i] += len(ids)
        longest = int(min(sizes.max(initial=1), self.max_length))
        out = np.zeros((len(rows), bucket_length(max(longest, 1), self.buckets)), np.int32)
        width = out.shape[1]
        for i, ids in enumerate(rows):
            n = min(len(ids), width)
            out[i, :n] = ids[:n]
            if i in after and n < width:
                rest = after[i][: width - n]
                out[i, n : n + len(rest)] = rest
        return {"ids": out}

    def cached_texts(self) -> int:
        """How many (text, seed) entries the memo holds."""
        return len(self._memo)

    def clear_cache(self) -> None:
        """Forgets the memoised n-gram ids of every text, so the next call featurises from
        scratch (what a benchmark of featurisation times)."""
        self._memo.clear()

    def to_config(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.init}  # not the memo
        return {"type": "hashing", **d}

    def text_ids(self, texts: Sequence[str], seed: int) -> list[np.ndarray]:
        """The int32 n-gram ids of each text (char n-grams by size, then word n-grams by size,
        each in text order), hashed with ``seed``, at most ``max_length`` of them (a row holds no
        more); memoised texts are not hashed again."""
        memo = self._memo
        out: list[np.ndarray | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            ids = memo.get((text, seed))
            if ids is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = ids
        if missing:
            hashed = self._hash_texts(list(missing), seed)
            with self._memo_lock:
                for text, ids in zip(missing, hashed):
                    for i in missing[text]:
                        out[i] = ids
                    memo[(text, seed)] = ids
                while len(memo) > self.CACHE_TEXTS:
                    memo.popitem(last=False)
        return out  # type: ignore[return-value]

    def _hash_texts(self, texts: list[str], seed: int) -> list[np.ndarray]:
        """:meth:`text_ids` of texts not in the memo, at most ``max_length`` ids each (a row
        never holds more, so n-grams past that are not hashed: word n-grams come last and
        are often not needed at all)."""
        if self.lowercase:
            texts = [t.lower() for t in texts]  # per text: str.lower's final-sigma rule looks at neighbours
        lengths = np.fromiter((len(t) + 2 for t in texts), np.int64, len(texts))  # + word-boundary marks
        starts = np.cumsum(lengths) - lengths
        padded = np.empty(int(lengths.sum()), np.uint64)
        inner = np.ones(len(padded), bool)
        inner[starts] = False
        inner[starts + lengths - 1] = False
        padded[starts] = 2
        padded[starts + lengths - 1] = 3
        padded[inner] = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
        modulus = np.uint64(self.num_buckets - 1)
        # per part (each char n-gram size, then each word n-gram size): ids of every window of the
        # whole array (windows across two texts are computed and never read) and each text's
        # first window and window count, capped so that a text's ids stop at max_length
        room = np.full(len(texts), self.max_length, np.int64)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for n in self.char_ngrams:
            take = np.minimum(np.maximum(lengths - n + 1, 0), room)
            room -= take
            parts.append((_ids(_rolling_hash(padded, n, seed * 31 + n), modulus), starts, take))
        if self.word_ngrams and room.any():
            wanted = np.flatnonzero(room > 0)  # texts whose char n-grams leave room for words
            words = [texts[i].split() for i in wanted.tolist()]
            counts = np.zeros(len(texts), np.int64)
            counts[wanted] = np.fromiter((len(w) for w in words), np.int64, len(words))
            word_hash = np.fromiter((zlib.crc32(w.encode("utf-8")) for ws in words for w in ws), np.uint64,
                                    int(counts.sum()))
            word_starts = np.cumsum(counts) - counts
            for n in self.word_ngrams:
                take = np.minimum(np.maximum(counts - n + 1, 0), room)
                room -= take
                parts.append((_ids(_rolling_hash(word_hash, n, seed * 31 + 17 + n), modulus), word_starts, take))
        columns = [(ids, first.tolist(), (first + take).tolist()) for ids, first, take in parts]
        return [np.concatenate([ids[a[i]:b[i]] for ids, a, b in columns]) for i in range(len(texts))]


def _ids(hashes: np.ndarray, modulus: np.uint64) -> np.ndarray:
    """Hashes to ids 1 .. modulus (0 is padding), int32."""
    return (hashes % modulus).astype(np.int32) + 1


def _rolling_hash(codes: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Polynomial hash of every length-n window of ``codes`` (uint64 wrap-around), in place
    on one array (the texts of a whole batch go through at once)."""
    if len(codes) < n:
        return np.zeros(0, np.uint64)
    windows = len(codes) - n + 1
    with np.errstate(over="ignore"):
        h = np.full(windows, np.uint64(seed * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
        for j in range(n):
            h *= _PRIME
            h ^= codes[j : windows + j]
        # final avalanche (splitmix64) so that nearby n-grams spread over all buckets
        shifted = np.empty_like(h)
        for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, None)):
            np.right_shift(h, np.uint64(shift), out=shifted)
            h ^= shifted
            if multiplier is not None:
                h *= np.uint64(multiplier)
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
