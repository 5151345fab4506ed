"""Hashing featurizer (``pluralrm.data.featurize``): the batched hashing against the per-text
reference it replaced (bitwise, on the bundled society and awkward texts), and its memo."""
import zlib

import numpy as np
import pytest

from pluralrm.data.featurize import HashingFeaturizer, bucket_length, pad_rows
from pluralrm.simulate import load_default

_PRIME = np.uint64(1099511628211)


def _reference_rolling_hash(codes: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(codes) < n:
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        h = np.full(len(codes) - n + 1, np.uint64(seed * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
        for j in range(n):
            h = (h * _PRIME) ^ codes[j : len(codes) - n + 1 + j]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def _reference_text_ids(f: HashingFeaturizer, text: str, seed: int) -> np.ndarray:
    """The featurizer before batching (one text at a time, every n-gram hashed)."""
    if f.lowercase:
        text = text.lower()
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    padded = np.concatenate([[np.uint64(2)], codes, [np.uint64(3)]])
    parts = [_reference_rolling_hash(padded, n, seed * 31 + n) for n in f.char_ngrams]
    words = text.split()
    if words:
        word_hash = np.array([zlib.crc32(w.encode("utf-8")) for w in words], dtype=np.uint64)
        parts += [_reference_rolling_hash(word_hash, n, seed * 31 + 17 + n) for n in f.word_ngrams]
    h = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    return (1 + h % np.uint64(f.num_buckets - 1)).astype(np.int32)


def _reference(f: HashingFeaturizer, prompts, responses) -> np.ndarray:
    rows = []
    for p, r in zip(prompts, responses):
        ids = _reference_text_ids(f, r, 1)
        if f.include_prompt:
            ids = np.concatenate([ids, _reference_text_ids(f, p, 2)])
        rows.append(ids)
    return pad_rows(rows, bucket_length(max(max(len(r) for r in rows), 1), f.buckets))


AWKWARD = ["", " ", "a", "ab", "ΟΔΟΣ ΚΑΛΟΣ", "İstanbul", "emoji 😀 ok", "tabs\tand\nnewlines", "x" * 700,
           "  lead and trail  ", "\u00a0nbsp\u2003em space", "word " * 300]


@pytest.mark.parametrize("options", [
    {},
    {"char_ngrams": (1, 2), "word_ngrams": ()},
    {"char_ngrams": (), "word_ngrams": (1, 3)},
    {"lowercase": False, "include_prompt": False, "max_length": 64, "buckets": (8, 64)},
    {"num_buckets": 2, "max_length": 2048, "buckets": (2048,)},  # nothing truncated: every id compared
])
def test_batched_hashing_equals_the_per_text_reference_bitwise(options):
    rows = load_default().data.select(range(300))  # the bundled society
    prompts = list(rows["prompt"]) + AWKWARD
    responses = list(rows["chosen"]) + AWKWARD[::-1]
    f = HashingFeaturizer(**options)
    expected = _reference(f, prompts, responses)
    np.testing.assert_array_equal(f(prompts, responses)["ids"], expected)
    np.testing.assert_array_equal(f(prompts, responses)["ids"], expected)  # from the memo


def test_memo_is_bounded_and_clear_cache_forgets_it_without_changing_outputs(monkeypatch):
    f = HashingFeaturizer(num_buckets=1 << 10, max_length=32, buckets=(8, 32))
    first = f(["a prompt"], ["a response"])["ids"]
    assert f.cached_texts() == 2  # the response and the prompt
    f.clear_cache()
    assert f.cached_texts() == 0
    np.testing.assert_array_equal(f(["a prompt"], ["a response"])["ids"], first)
    monkeypatch.setattr(HashingFeaturizer, "CACHE_TEXTS", 5)
    f(["p"] * 10, [f"response {i}" for i in range(10)])
    assert f.cached_texts() == 5
