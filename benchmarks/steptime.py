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
    the padded length of its batch (the last axis of its first input array)."""

    def __init__(self):
        self.stamps: list[float] = []
        self.lengths: list[int] = []

    def __call__(self, step: int, batch: dict) -> dict:
        self.stamps.append(time.perf_counter())
        first = next(iter(batch["inputs"].values()))
        self.lengths.append(int(first.shape[-1]))
        return batch

    def to_dict(self, batch_size: int) -> dict:
        return {"stamps": self.stamps, "lengths": self.lengths, "steps": len(self.stamps), "batch_size": batch_size}


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
