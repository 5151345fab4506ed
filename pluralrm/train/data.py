"""The train/eval comparisons a TrainConfig names: loaded, validated and split."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pluralrm.train.config import DataConfig


@dataclass(frozen=True)
class PreparedData:
    train: Any  # datasets.Dataset
    eval: Any | None
    source: str


def prepare_data(config: DataConfig) -> PreparedData:
    """Loads ``config.path`` (the bundled default society when empty), then either loads
    ``config.eval_path`` or holds out ``test_size`` split by ``split_by``."""
    from pluralrm.data import load, split

    groups = list(config.groups) if config.groups is not None else None
    if config.path:
        data = load(config.path, groups=groups, columns=dict(config.columns) or None, on_bad_row=config.on_bad_row)
        source = config.path
    else:
        from pluralrm.simulate import load_default

        data = load_default().data
        if groups is not None:
            from pluralrm.data.schema import group_attributes

            data = data.remove_columns([c for c in group_attributes(data) if c not in groups])
        source = "bundled default society"
    if config.eval_path:
        train = data
        evaluation = load(config.eval_path, groups=groups, columns=dict(config.columns) or None, on_bad_row=config.on_bad_row)
    elif config.test_size > 0:
        train, evaluation = split(data, by=config.split_by, test_size=config.test_size, seed=config.seed)
    else:
        train, evaluation = data, None
    if config.max_train and len(train) > config.max_train:
        train = train.shuffle(seed=config.seed).select(range(config.max_train))
    return PreparedData(train, evaluation, source)
