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
    ``keep_best``; ``async_save`` writes in the background while training continues."""

    every: int = 200
    keep_last: int = 2
    keep_best: int = 1
    async_save: bool = True


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


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Reads a YAML config (or the defaults when ``path`` is None) and applies overrides."""
    data = load_yaml(path) if path else {}
    data = apply_overrides(data, overrides, TrainConfig)
    return from_dict(TrainConfig, data)


def config_to_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)
