"""Encoder family: BERT, RoBERTa, XLM-RoBERTa and MiniLM (a small BERT) layouts.

Post-LayerNorm transformer encoder (Devlin et al. 2019): learned absolute position and token-type
embeddings, bidirectional attention over non-padding tokens, GELU MLP. RoBERTa-style models
(Liu et al. 2019) differ only in their position ids, which start after the padding index
(``position_offset = pad_token_id + 1``).

Positions are counted over non-padding tokens (:func:`positions_from_mask`); with right padding
(the encoders' convention) they equal Hugging Face's. No dropout is applied.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from pluralrm.errors import CheckpointError
from pluralrm.models.transformer.layers import (
    PackedRows,
    activation,
    attention,
    dense,
    embedding,
    layer_norm,
    run_layers,
    segment_attention,
)
from pluralrm.models.transformer.layout import IDENTITY, TRANSPOSE, Layout, config_int, config_value, expand
from pluralrm.models.transformer.masks import attention_inputs

ROBERTA_TYPES = ("roberta", "xlm-roberta")


@dataclass(frozen=True)
class EncoderConfig:
    """Shape and options of an encoder, read from a Hugging Face ``config.json``."""

    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    position_offset: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def max_length(self) -> int:
        """Longest sequence the position table supports."""
        return self.max_position_embeddings - self.position_offset

    @classmethod
    def from_hf(cls, raw: dict[str, Any], file: str = "config.json") -> EncoderConfig:
        """Parses a Hugging Face BERT/RoBERTa/XLM-RoBERTa config (raises CheckpointError)."""
        model_type = config_value(raw, "model_type", file)
        position_type = raw.get("position_embedding_type") or "absolute"
        if position_type != "absolute":
            raise CheckpointError(
                f"{file}: position_embedding_type {position_type!r} is not supported (only 'absolute')"
            )
        offset = 0
        if model_type in ROBERTA_TYPES:
            offset = config_int(raw, "pad_token_id", file, 1) + 1
        config = cls(
            model_type=model_type,
            vocab_size=config_int(raw, "vocab_size", file),
            hidden_size=config_int(raw, "hidden_size", file),
            num_layers=config_int(raw, "num_hidden_layers", file),
            num_heads=config_int(raw, "num_attention_heads", file),
            intermediate_size=config_int(raw, "intermediate_size", file),
            hidden_act=config_value(raw, "hidden_act", file, "gelu"),
            max_position_embeddings=config_int(raw, "max_position_embeddings", file, 512),
            type_vocab_size=config_int(raw, "type_vocab_size", file, 2),
            layer_norm_eps=float(config_value(raw, "layer_norm_eps", file, 1e-12)),
            position_offset=offset,
        )
        activation(config.hidden_act, file)
        if config.num_heads == 0 or config.hidden_size % config.num_heads:
            raise CheckpointError(
                f"{file}: hidden_size {config.hidden_size} is not divisible by "
                f"num_attention_heads {config.num_heads}"
            )
        return config


class EncoderEmbeddings(nnx.Module):
    """Word + absolute position + token-type embeddings, then LayerNorm."""

    def __init__(self, config: EncoderConfig, *, dtype: Any, rngs: nnx.Rngs):
        d = config.hidden_size
        self.word = embedding(config.vocab_size, d, dtype=dtype, rngs=rngs)
        self.position = embedding(config.max_position_embeddings, d, dtype=dtype, rngs=rngs)
        self.token_type = embedding(max(config.type_vocab_size, 1), d, dtype=dtype, rngs=rngs)
        self.norm = layer_norm(d, config.layer_norm_eps, dtype=dtype, rngs=rngs)

    def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, positions: jax.Array) -> jax.Array:
        """``[B, L]`` ids, token types and position ids -> ``[B, L, D]``."""
        x = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        return self.norm(x)


class EncoderLayer(nnx.Module):
    """Self-attention and MLP blocks, each followed by residual add and LayerNorm (post-LN)."""

    def __init__(self, config: EncoderConfig, *, dtype: Any, rngs: nnx.Rngs):
        d, f = config.hidden_size, config.intermediate_size
        self.num_heads = config.num_heads
        self.act = config.hidden_act
        self.query = dense(d, d, use_bias=True, dtype=dtype, rngs=rngs)
        self.key = dense(d, d, use_bias=True, dtype=dtype, rngs=rngs)
        self.value = dense(d, d, use_bias=True, dtype=dtype, rngs=rngs)
        self.attention_out = dense(d, d, use_bias=True, dtype=dtype, rngs=rngs)
        self.attention_norm = layer_norm(d, config.layer_norm_eps, dtype=dtype, rngs=rngs)
        self.up = dense(d, f, use_bias=True, dtype=dtype, rngs=rngs)
        self.down = dense(f, d, use_bias=True, dtype=dtype, rngs=rngs)
        self.mlp_norm = layer_norm(d, config.layer_norm_eps, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        """``x: [B, L, D]``; ``mask``: ``[B, L, L]`` bool, or the :class:`PackedRows` of packed
        rows (attention within each segment) -> ``[B, L, D]``."""
        b, l, d = x.shape
        heads = (b, l, self.num_heads, d // self.num_heads)
        q = self.query(x).reshape(heads)
        k = self.key(x).reshape(heads)
        v = self.value(x).reshape(heads)
        if isinstance(mask, PackedRows):
            attended = segment_attention(q, k, v, mask.segment_ids, causal=False,
                                         tile_pairs=mask.tile_pairs).reshape(b, l, d)
        else:
            attended = attention(q, k, v, mask).reshape(b, l, d)
        x = self.attention_norm(x + self.attention_out(attended))
        return self.mlp_norm(x + self.down(activation(self.act)(self.up(x))))


class EncoderModel(nnx.Module):
    """A BERT-style encoder: ``(input_ids, attention_mask, token_type_ids) -> [B, L, D]``."""

    def __init__(self, config: EncoderConfig, *, dtype: Any = jnp.float32, remat: bool = False, rngs: nnx.Rngs):
        self.config = config
        self.remat = remat
        self.embeddings = EncoderEmbeddings(config, dtype=dtype, rngs=rngs)
        self.layers = nnx.List([EncoderLayer(config, dtype=dtype, rngs=rngs) for _ in range(config.num_layers)])

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids: jax.Array | None = None,
        *,
        segment_ids: jax.Array | None = None,
        positions: jax.Array | None = None,
        tile_pairs: jax.Array | None = None,
    ) -> jax.Array:
        """Last hidden states ``[B, L, D]`` for ``[B, L]`` inputs (1 = token in the mask).

        Packed rows (``pluralrm.data.packing``) pass ``segment_ids`` and per-segment
        ``positions``: each token then sees only its own segment, at its unpacked position.
        Models with a single token type (RoBERTa) ignore ``token_type_ids``, whatever a
        tokenizer put there.
        """
        if token_type_ids is None or self.config.type_vocab_size <= 1:
            token_type_ids = jnp.zeros_like(input_ids)
        mask, positions = attention_inputs(attention_mask, segment_ids, positions, causal=False,
                                             tile_pairs=tile_pairs)
        h = self.embeddings(input_ids, token_type_ids, positions + self.config.position_offset)
        return run_layers(self.layers, h, mask, remat=self.remat)


_LAYER_ROWS = [
    ("encoder.layer.{i}.attention.self.query.weight", ("layers", "{i}", "query", "kernel"), TRANSPOSE),
    ("encoder.layer.{i}.attention.self.query.bias", ("layers", "{i}", "query", "bias"), IDENTITY),
    ("encoder.layer.{i}.attention.self.key.weight", ("layers", "{i}", "key", "kernel"), TRANSPOSE),
    ("encoder.layer.{i}.attention.self.key.bias", ("layers", "{i}", "key", "bias"), IDENTITY),
    ("encoder.layer.{i}.attention.self.value.weight", ("layers", "{i}", "value", "kernel"), TRANSPOSE),
    ("encoder.layer.{i}.attention.self.value.bias", ("layers", "{i}", "value", "bias"), IDENTITY),
    ("encoder.layer.{i}.attention.output.dense.weight", ("layers", "{i}", "attention_out", "kernel"), TRANSPOSE),
    ("encoder.layer.{i}.attention.output.dense.bias", ("layers", "{i}", "attention_out", "bias"), IDENTITY),
    ("encoder.layer.{i}.attention.output.LayerNorm.weight", ("layers", "{i}", "attention_norm", "scale"), IDENTITY),
    ("encoder.layer.{i}.attention.output.LayerNorm.bias", ("layers", "{i}", "attention_norm", "bias"), IDENTITY),
    ("encoder.layer.{i}.intermediate.dense.weight", ("layers", "{i}", "up", "kernel"), TRANSPOSE),
    ("encoder.layer.{i}.intermediate.dense.bias", ("layers", "{i}", "up", "bias"), IDENTITY),
    ("encoder.layer.{i}.output.dense.weight", ("layers", "{i}", "down", "kernel"), TRANSPOSE),
    ("encoder.layer.{i}.output.dense.bias", ("layers", "{i}", "down", "bias"), IDENTITY),
    ("encoder.layer.{i}.output.LayerNorm.weight", ("layers", "{i}", "mlp_norm", "scale"), IDENTITY),
    ("encoder.layer.{i}.output.LayerNorm.bias", ("layers", "{i}", "mlp_norm", "bias"), IDENTITY),
]

_GLOBAL_ROWS = [
    ("embeddings.word_embeddings.weight", ("embeddings", "word", "embedding"), IDENTITY),
    ("embeddings.position_embeddings.weight", ("embeddings", "position", "embedding"), IDENTITY),
    ("embeddings.token_type_embeddings.weight", ("embeddings", "token_type", "embedding"), IDENTITY),
    ("embeddings.LayerNorm.weight", ("embeddings", "norm", "scale"), IDENTITY),
    ("embeddings.LayerNorm.bias", ("embeddings", "norm", "bias"), IDENTITY),
]


def encoder_layout(config: EncoderConfig) -> Layout:
    """The checkpoint table of an encoder (``BertModel``/``RobertaModel`` names)."""
    return Layout(
        tensors=expand(_GLOBAL_ROWS, _LAYER_ROWS, config.num_layers),
        prefixes=("bert.", "roberta.", "model."),
        ignored=(
            r"position_ids$",
            r"^embeddings\.token_type_ids$",
            r"^pooler\.",
            r"^cls\.",
            r"^lm_head\.",
            r"^classifier\.",
            r"^qa_outputs\.",
        ),
        aliases=(("LayerNorm.gamma", "LayerNorm.weight"), ("LayerNorm.beta", "LayerNorm.bias")),
    )
