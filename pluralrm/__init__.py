"""pluralrm: pluralistic reward modeling in JAX.

Reward models conditioned on who is judging (group- and annotator-conditioned heads on a
shared trunk), scoring across groups with explicit aggregation rules, and measurement of
disagreement between annotator groups in the data and in the model.

The front door: one import reaches what a first session uses, each name loaded on first use so
that ``import pluralrm`` (and the CLI's ``--help``) stay fast::

    import pluralrm as prm
    data = prm.data.load("prefs.jsonl", groups=["country"])
    model, result = prm.fit(prm.load_config("config.yaml", ["run_dir=runs/x"]), data)
    rm = prm.load("runs/x")                     # = prm.RewardModel.load
    report = prm.analyze(data=data, predictions=rm.predict(data), by="country")
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
    "fit": "pluralrm.train",
    "load_config": "pluralrm.train",
    "TrainConfig": "pluralrm.train",
    "analyze": "pluralrm.calibration",
    "RewardModel": "pluralrm.models.reward_model",
    "GroupSchema": "pluralrm.data.schema",
    "reward_quantile": "pluralrm.reward_distributions",
    "DataError": "pluralrm.errors",
    "ConfigError": "pluralrm.errors",
    "CheckpointError": "pluralrm.errors",
}


def load(path: str, checkpoint: str = "best") -> Any:
    """A reward model from a model directory or a ``pluralrm train`` run directory
    (``RewardModel.load``; ``checkpoint``: ``"best"``, ``"latest"`` or a step number)."""
    from pluralrm.models.reward_model import RewardModel

    return RewardModel.load(path, checkpoint=checkpoint)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"pluralrm.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'pluralrm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_ATTRIBUTES))
