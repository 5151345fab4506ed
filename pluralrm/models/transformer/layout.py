"""How a Hugging Face checkpoint lays out a model: config keys and a tensor-name table.

Each family module (``encoder.py``, ``decoder.py``) describes its checkpoint as a
:class:`Layout`: a table from checkpoint tensor names (``"encoder.layer.3.output.dense.weight"``,
after stripping an optional base-model prefix such as ``"bert."``) to the NNX parameter path it
fills and the named :class:`Transform` that converts the array (PyTorch's ``[out, in]`` linear
weights become ``[in, out]`` kernels). The table is expanded per layer from templates, so it
runs both ways: a checkpoint tensor finds its parameter, and a parameter left unfilled names
the tensor that was missing.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pluralrm.errors import CheckpointError

ParamPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Transform:
    """A named conversion from a checkpoint array to a parameter array.

    ``apply`` converts the array; ``checkpoint_shape`` maps a parameter shape back to the shape
    the checkpoint must hold (used to report the expected shape of a bad tensor).
    """

    name: str
    apply: Callable[[np.ndarray], np.ndarray]
    checkpoint_shape: Callable[[tuple[int, ...]], tuple[int, ...]]


IDENTITY = Transform("identity", lambda a: a, lambda s: tuple(s))
TRANSPOSE = Transform("transpose", lambda a: np.ascontiguousarray(a.T), lambda s: tuple(reversed(s)))

Row = tuple[str, ParamPath, Transform]


@dataclass(frozen=True)
class Layout:
    """Checkpoint tensor names -> (NNX parameter path, transform) for one model config.

    Attributes:
        tensors: the table, in a stable order (embeddings, layers, final norm).
        prefixes: base-model prefixes a checkpoint may put before every name (one is stripped).
        ignored: regexes of tensors that exist in checkpoints but are not part of the backbone
            (task heads, poolers, buffers); any other unknown tensor is an error.
        aliases: (old suffix, new suffix) renames applied before look-up (e.g. old BERT
            checkpoints' ``LayerNorm.gamma`` for ``LayerNorm.weight``).
    """

    tensors: Mapping[str, tuple[ParamPath, Transform]]
    prefixes: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()

    def normalize(self, name: str) -> str:
        """The table name of a checkpoint tensor name (prefix stripped, aliases applied)."""
        for prefix in self.prefixes:
            if name.startswith(prefix) and name not in self.tensors:
                name = name[len(prefix):]
                break
        for old, new in self.aliases:
            if name.endswith(old):
                name = name[: -len(old)] + new
        return name

    def is_ignored(self, name: str) -> bool:
        return any(re.search(pattern, name) for pattern in self.ignored)


def expand(global_rows: Iterable[Row], layer_rows: Iterable[Row], num_layers: int) -> dict[str, tuple[ParamPath, Transform]]:
    """Builds a layout table: global rows as given, layer rows once per layer.

    Layer rows hold ``{i}`` in the checkpoint name and the string ``"{i}"`` in the path; both
    become the layer index (an ``int`` in the path, as ``nnx.List`` indexes layers).
    """
    table: dict[str, tuple[ParamPath, Transform]] = {}
    layer_rows = list(layer_rows)
    rows = list(global_rows)
    for i in range(num_layers):
        for name, path, transform in layer_rows:
            rows.append((name.format(i=i), tuple(i if p == "{i}" else p for p in path), transform))
    for name, path, transform in rows:
        table[name] = (path, transform)
    return table


# --------------------------------------------------------------------------- config.json reading
_MISSING: Any = object()


def config_value(raw: Mapping[str, Any], key: str, file: str, default: Any = _MISSING) -> Any:
    """``raw[key]``, or ``default`` when absent or null; a CheckpointError naming the file when required."""
    value = raw.get(key)
    if value is None:
        if default is _MISSING:
            raise CheckpointError(
                f"{file}: required key {key!r} is missing (model_type {raw.get('model_type')!r}); "
                "is this a complete Hugging Face config.json?"
            )
        return default
    return value


def config_int(raw: Mapping[str, Any], key: str, file: str, default: Any = _MISSING) -> int:
    value = config_value(raw, key, file, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CheckpointError(f"{file}: {key!r} must be a non-negative integer (got {value!r})")
    return value
