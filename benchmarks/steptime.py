"""Steady-state training throughput from start-of-step timestamps, measured the same way for
pluralrm (``fit(..., transform_batch=StepClock())``) and for peers (a callback at step begin).

The trainer reads its metrics back every step, so the start of step k+1 is the end of step k:
the rate over steps ``skip`` .. last excludes compilation and warm-up and includes everything
else the loop does (featurization waits, host transfers, metrics).
"""
from __future__ import annotations

import time

import numpy as np


class StepClock:
    """A ``transform_batch`` hook for ``pluralrm.train.fit`` recording when each step starts and
    the layout of its batch: the row width (last axis of ``input_ids``), the number of rows the
    model runs (packed rows, or 2 x pairs padded sequences) and every sequence's real length."""

    def __init__(self):
        self.stamps: list[float] = []
        self.lengths: list[int] = []
        self.rows: list[int] = []
        self.sequence_lengths: list[list[int]] = []

    def __call__(self, step: int, batch: dict) -> dict:
        self.stamps.append(time.perf_counter())
        inputs = batch["inputs"]
        first = inputs.get("input_ids", next(iter(inputs.values())))
        self.lengths.append(int(first.shape[-1]))
        self.rows.append(int(np.prod(first.shape[:-1])))
        weight = np.asarray(batch["weight"]) > 0
        if "segment_ids" in inputs:  # packed: per-sequence lengths [B, 2]
            real = np.asarray(inputs["lengths"])[weight]
        else:
            real = np.asarray(inputs["attention_mask"]).sum(axis=-1)[weight]
        self.sequence_lengths.append([int(n) for n in real.reshape(-1)])
        return batch

    def to_dict(self, batch_size: int) -> dict:
        return {"stamps": self.stamps, "lengths": self.lengths, "widths": self.lengths, "rows": self.rows,
                "sequence_lengths": self.sequence_lengths, "steps": len(self.stamps), "batch_size": batch_size}


def steady_rate(record: dict, skip: int) -> tuple[float, float, list[int]]:
    """(comparisons/s, seconds/step, padded lengths of the timed steps) over steps ``skip`` ..
    last of a record ``{"stamps", "lengths", "steps", "batch_size"}``."""
    stamps = record["stamps"][: record["steps"]]
    if len(stamps) - skip < 2:
        raise ValueError(f"{len(stamps)} steps recorded: need at least skip + 2 = {skip + 2}")
    window = stamps[skip:]
    seconds = (window[-1] - window[0]) / (len(window) - 1)
    return record["batch_size"] / seconds, seconds, record["lengths"][skip : record["steps"] - 1]


def mean_length(lengths: list[int]) -> float:
    return float(np.mean(lengths)) if lengths else 0.0
