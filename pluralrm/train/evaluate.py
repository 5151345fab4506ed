"""Held-out evaluation during training: overall and per-group accuracy, NLL and counts.

Metrics are computed from P(chosen ≻ rejected) per row. Accuracy counts hard labels only
(label ≠ 0.5; a soft label counts as its rounded side); NLL is the soft-label cross-entropy, so
ties and soft labels contribute. Both are weighted by the rows' weights. (The calibration
module has the full set of calibration metrics with intervals; this is the training monitor.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralrm.data.schema import GroupSchema

_EPS = 1e-7


@dataclass(frozen=True)
class GroupMetrics:
    group: str
    count: int
    accuracy: float
    nll: float

    def to_dict(self) -> dict:
        return {"group": self.group, "count": self.count, "accuracy": self.accuracy, "nll": self.nll}


def pair_metrics(prob: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, float]:
    """(accuracy, NLL) of probabilities ``[N]`` against labels ``[N]`` (see module docstring)."""
    prob = np.clip(np.asarray(prob, np.float64), _EPS, 1 - _EPS)
    label = np.asarray(label, np.float64)
    weight = np.ones_like(prob) if weight is None else np.asarray(weight, np.float64)
    nll_rows = -(label * np.log(prob) + (1 - label) * np.log1p(-prob))
    nll = float(np.sum(weight * nll_rows) / max(np.sum(weight), _EPS))
    hard = label != 0.5
    w_hard = weight * hard
    correct = (prob > 0.5) == (label > 0.5)
    accuracy = float(np.sum(w_hard * correct) / np.sum(w_hard)) if np.sum(w_hard) > 0 else float("nan")
    return accuracy, nll


def group_metrics(
    prob: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray,
    group_ids: np.ndarray,
    schema: GroupSchema,
) -> list[GroupMetrics]:
    """Metrics overall (group ``"all"``) and per group cell (value tuple of the row), sorted by
    decreasing count. Rows whose groups are not in the schema's group list are reported under
    their decoded values (``<unk>`` for unknown values)."""
    out = [GroupMetrics("all", int(len(prob)), *pair_metrics(prob, label, weight))]
    if schema.num_attributes == 0 or len(prob) == 0:
        return out
    keys, inverse = np.unique(group_ids, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    labels = [",".join(f"{a}={v}" for a, v in zip(schema.attributes, vals)) for vals in schema.decode(keys)]
    rows = []
    for k, name in enumerate(labels):
        m = inverse == k
        rows.append(GroupMetrics(name, int(m.sum()), *pair_metrics(prob[m], label[m], weight[m])))
    rows.sort(key=lambda g: (-g.count, g.group))
    return out + rows
