"""``GroupPreferences``: P(a ≻ b) under every group, with the group labels alongside.

What ``RewardModel.predict_preference(..., groups="all")`` returns. It behaves as the ``[N, G]``
array it wraps (indexing, ``np.asarray``, ``shape``), so array code keeps working, and it says
which column is which group: ``labels[g]`` names column g, ``for_group("country=NG")`` picks one,
``to_dicts()`` gives one ``{label: probability}`` per pair.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class GroupPreferences:
    """``probabilities [N, G]``: P(a_i ≻ b_i) under group g; ``labels [G]``: the groups'
    labels (``"country=NG,language=yo"``), in the model's schema order."""

    probabilities: np.ndarray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.probabilities.ndim != 2 or self.probabilities.shape[1] != len(self.labels):
            raise ValueError(f"probabilities {self.probabilities.shape} do not match {len(self.labels)} labels")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.probabilities.shape

    def __len__(self) -> int:
        return len(self.probabilities)

    def __getitem__(self, index):
        return self.probabilities[index]

    def __array__(self, dtype=None, copy=None):
        return self.probabilities if dtype is None else self.probabilities.astype(dtype)

    def for_group(self, label: str) -> np.ndarray:
        """``[N]`` probabilities under the group labelled ``label``."""
        if label not in self.labels:
            raise KeyError(f"no group {label!r}; the groups are {list(self.labels)}")
        return self.probabilities[:, self.labels.index(label)]

    def to_dicts(self) -> list[dict[str, float]]:
        """One ``{label: P(a ≻ b)}`` per pair."""
        return [dict(zip(self.labels, map(float, row))) for row in self.probabilities]

    def __repr__(self) -> str:
        rows = self.to_dicts()
        shown = ", ".join(f"{k}: {v:.3f}" for k, v in rows[0].items()) if rows else ""
        more = f", ... ({len(rows)} pairs)" if len(rows) > 1 else ""
        return f"GroupPreferences({{{shown}}}{more})"
