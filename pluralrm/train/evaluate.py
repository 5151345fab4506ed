"""Held-out evaluation during training: overall and per-group accuracy, NLL and counts.

Metrics are computed from P(chosen ≻ rejected) per row. Accuracy counts hard labels only
(label ≠ 0.5; a soft label counts as its rounded side); NLL is the soft-label cross-entropy, so
ties and soft labels contribute. Both are weighted by the rows' weights. (The calibration
module has the full set of calibration metrics with intervals; this is the training monitor.)

During training, ``Evaluator`` computes the same metrics without reading per-row
probabilities back: each row carries its group *cell* (its group-id tuple's index among the
eval set's distinct tuples), the jitted eval step adds per-cell sums (``cell_sums``) on the
device, and one ``[5, C]`` array is read at the end (``metrics_from_sums``). With several
processes, each evaluates its contiguous share of the rows and the sums are reduced across them
by the sharded computation itself; no process reads another's arrays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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


# ----------------------------------------------------------------------- on-device evaluation
def cell_sums(prob, label, weight, cell, num_cells: int):
    """Per-cell sums ``[5, C]`` (jnp) of: rows, weight, weight x NLL, weight of hard labels,
    weight of correct hard labels; rows with ``cell`` -1 (padding) count nowhere. ``prob``,
    ``label``, ``weight``: [B] float32; ``cell``: [B] int32."""
    import jax
    import jax.numpy as jnp

    p = jnp.clip(prob, _EPS, 1 - _EPS)
    nll = -(label * jnp.log(p) + (1 - label) * jnp.log1p(-p))
    hard = (label != 0.5).astype(jnp.float32)
    correct = ((p > 0.5) == (label > 0.5)).astype(jnp.float32)
    values = jnp.stack([jnp.ones_like(weight), weight, weight * nll, weight * hard, weight * hard * correct], axis=1)
    segment = jnp.where(cell < 0, num_cells, cell)
    return jax.ops.segment_sum(values, segment, num_segments=num_cells + 1)[:num_cells].T


def metrics_from_sums(sums: np.ndarray, labels: list[str]) -> list[GroupMetrics]:
    """GroupMetrics (overall first, then cells by decreasing count) from ``cell_sums`` totals."""
    sums = np.asarray(sums, np.float64)

    def one(name, s):
        accuracy = float(s[4] / s[3]) if s[3] > 0 else float("nan")
        return GroupMetrics(name, int(round(s[0])), accuracy, float(s[2] / max(s[1], _EPS)))

    out = [one("all", sums.sum(axis=1))]
    if labels:
        rows = [one(name, sums[:, c]) for c, name in enumerate(labels)]
        rows.sort(key=lambda g: (-g.count, g.group))
        out += rows
    return out


class Evaluator:
    """Held-out metrics of the current parameters, jitted end to end (see module docstring).

    Args:
      data: the encoded eval comparisons (all of them, on every process).
      featurizer, schema: the model's.
      eval_step: ``make_eval_step(...)`` (sums replicated on the mesh).
      batch_size: the global eval batch; each of P processes feeds ``batch_size / P`` rows.
      place: ``batch -> device batch`` (this process's rows → global arrays).
      sums_sharding: where the sums live (replicated over the mesh).
    """

    def __init__(self, data: Any, featurizer: Any, schema: GroupSchema, eval_step: Any, batch_size: int,
                 place: Any, sums_sharding: Any, process_index: int = 0, process_count: int = 1):
        n = len(data)
        if schema.num_attributes and n:
            keys, inverse = np.unique(data.group_ids, axis=0, return_inverse=True)
            self.cells = inverse.reshape(-1).astype(np.int32)
            self.labels = [",".join(f"{a}={v}" for a, v in zip(schema.attributes, vals)) for vals in schema.decode(keys)]
        else:
            self.cells, self.labels = np.zeros(n, np.int32), []
        self.data, self.featurizer, self.step, self.place = data, featurizer, eval_step, place
        self.sums_sharding = sums_sharding
        share = math.ceil(n / process_count)
        self.rows = np.arange(process_index * share, min((process_index + 1) * share, n))
        self.local_batch = batch_size // process_count
        self.num_batches = math.ceil(share / self.local_batch)

    def __call__(self, params: Any, rest: Any) -> list[dict]:
        import jax

        from pluralrm.train.batches import make_batch
        from pluralrm.train.sharding import place

        sums = place(np.zeros((5, max(len(self.labels), 1)), np.float32), self.sums_sharding)
        for b in range(self.num_batches):
            rows = self.rows[b * self.local_batch : (b + 1) * self.local_batch]
            cell = np.full(self.local_batch, -1, np.int32)
            cell[: len(rows)] = self.cells[rows]
            if not len(rows):  # this process's share ran out before the others': count nothing
                rows = np.zeros(1, np.int64)
            batch = make_batch(self.data, rows, self.featurizer, pad_to=self.local_batch)
            sums = self.step(params, rest, self.place(dict(batch, cell=cell)), sums)
        return [g.to_dict() for g in metrics_from_sums(jax.device_get(sums), self.labels)]
