"""Shared helpers for tests that train heads on a simulated society with oracle features."""
from pathlib import Path

import numpy as np

from pluralrm.simulate import DEFAULT_SOCIETY, generate
from pluralrm.simulate.oracle import oracle_table


def society(tmp_path: Path, **changes):
    config = DEFAULT_SOCIETY.replace(
        **{"comparisons": 12_000, "harm_rate": 0.0, "local_harm_rate": 0.0, "seed": 3, **changes}
    )
    result = generate(config)
    return result, oracle_table(result, tmp_path / "oracle.npz")


def split_by_item(data, test_fraction=0.25, seed=0):
    items = sorted(set(data["item_id"]))
    rng = np.random.default_rng(seed)
    test_items = set(rng.choice(items, int(len(items) * test_fraction), replace=False).tolist())
    is_test = np.array([i in test_items for i in data["item_id"]])
    return data.select(np.flatnonzero(~is_test)), data.select(np.flatnonzero(is_test)), is_test


def frozen_overrides(table: Path, head: str, steps: int = 500):
    return [
        "model.backbone.type=frozen",
        f"model.backbone.path={table}",
        "model.backbone.hidden_dims=[32]",
        "model.backbone.normalize=false",
        f"model.head.type={head}",
        "model.head.hidden_dim=32",
        f"train.steps={steps}",
        "train.batch_size=64",
        "train.progress=false",
        "optimizer.lr=0.01",
        "schedule.warmup_steps=20",
        f"eval.every={steps}",
        f"checkpoint.every={steps}",
        "checkpoint.async_save=false",
    ]
