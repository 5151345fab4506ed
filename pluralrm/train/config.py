"""Training configuration: frozen dataclasses with working defaults; YAML mirrors them.

A YAML config (``experiments/configs/*.yaml``) has the same nesting as ``TrainConfig``::

    model:
      backbone: {type: hashing, embed_dim: 64}
      head: {type: conditioned}
    data: {path: prefs.jsonl, groups: [country, language], split_by: annotator}
    optimizer: {lr: 3.0e-3}
    train: {steps: 2000, batch_size: 64}

``load_config(path, overrides)`` reads it, applies ``--set key=value`` overrides and returns a
``TrainConfig``; unknown keys fail with the nearest valid key suggested.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pluralrm.configs import apply_overrides, from_dict, load_yaml, to_dict
from pluralrm.errors import ConfigError
from pluralrm.losses import LOSSES
from pluralrm.models.config import ModelConfig


@dataclass(frozen=True)
class DataConfig:
    """Where the comparisons come from and how they are split.

    ``path`` empty means the bundled default society. ``eval_path`` (optional) is a separate
    held-out file; otherwise ``test_size`` of the data (split by ``split_by``: random,
    annotator, item or a group attribute) is held out for evaluation. ``memory_map``: validate
    into ``<run_dir>/data/*.arrow`` and memory-map it (``auto``: files over 256 MiB; Parquet is
    then streamed in chunks, so memory stays flat in the data's size; see
    ``pluralrm.data.mapped``), ``always`` or ``never``.
    """

    path: str = ""
    eval_path: str = ""
    groups: tuple[str, ...] | None = None
    columns: dict[str, str] = field(default_factory=dict)
    on_bad_row: str = "error"
    split_by: str = "random"
    test_size: float = 0.1
    seed: int = 0
    max_train: int = 0
    memory_map: str = "auto"

    def __post_init__(self) -> None:
        if self.memory_map not in ("auto", "always", "never"):
            raise ConfigError(f"data.memory_map must be auto, always or never, got {self.memory_map!r}")


@dataclass(frozen=True)
class LossConfig:
    """Pairwise loss (``bradley_terry``, ``davidson``, ``rao_kupper``; see ``pluralrm.losses``)."""

    type: str = "bradley_terry"
    margin: float = 0.0
    tie_param: float | None = None
    value_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.type not in LOSSES:
            raise ConfigError(f"loss.type must be one of {list(LOSSES)}, got {self.type!r}")


@dataclass(frozen=True)
class OptimizerConfig:
    """Optax optimizer. AdamW by default; weight decay applies to matrices only."""

    name: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    grad_clip: float = 1.0
    accumulation_steps: int = 1

    def __post_init__(self) -> None:
        if self.name not in ("adamw", "adam", "sgd"):
            raise ConfigError(f"optimizer.name must be adamw, adam or sgd, got {self.name!r}")
        if self.lr <= 0:
            raise ConfigError(f"optimizer.lr must be > 0, got {self.lr}")
        if self.accumulation_steps < 1:
            raise ConfigError("optimizer.accumulation_steps must be >= 1")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule: linear warmup, then cosine (or constant / linear) decay."""

    warmup_steps: int = 50
    decay: str = "cosine"
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.decay not in ("cosine", "linear", "constant"):
            raise ConfigError(f"schedule.decay must be cosine, linear or constant, got {self.decay!r}")


@dataclass(frozen=True)
class LoopConfig:
    """The training loop.

    ``group_dropout``: probability of replacing each group attribute (and the annotator) by
    *unknown* in a training example, which trains the shared reward used for unknown groups.
    ``nonfinite_patience``: non-finite steps in a row tolerated before stopping.
    ``dtype``: ``bfloat16`` is mixed precision: each step casts the float32 parameters (the
    master weights, which the optimizer updates) to bfloat16; a transformer backbone's dense
    layers then multiply bfloat16 operands with float32 accumulation, forward and backward, and
    keep norms, softmax and the residual stream in float32 (``layers.Dense``).
    """

    steps: int = 1000
    batch_size: int = 64
    seed: int = 0
    group_dropout: float = 0.1
    dtype: str = "float32"
    log_every: int = 50
    nonfinite_patience: int = 5
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be >= 1")
        if not 0.0 <= self.group_dropout < 1.0:
            raise ConfigError(f"train.group_dropout must be in [0, 1), got {self.group_dropout}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"train.dtype must be float32 or bfloat16, got {self.dtype!r}")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation every ``every`` steps (0 = only at the end) and best-checkpoint selection."""

    every: int = 200
    batch_size: int = 256
    metric: str = "accuracy"
    mode: str = "max"
    early_stopping_patience: int = 0

    def __post_init__(self) -> None:
        if self.metric not in ("accuracy", "nll", "loss"):
            raise ConfigError(f"eval.metric must be accuracy, nll or loss, got {self.metric!r}")
        if self.mode not in ("max", "min"):
            raise ConfigError(f"eval.mode must be max or min, got {self.mode!r}")


@dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints every ``every`` steps; keep the last ``keep_last`` and the best
    ``keep_best``; ``async_save`` writes in the background while training continues.

    ``every``: ``auto`` (about every 10% of the run, see ``checkpoint_interval``), a number of
    steps, or 0 for no periodic checkpoints (the end, evaluations and SIGTERM still save).
    """

    every: int | str = "auto"
    keep_last: int = 2
    keep_best: int = 1
    async_save: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.every, str) and self.every != "auto":
            raise ConfigError(f"checkpoint.every must be a number of steps or auto, got {self.every!r}")
        if isinstance(self.every, int) and self.every < 0:
            raise ConfigError(f"checkpoint.every must be >= 0 (0: no periodic checkpoints), got {self.every}")


def checkpoint_interval(config: CheckpointConfig, steps: int) -> int:
    """Steps between periodic checkpoints of a run of ``steps`` steps (0: none).

    ``auto`` saves about every 10% of the run. A fixed interval that would leave no checkpoint
    before the end (``every >= steps``) falls back to ``auto``: a kill should never lose a
    whole run.
    """
    auto = max(1, -(-steps // 10))
    if config.every == "auto":
        return auto
    if config.every and config.every >= steps > 1:
        return auto
    return int(config.every)


@dataclass(frozen=True)
class MeshConfig:
    """Device mesh with axes ``data`` and ``model``.

    ``data = -1`` uses every device not used by ``model``. ``fsdp`` shards each parameter with
    at least ``fsdp_min_size`` elements over the ``model`` axis (largest divisible dimension);
    otherwise parameters are replicated. ``distributed`` calls ``jax.distributed.initialize()``
    (multi-host); each process then reads its shard of the data.
    """

    data: int = -1
    model: int = 1
    fsdp: bool = False
    fsdp_min_size: int = 1 << 16
    distributed: bool = False


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    run_dir: str = "runs/default"


# Keys that may change when a run is resumed, because they cannot change its result: what is
# logged and shown, how often it is evaluated and checkpointed, how data files are read, and a
# larger train.steps to extend the run (the learning-rate schedule then spans the new length).
RESUME_SAFE_KEYS = (
    "train.steps", "train.log_every", "train.progress",
    "eval.every", "eval.batch_size",
    "checkpoint.every", "checkpoint.keep_last", "checkpoint.keep_best", "checkpoint.async_save",
    "data.memory_map", "run_dir",
)


def resume_differences(saved: dict, config: TrainConfig) -> list[str]:
    """Keys (dotted) where ``config`` differs from a run's saved config, resume-safe keys aside."""
    saved = to_dict(from_dict(TrainConfig, saved))  # keys added since the run was saved: defaults
    return [k for k in _diff_keys(saved, to_dict(config)) if k not in RESUME_SAFE_KEYS]


def resume_config(run_dir: str, overrides: Sequence[str] = ()) -> TrainConfig:
    """The saved config of ``run_dir`` with resume-safe ``overrides`` applied.

    Raises:
      ConfigError: the run has no ``config.yaml``, an override names a key that could change
        the result (it names the key and the allowed ones), or ``train.steps`` would shrink.
    """
    from pathlib import Path

    saved_path = Path(run_dir) / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"--resume {run_dir}: no config.yaml there; is it a run directory (made by pluralrm train)?")
    data = load_yaml(str(saved_path))
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in RESUME_SAFE_KEYS:
            raise ConfigError(
                f"--set {key} cannot change when resuming {run_dir}: it could change the result. "
                f"Keys that may change on resume: {', '.join(RESUME_SAFE_KEYS)}; "
                "to train with a different config, start a new run directory"
            )
    saved = from_dict(TrainConfig, data)
    config = from_dict(TrainConfig, apply_overrides(data, [*overrides, f"run_dir={run_dir}"], TrainConfig))
    if config.train.steps < saved.train.steps:
        raise ConfigError(
            f"--set train.steps={config.train.steps}: train.steps can only grow when resuming "
            f"(the run was set to {saved.train.steps})"
        )
    return config


def _diff_keys(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Reads a YAML config (or the defaults when ``path`` is None) and applies overrides."""
    data = load_yaml(path) if path else {}
    data = apply_overrides(data, overrides, TrainConfig)
    return from_dict(TrainConfig, data)


def config_to_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)
