"""Decoder family: Llama, Mistral, Qwen2 and Qwen3 layouts.

Pre-norm causal transformer (Touvron et al. 2023): RMSNorm, rotary position embeddings
(Su et al. 2021) with the configured ``rope_theta`` and scaling, grouped-query attention
(Ainslie et al. 2023) and a SwiGLU MLP (Shazeer 2020). Variants, all read from ``config.json``:
Qwen2's q/k/v biases, Qwen3's per-head RMSNorm on queries and keys, Mistral/Qwen sliding-window
layers, tied input/output embeddings.

Positions are counted over non-padding tokens, so a left-padded sequence gets the same hidden
states as the same sequence right-padded. The attention mask is causal AND key-not-padding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pluralrm.errors import CheckpointError, ConfigError
from pluralrm.models.transformer.layers import (
    PackedRows,
    activation,
    attention,
    dense,
    embedding,
    rms_norm,
    run_layers,
    segment_attention,
)
from pluralrm.models.transformer.layout import IDENTITY, TRANSPOSE, Layout, Row, config_int, config_value, expand
from pluralrm.models.transformer.masks import attention_inputs

ROPE_TYPES = ("default", "linear", "llama3")


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding frequencies: base ``theta`` and an optional scaling rule."""

    theta: float = 10000.0
    kind: str = "default"
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclass(frozen=True)
class DecoderConfig:
    """Shape and options of a decoder, read from a Hugging Face ``config.json``."""

    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 2048
    rope: RopeConfig = RopeConfig()
    qkv_bias: bool = False
    output_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    tie_word_embeddings: bool = False
    sliding_windows: tuple[int | None, ...] = ()

    @property
    def max_length(self) -> int:
        return self.max_position_embeddings

    @classmethod
    def from_hf(cls, raw: dict[str, Any], file: str = "config.json") -> DecoderConfig:
        """Parses a Hugging Face Llama/Mistral/Qwen2/Qwen3 config (raises CheckpointError)."""
        model_type = config_value(raw, "model_type", file)
        hidden = config_int(raw, "hidden_size", file)
        heads = config_int(raw, "num_attention_heads", file)
        layers = config_int(raw, "num_hidden_layers", file)
        if heads == 0 or (raw.get("head_dim") is None and hidden % heads):
            raise CheckpointError(f"{file}: hidden_size {hidden} is not divisible by num_attention_heads {heads}")
        kv_heads = config_int(raw, "num_key_value_heads", file, heads)
        if kv_heads == 0 or heads % kv_heads:
            raise CheckpointError(
                f"{file}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
            )
        if float(raw.get("partial_rotary_factor") or 1.0) != 1.0:
            raise CheckpointError(f"{file}: partial_rotary_factor != 1 is not supported")
        attention_bias = bool(raw.get("attention_bias", False))
        config = cls(
            model_type=model_type,
            vocab_size=config_int(raw, "vocab_size", file),
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=config_int(raw, "head_dim", file, hidden // heads),
            intermediate_size=config_int(raw, "intermediate_size", file),
            hidden_act=config_value(raw, "hidden_act", file, "silu"),
            rms_norm_eps=float(config_value(raw, "rms_norm_eps", file, 1e-6)),
            max_position_embeddings=config_int(raw, "max_position_embeddings", file, 2048),
            rope=_rope_config(raw, file),
            qkv_bias=True if model_type == "qwen2" else attention_bias,
            output_bias=attention_bias if model_type in ("llama", "qwen3") else False,
            mlp_bias=bool(raw.get("mlp_bias", False)),
            qk_norm=model_type == "qwen3",
            tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
            sliding_windows=_sliding_windows(raw, model_type, layers, file),
        )
        activation(config.hidden_act, file)
        return config


def _rope_config(raw: dict[str, Any], file: str) -> RopeConfig:
    """Rope settings from ``rope_parameters`` (transformers >= 5) or ``rope_theta``/``rope_scaling``."""
    params = dict(raw.get("rope_scaling") or {})
    params.update(raw.get("rope_parameters") or {})
    theta = float(params.get("rope_theta", raw.get("rope_theta") or 10000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in ROPE_TYPES:
        raise CheckpointError(f"{file}: rope type {kind!r} is not supported; supported: {list(ROPE_TYPES)}")
    return RopeConfig(
        theta=theta,
        kind=kind,
        factor=float(params.get("factor", 1.0)),
        low_freq_factor=float(params.get("low_freq_factor", 1.0)),
        high_freq_factor=float(params.get("high_freq_factor", 4.0)),
        original_max_position_embeddings=int(
            params.get("original_max_position_embeddings", raw.get("max_position_embeddings") or 8192)
        ),
    )


def _sliding_windows(raw: dict[str, Any], model_type: str, layers: int, file: str) -> tuple[int | None, ...]:
    """Per-layer attention window (None = full attention), as Hugging Face decides it."""
    window = raw.get("sliding_window")
    if model_type == "mistral":
        return (window,) * layers
    if model_type in ("qwen2", "qwen3") and not raw.get("use_sliding_window", False):
        window = None
    layer_types = raw.get("layer_types")
    if layer_types is None:
        first = config_int(raw, "max_window_layers", file, layers)
        layer_types = ["sliding_attention" if window is not None and i >= first else "full_attention" for i in range(layers)]
    if len(layer_types) != layers:
        raise CheckpointError(f"{file}: layer_types has {len(layer_types)} entries for {layers} layers")
    return tuple(window if t == "sliding_attention" else None for t in layer_types)


def rope_inverse_frequencies(head_dim: int, rope: RopeConfig) -> np.ndarray:
    """Inverse frequencies ``[head_dim / 2]`` of rotary embeddings (Su et al. 2021, eq. 15).

    ``linear`` divides every frequency by ``factor`` (position interpolation, Chen et al. 2023);
    ``llama3`` divides only the low frequencies and interpolates smoothly in between (Llama 3.1).

    Args:
        head_dim: size of one attention head (even).
        rope: theta and scaling settings.
    Returns:
        float64 numpy array (a compile-time constant).
    """
    inv_freq = 1.0 / rope.theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    if rope.kind == "linear":
        return inv_freq / rope.factor
    if rope.kind == "llama3":
        old = rope.original_max_position_embeddings
        low_wavelen = old / rope.low_freq_factor
        high_wavelen = old / rope.high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        scaled = np.where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq)
        smooth = (old / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
        smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        return np.where(medium, smoothed, scaled)
    return inv_freq


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: np.ndarray) -> jax.Array:
    """Rotates ``x: [B, L, H, Dh]`` by angle ``position * inv_freq`` (half-split pairing, as HF).

    Args:
        x: queries or keys.
        positions: ``[B, L]`` integer positions.
        inv_freq: ``[Dh / 2]`` from :func:`rope_inverse_frequencies`.
    Returns:
        Same shape and dtype as ``x``.
    """
    angles = positions[:, :, None].astype(jnp.float32) * jnp.asarray(inv_freq, jnp.float32)[None, None, :]
    cos = jnp.cos(angles)[:, :, None, :].astype(x.dtype)
    sin = jnp.sin(angles)[:, :, None, :].astype(x.dtype)
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class DecoderLayer(nnx.Module):
    """RMSNorm -> GQA self-attention -> residual; RMSNorm -> SwiGLU MLP -> residual."""

    def __init__(self, config: DecoderConfig, window: int | None, *, dtype: Any, rngs: nnx.Rngs):
        d, hd = config.hidden_size, config.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, hd
        self.window = window
        self.inv_freq_config = (hd, config.rope)
        self.act = config.hidden_act
        self.attn_norm = rms_norm(d, config.rms_norm_eps, dtype=dtype, rngs=rngs)
        self.q = dense(d, config.num_heads * hd, use_bias=config.qkv_bias, dtype=dtype, rngs=rngs)
        self.k = dense(d, config.num_kv_heads * hd, use_bias=config.qkv_bias, dtype=dtype, rngs=rngs)
        self.v = dense(d, config.num_kv_heads * hd, use_bias=config.qkv_bias, dtype=dtype, rngs=rngs)
        self.o = dense(config.num_heads * hd, d, use_bias=config.output_bias, dtype=dtype, rngs=rngs)
        self.q_norm = rms_norm(hd, config.rms_norm_eps, dtype=dtype, rngs=rngs) if config.qk_norm else None
        self.k_norm = rms_norm(hd, config.rms_norm_eps, dtype=dtype, rngs=rngs) if config.qk_norm else None
        self.mlp_norm = rms_norm(d, config.rms_norm_eps, dtype=dtype, rngs=rngs)
        f = config.intermediate_size
        self.gate = dense(d, f, use_bias=config.mlp_bias, dtype=dtype, rngs=rngs)
        self.up = dense(d, f, use_bias=config.mlp_bias, dtype=dtype, rngs=rngs)
        self.down = dense(f, d, use_bias=config.mlp_bias, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array, positions: jax.Array) -> jax.Array:
        """``x: [B, L, D]``, ``mask: [B, L, L]`` (causal & padding) or the ``PackedRows`` of
        packed rows, ``positions: [B, L]``."""
        b, l, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).reshape(b, l, self.num_heads, self.head_dim)
        k = self.k(h).reshape(b, l, self.num_kv_heads, self.head_dim)
        v = self.v(h).reshape(b, l, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        inv_freq = rope_inverse_frequencies(*self.inv_freq_config)
        q, k = apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq)
        if isinstance(mask, PackedRows):
            attended = segment_attention(q, k, v, mask.segment_ids, causal=True, window=self.window,
                                         tile_pairs=mask.tile_pairs)
        else:
            if self.window is not None:
                idx = jnp.arange(l)
                mask = mask & ((idx[:, None] - idx[None, :]) < self.window)[None]
            attended = attention(q, k, v, mask)
        x = x + self.o(attended.reshape(b, l, -1))
        h = self.mlp_norm(x)
        return x + self.down(activation(self.act)(self.gate(h)) * self.up(h))


class DecoderModel(nnx.Module):
    """A Llama-style decoder: ``(input_ids, attention_mask) -> [B, L, D]`` (after the final norm).

    ``with_lm_head`` keeps a separate output projection for untied checkpoints so that
    :meth:`logits` works; backbones leave it off (reward heads read hidden states).
    """

    def __init__(
        self,
        config: DecoderConfig,
        *,
        dtype: Any = jnp.float32,
        remat: bool = False,
        with_lm_head: bool = False,
        rngs: nnx.Rngs,
    ):
        self.config = config
        self.remat = remat
        self.embed = embedding(config.vocab_size, config.hidden_size, dtype=dtype, rngs=rngs)
        self.layers = nnx.List(
            [DecoderLayer(config, w, dtype=dtype, rngs=rngs) for w in _windows(config)]
        )
        self.norm = rms_norm(config.hidden_size, config.rms_norm_eps, dtype=dtype, rngs=rngs)
        untied = with_lm_head and not config.tie_word_embeddings
        self.lm_head = dense(config.hidden_size, config.vocab_size, use_bias=False, dtype=dtype, rngs=rngs) if untied else None

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
        """Last hidden states ``[B, L, D]``; ``token_type_ids`` is accepted and ignored.

        Packed rows pass ``segment_ids`` and per-segment ``positions`` (causal attention within
        each segment, rotary angles at the unpacked positions).
        """
        mask, positions = attention_inputs(attention_mask, segment_ids, positions, causal=True,
                                             tile_pairs=tile_pairs)
        h = run_layers(self.layers, self.embed(input_ids), mask, positions, remat=self.remat)
        return self.norm(h)

    def logits(self, hidden: jax.Array) -> jax.Array:
        """Next-token logits ``[B, L, V]`` from hidden states ``[B, L, D]``."""
        if self.config.tie_word_embeddings:
            return self.embed.attend(hidden)
        if self.lm_head is None:
            raise ConfigError("this decoder was built without its lm_head; load it with with_lm_head=True")
        return self.lm_head(hidden)


def _windows(config: DecoderConfig) -> tuple[int | None, ...]:
    return config.sliding_windows or (None,) * config.num_layers


def _layer_rows(config: DecoderConfig) -> list[Row]:
    def linear(ckpt: str, name: str, bias: bool) -> list[Row]:
        rows = [(f"layers.{{i}}.{ckpt}.weight", ("layers", "{i}", name, "kernel"), TRANSPOSE)]
        if bias:
            rows.append((f"layers.{{i}}.{ckpt}.bias", ("layers", "{i}", name, "bias"), IDENTITY))
        return rows

    rows = [
        ("layers.{i}.input_layernorm.weight", ("layers", "{i}", "attn_norm", "scale"), IDENTITY),
        ("layers.{i}.post_attention_layernorm.weight", ("layers", "{i}", "mlp_norm", "scale"), IDENTITY),
    ]
    for ckpt, name in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v")):
        rows += linear(f"self_attn.{ckpt}", name, config.qkv_bias)
    rows += linear("self_attn.o_proj", "o", config.output_bias)
    for ckpt, name in (("gate_proj", "gate"), ("up_proj", "up"), ("down_proj", "down")):
        rows += linear(f"mlp.{ckpt}", name, config.mlp_bias)
    if config.qk_norm:
        rows.append(("layers.{i}.self_attn.q_norm.weight", ("layers", "{i}", "q_norm", "scale"), IDENTITY))
        rows.append(("layers.{i}.self_attn.k_norm.weight", ("layers", "{i}", "k_norm", "scale"), IDENTITY))
    return rows


def decoder_layout(config: DecoderConfig, with_lm_head: bool = False) -> Layout:
    """The checkpoint table of a decoder (``LlamaModel``/``*ForCausalLM`` names)."""
    global_rows: list[Row] = [
        ("embed_tokens.weight", ("embed", "embedding"), IDENTITY),
        ("norm.weight", ("norm", "scale"), IDENTITY),
    ]
    ignored = [r"rotary_emb\.inv_freq$", r"^score\."]
    if with_lm_head and not config.tie_word_embeddings:
        global_rows.append(("lm_head.weight", ("lm_head", "kernel"), TRANSPOSE))
    else:
        ignored.append(r"^lm_head\.")
    return Layout(
        tensors=expand(global_rows, _layer_rows(config), config.num_layers),
        prefixes=("model.",),
        ignored=tuple(ignored),
    )
