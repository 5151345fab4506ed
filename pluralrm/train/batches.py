"""Deterministic, resumable training batches.

The dataset is encoded once (group ids, annotator ids, labels, weights: small arrays); texts
are featurized per batch, in a background thread, so memory stays flat in the dataset size.
Epoch e visits the rows in ``permutation(seed, e)``; a *position* (epoch, batch index) fully
determines the next batch, which is what a checkpoint stores to resume exactly. Each batch is
padded to the featurizer's length bucket of its longest text, so the number of distinct shapes
(and compilations) is bounded by the number of buckets.

Batch layout (numpy, this process's rows)::

    inputs:        {name: [B, 2, L]}   pair axis: 0 = chosen, 1 = rejected
    group_ids:     [B, A] int32        0 = unknown
    annotator_ids: [B]    int32        0 = unknown
    label:         [B]    float32      P(chosen ≻ rejected)
    weight:        [B]    float32      0 for padding rows (eval only)
    values:        [B, 2, K] float32   only when value labels are used
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pluralrm.data.featurize import Featurizer, pair_inputs
from pluralrm.data.schema import GroupSchema

Position = tuple[int, int]


@dataclass(frozen=True)
class EncodedComparisons:
    """A ComparisonDataset with its group/annotator columns turned into ids."""

    prompts: list[str]
    chosen: list[str]
    rejected: list[str]
    group_ids: np.ndarray  # [N, A] int32
    annotator_ids: np.ndarray  # [N] int32
    label: np.ndarray  # [N] float32
    weight: np.ndarray  # [N] float32
    values: np.ndarray | None = None  # [N, 2, K] float32

    def __len__(self) -> int:
        return len(self.prompts)


def encode_comparisons(
    dataset: Any,
    schema: GroupSchema,
    annotators: Sequence[str],
    value_labels: bool = False,
) -> EncodedComparisons:
    """Encodes a ComparisonDataset for training/eval with the model's vocabularies."""
    cols = dataset.column_names
    n = len(dataset)
    index = {a: i + 1 for i, a in enumerate(annotators)}
    values = None
    if value_labels and "chosen_values" in cols and "rejected_values" in cols:
        values = np.stack(
            [np.asarray(dataset["chosen_values"], np.float32), np.asarray(dataset["rejected_values"], np.float32)],
            axis=1,
        )
    return EncodedComparisons(
        prompts=list(dataset["prompt"]),
        chosen=list(dataset["chosen"]),
        rejected=list(dataset["rejected"]),
        group_ids=schema.encode({a: dataset[a] for a in schema.attributes if a in cols}, n=n),
        annotator_ids=np.array(
            [index.get(a, 0) for a in dataset["annotator_id"]] if "annotator_id" in cols else [0] * n,
            np.int32,
        ),
        label=np.asarray(dataset["label"], np.float32),
        weight=np.asarray(dataset["weight"], np.float32) if "weight" in cols else np.ones(n, np.float32),
        values=values,
    )


def make_batch(data: EncodedComparisons, rows: np.ndarray, featurizer: Featurizer, pad_to: int = 0) -> dict:
    """The batch of the given rows (padded with weight-0 rows up to ``pad_to``)."""
    rows = np.asarray(rows)
    batch = {
        "inputs": pair_inputs(
            featurizer,
            [data.prompts[i] for i in rows],
            [data.chosen[i] for i in rows],
            [data.rejected[i] for i in rows],
        ),
        "group_ids": data.group_ids[rows],
        "annotator_ids": data.annotator_ids[rows],
        "label": data.label[rows],
        "weight": data.weight[rows],
    }
    if data.values is not None:
        batch["values"] = data.values[rows]
    extra = pad_to - len(rows)
    if extra > 0:
        batch = _pad(batch, extra)
    return batch


def _pad(tree: Any, extra: int) -> Any:
    if isinstance(tree, dict):
        return {k: _pad(v, extra) for k, v in tree.items()}
    pad = np.zeros((extra,) + tree.shape[1:], tree.dtype)
    return np.concatenate([tree, pad])


class BatchStream:
    """Training batches at positions (epoch, index); see the module docstring."""

    def __init__(self, data: EncodedComparisons, featurizer: Featurizer, batch_size: int, seed: int):
        if len(data) < batch_size:
            from pluralrm.errors import ConfigError

            raise ConfigError(
                f"train.batch_size={batch_size} is larger than this process's training set "
                f"({len(data)} comparisons)"
            )
        self.data = data
        self.featurizer = featurizer
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_epoch = len(data) // batch_size

    def rows(self, position: Position) -> np.ndarray:
        epoch, index = position
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))
        return order[index * self.batch_size : (index + 1) * self.batch_size]

    def next_position(self, position: Position) -> Position:
        epoch, index = position
        index += 1
        return (epoch + 1, 0) if index >= self.batches_per_epoch else (epoch, index)

    def batch(self, position: Position) -> dict:
        return make_batch(self.data, self.rows(position), self.featurizer)

    def iterate(self, start: Position, prefetch: int = 4) -> Iterator[tuple[Position, dict]]:
        """Yields (position, batch) from ``start`` on, featurizing ahead in a thread."""
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def produce():
            pos = start
            try:
                while not stop.is_set():
                    item = (pos, self.batch(pos))
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    pos = self.next_position(pos)
            except BaseException as e:  # surfaced in the consumer
                q.put(e)

        thread = threading.Thread(target=produce, daemon=True, name="pluralrm-batches")
        thread.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)


def eval_batches(data: EncodedComparisons, featurizer: Featurizer, batch_size: int) -> Iterator[tuple[np.ndarray, dict]]:
    """Every row once, in order, in batches padded to ``batch_size`` (padding has weight 0)."""
    for start in range(0, len(data), batch_size):
        rows = np.arange(start, min(start + batch_size, len(data)))
        yield rows, make_batch(data, rows, featurizer, pad_to=batch_size)
