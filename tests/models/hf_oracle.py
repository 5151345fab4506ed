"""Tiny Hugging Face checkpoints written by transformers' own PyTorch models (the oracle),
and padded test batches.

``build_tiny(name, directory)`` builds the model named in ``TINY`` with a fixed seed, perturbs every
parameter (so that zero-initialised biases and unit norm scales are tested too), saves it with
``save_pretrained`` (safetensors) and returns the torch model; the ``tiny_checkpoint`` fixture
(conftest.py) caches ``(directory, torch_model)`` per test session.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=97)

# name -> (config class, model class, config overrides)
TINY: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bert": ("BertConfig", "BertModel", dict(max_position_embeddings=40, type_vocab_size=2)),
    "bert-gelu-new": ("BertConfig", "BertModel", dict(max_position_embeddings=40, hidden_act="gelu_new")),
    "roberta": ("RobertaConfig", "RobertaModel", dict(max_position_embeddings=40, pad_token_id=1, type_vocab_size=1)),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaModel", dict(max_position_embeddings=40, pad_token_id=1)),
    "bert-mlm": ("BertConfig", "BertForMaskedLM", dict(max_position_embeddings=40)),
    "llama": ("LlamaConfig", "LlamaModel", dict(num_key_value_heads=2, attention_bias=True, mlp_bias=True)),
    "llama3-rope": (
        "LlamaConfig",
        "LlamaModel",
        dict(
            num_key_value_heads=1,
            max_position_embeddings=64,
            rope_parameters=dict(
                rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                high_freq_factor=4.0, original_max_position_embeddings=16,
            ),
        ),
    ),
    "llama-lm": ("LlamaConfig", "LlamaForCausalLM", dict(num_key_value_heads=2, tie_word_embeddings=False)),
    "llama-lm-tied": ("LlamaConfig", "LlamaForCausalLM", dict(num_key_value_heads=2, tie_word_embeddings=True)),
    "qwen2": ("Qwen2Config", "Qwen2Model", dict(num_key_value_heads=2, rope_theta=1000000.0)),
    "qwen3": ("Qwen3Config", "Qwen3Model", dict(num_key_value_heads=2, head_dim=16)),
    "mistral": ("MistralConfig", "MistralModel", dict(num_key_value_heads=2, sliding_window=3)),
}
ENCODERS = ("bert", "bert-gelu-new", "roberta", "xlm-roberta")
DECODERS = ("llama", "llama3-rope", "qwen2", "qwen3", "mistral")


def build_tiny(name: str, directory: Path) -> Any:
    import torch
    import transformers

    config_cls, model_cls, overrides = TINY[name]
    config = getattr(transformers, config_cls)(**{**SMALL, **overrides})
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = getattr(transformers, model_cls)(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
    model.save_pretrained(str(directory))
    return model


def padded_batch(seed: int = 0, batch: int = 3, length: int = 7, vocab: int = 90):
    """Right-padded token ids ``[B, L]`` (ids >= 3) and mask, rows of L, L - 2 and L - 4 tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, (batch, length))
    lengths = [length, length - 2, length - 4][:batch]
    mask = np.zeros((batch, length), np.int64)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    ids = np.where(mask > 0, ids, 0)
    return ids, mask


def same_tokens_other_side(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same sequences padded on the other side."""
    out_ids, out_mask = np.zeros_like(ids), np.zeros_like(mask)
    length = ids.shape[1]
    for b in range(ids.shape[0]):
        tokens = ids[b][mask[b] > 0]
        n = len(tokens)
        if mask[b, 0] > 0:  # right-padded -> left
            out_ids[b, length - n:], out_mask[b, length - n:] = tokens, 1
        else:
            out_ids[b, :n], out_mask[b, :n] = tokens, 1
    return out_ids, out_mask
