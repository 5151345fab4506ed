"""Reading model and run directories that may not be trustworthy.

A checkpoint directory is data, never code: pluralrm reads it with JSON, Orbax/TensorStore and
safetensors only (no pickle, no ``trust_remote_code``, YAML only through ``safe_load``). Before
anything is allocated these checks refuse, with an error that says what and where:

- a symbolic link that points outside the directory, or a special file (FIFO, device);
- a metadata file larger than it could honestly be (a JSON bomb);
- a model whose declared size (configuration and schema) would need more memory than a limit
  (by default half of this machine's RAM; ``PLURALRM_MAX_MODEL_BYTES`` overrides it) — the
  size is computed abstractly with ``nnx.eval_shape``, allocating nothing;
- saved arrays whose shapes differ from the ones the configuration implies (checked by the
  loaders against Orbax's metadata before any array is read).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pluralrm.errors import CheckpointError

# The directory and JSON checks live in the neutral pluralrm.untrusted (the data layer needs them
# for pretrained directories); re-exported here for the loaders that import them from this module.
from pluralrm.untrusted import MAX_JSON_BYTES, check_directory, check_pretrained_directory, read_json

# Tokenizer files of a Hugging Face model directory (an exported model lists the ones it copied).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt", "tokenizer.model", "sentencepiece.bpe.model", "spiece.model")


def localize_paths(meta: dict[str, Any], directory: Path) -> None:
    """Resolves ``./`` paths of a model.json (backbone, featurizer) against ``directory`` and
    checks that every file the export listed is there. Raises CheckpointError naming the file.

    Here rather than in ``pluralrm.models.export`` (which re-exports it) so that reading
    model.json (``pluralrm.models.model_files``) needs no import of the exporter, which imports it."""
    config = meta.get("config")
    backbone = config.get("backbone") if isinstance(config, dict) else None
    for section in (backbone, meta.get("featurizer")):
        if isinstance(section, dict) and isinstance(section.get("path"), str) and section["path"].startswith("./"):
            section["path"] = str(directory / section["path"][2:])
    export = meta.get("export")
    listed = export.get("files") if isinstance(export, dict) else None
    listed = listed if isinstance(listed, list) else []
    for name in listed:
        if not (directory / name).is_file():
            kind = "tokenizer file" if Path(name).name in TOKENIZER_FILES else "file"
            raise CheckpointError(f"{directory / name} is missing: the exported model directory lists this "
                                  f"{kind}; copy the whole directory again (or export the model again)")


__all__ = ["MAX_JSON_BYTES", "TOKENIZER_FILES", "check_declared_size", "check_directory",
           "check_pretrained_directory", "localize_paths", "memory_limit_bytes", "read_json"]


def memory_limit_bytes() -> int:
    """The largest model (parameter bytes) we agree to build: env override or half the RAM."""
    override = os.environ.get("PLURALRM_MAX_MODEL_BYTES")
    if override:
        return int(override)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError):
        return 8 << 30


def check_declared_size(config: Any, schema: Any, num_annotators: int, source: Path) -> int:
    """Parameter bytes the configuration and schema declare; refuses more than the limit.

    Pretrained (transformer) backbones are sized by their own weight files, which the weight
    loader checks; the rest of the model is sized here without allocating it.
    """
    from flax import nnx

    from pluralrm.models.config import BackboneConfig
    from pluralrm.models.net import build_net

    sized = config
    if config.backbone.type != "hashing":
        # stand-in with the same feature width is not knowable without the weights: size the
        # head on a hashing backbone of the configured MLP widths (the part the JSON declares)
        sized = type(config)(backbone=BackboneConfig(num_buckets=2, embed_dim=1, hidden_dims=config.backbone.hidden_dims or (1,)),
                             head=config.head)
    try:
        abstract = nnx.eval_shape(lambda: build_net(sized, schema, num_annotators)[0])
    except Exception as e:  # a config that cannot even be shaped
        raise CheckpointError(f"{source}: the model it declares cannot be built ({e})") from None
    import jax

    total = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(nnx.state(abstract)))
    limit = memory_limit_bytes()
    if total > limit:
        raise CheckpointError(
            f"{source} declares a model of {total / 2**30:.1f} GiB of parameters, over the "
            f"{limit / 2**30:.1f} GiB limit (set PLURALRM_MAX_MODEL_BYTES to allow it)"
        )
    return total
