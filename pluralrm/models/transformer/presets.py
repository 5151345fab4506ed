"""Named presets and local model directories: moved to :mod:`pluralrm.pretrained`.

The registry needs no JAX and is used by the data layer's tokenizer featurizer as well as by
the transformer backbones, so it lives below both layers; this module re-exports it (the same
objects: ``PRESETS`` is the one dict) for code that imports it from here.
"""
from __future__ import annotations

from pluralrm.pretrained import (
    DECODER_TYPES,
    ENCODER_TYPES,
    PRESETS,
    Preset,
    Pretrained,
    model_family,
    read_config,
    resolve_pretrained,
    sentence_transformers_pooling,
)

__all__ = [
    "DECODER_TYPES",
    "ENCODER_TYPES",
    "PRESETS",
    "Preset",
    "Pretrained",
    "model_family",
    "read_config",
    "resolve_pretrained",
    "sentence_transformers_pooling",
]
