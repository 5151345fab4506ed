"""pluralrm: pluralistic reward modeling in JAX.

Reward models conditioned on who is judging (group- and annotator-conditioned heads on a
shared trunk), scoring across groups with explicit aggregation rules, and measurement of
disagreement between annotator groups in the data and in the model.

Submodules load on first use so that ``import pluralrm`` (and the CLI's ``--help``) stay fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "data",
    "simulate",
    "models",
    "losses",
    "reward_distributions",
    "train",
    "explain",
    "score",
    "calibration",
    "errors",
}
_ATTRIBUTES = {
    "RewardModel": "pluralrm.models.reward_model",
    "GroupSchema": "pluralrm.data.schema",
    "reward_quantile": "pluralrm.reward_distributions",
    "DataError": "pluralrm.errors",
    "ConfigError": "pluralrm.errors",
    "CheckpointError": "pluralrm.errors",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"pluralrm.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'pluralrm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_ATTRIBUTES))
