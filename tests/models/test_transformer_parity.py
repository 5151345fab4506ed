"""Parity of pluralrm's NNX encoders/decoders with transformers' PyTorch models (the oracle).

Tiny random checkpoints (every parameter perturbed) are saved with ``save_pretrained`` and
loaded by pluralrm without torch; last hidden states must match at non-padding positions.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hf_oracle import DECODERS, ENCODERS, padded_batch, same_tokens_other_side

from pluralrm.models.transformer import DecoderModel, EncoderModel, from_pretrained

ATOL = 1e-4


def torch_hidden(model, ids, mask, **extra) -> np.ndarray:
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), **extra)
    return out.last_hidden_state.numpy()


def ours(model, ids, mask, token_types=None) -> np.ndarray:
    types = None if token_types is None else jnp.asarray(token_types, jnp.int32)
    return np.asarray(model(jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32), types))


def max_diff(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs(a - b)[mask > 0].max())


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_matches_transformers(tiny_checkpoint, name):
    directory, torch_model = tiny_checkpoint(name)
    model = from_pretrained(directory)
    assert isinstance(model, EncoderModel)
    ids, mask = padded_batch(seed=1)
    types = np.zeros_like(ids)
    if name.startswith("bert"):  # a second segment exercises the token-type table
        types[:, 3:] = 1
        types *= mask
    expected = torch_hidden(torch_model, ids, mask, token_type_ids=torch.tensor(types))
    assert max_diff(ours(model, ids, mask, types), expected, mask) < ATOL
    if model.config.type_vocab_size == 1:  # a single token type: stray type ids are ignored, not NaN
        assert max_diff(ours(model, ids, mask, mask), expected, mask) < ATOL


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_matches_transformers_right_and_left_padding(tiny_checkpoint, name):
    directory, torch_model = tiny_checkpoint(name)
    model = from_pretrained(directory)
    assert isinstance(model, DecoderModel)
    right_ids, right_mask = padded_batch(seed=2)
    left_ids, left_mask = same_tokens_other_side(right_ids, right_mask)
    for ids, mask in ((right_ids, right_mask), (left_ids, left_mask)):
        # the oracle needs explicit positions for left padding (counted over real tokens)
        positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
        expected = torch_hidden(torch_model, ids, mask, position_ids=torch.tensor(positions))
        assert max_diff(ours(model, ids, mask), expected, mask) < ATOL


def test_decoder_right_padding_needs_no_explicit_positions(tiny_checkpoint):
    directory, torch_model = tiny_checkpoint("qwen2")
    ids, mask = padded_batch(seed=3)
    expected = torch_hidden(torch_model, ids, mask)
    assert max_diff(ours(from_pretrained(directory), ids, mask), expected, mask) < ATOL


def test_sliding_window_is_applied(tiny_checkpoint):
    """Mistral with window 3 differs from full attention beyond 3 tokens (so the test above
    checks the window), and matches the oracle."""
    directory, _ = tiny_checkpoint("mistral")
    model = from_pretrained(directory)
    ids, mask = padded_batch(seed=4)
    windowed = ours(model, ids, mask)
    for layer in model.layers:
        layer.window = None
    full = ours(model, ids, mask)
    assert np.abs(windowed - full)[0, 5:].max() > 1e-3
    np.testing.assert_allclose(windowed[0, :3], full[0, :3], atol=1e-6)


@pytest.mark.parametrize("name", ["llama-lm", "llama-lm-tied"])
def test_causal_lm_logits_tied_and_untied(tiny_checkpoint, name):
    directory, torch_model = tiny_checkpoint(name)
    model = from_pretrained(directory, with_lm_head=True)
    assert (model.lm_head is None) == model.config.tie_word_embeddings
    ids, mask = padded_batch(seed=5)
    with torch.no_grad():
        expected = torch_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()
    got = np.asarray(model.logits(model(jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32))))
    assert max_diff(got, expected, mask) < ATOL
