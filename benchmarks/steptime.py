"""Steady-state training throughput, measured the same way for pluralrm and for peers.

pluralrm: ``fit(..., transform_batch=clock, on_log=clock.on_log)`` with ``train.log_every``
small (1 for transformer steps): ``on_log`` runs at the loop's read points, right after the host
has waited for that step, so the rate between two read points is the training rate. The step
loop never waits between read points (no per-step host sync): stamps taken in
``transform_batch`` (the prefetch thread) or anywhere else in the loop measure how fast batches
are prepared or dispatched, not trained, and run ahead of the device by up to the dispatch
queue's depth. ``transform_batch`` still records each batch's layout.

Peers (TRL's ``RewardTrainer``): a callback at step begin (``stamps``); torch on CPU computes
each step before the next begins.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pluralrm.models.transformer.tiled import computed_pairs


class StepClock:
    """Hooks for ``pluralrm.train.fit``: ``on_log`` records when each read point's step has
    finished (``log_points``: ``(step, seconds)``); the ``transform_batch`` hook (``__call__``)
    records the layout of each batch: the row width (last axis of ``input_ids``), the number of
    rows the model runs (packed rows, or 2 x pairs padded sequences), with ``sequence_lengths``
    every sequence's real length (and, as ``stamps``, when the prefetch thread prepared it: not a
    training time).

    Per-sequence lengths are kept only when asked (``sequence_lengths=True``, for FLOP counts):
    they are 2 x batch numbers a step, and as Python lists of ints (~40 bytes each) a 10M-row
    epoch of batch 4,096 held ~0.8 GB of them, which the memory benchmark counted as the
    trainer's heap. Kept as int32 arrays (8 KB a step at batch 1,024)."""

    def __init__(self, sequence_lengths: bool = False):
        self.log_points: list[tuple[int, float]] = []
        self.stamps: list[float] = []
        self.lengths: list[int] = []
        self.rows: list[int] = []
        self.keep_sequence_lengths = sequence_lengths
        self.sequence_lengths: list[np.ndarray] = []
        self.tile_pairs: list[int] = []

    def __call__(self, step: int, batch: dict) -> dict:
        self.stamps.append(time.perf_counter())
        inputs = batch["inputs"]
        first = inputs.get("input_ids", next(iter(inputs.values())))
        self.lengths.append(int(first.shape[-1]))
        self.rows.append(int(np.prod(first.shape[:-1])))
        pairs = inputs.get("tile_pairs")  # block-sparse attention: [shards, P, 2], padded to the square
        self.tile_pairs.append(0 if pairs is None else computed_pairs(np.asarray(pairs)))
        if self.keep_sequence_lengths:
            weight = np.asarray(batch["weight"]) > 0
            if "segment_ids" in inputs:  # packed: per-sequence lengths [B, 2]
                real = np.asarray(inputs["lengths"])[weight]
            elif "attention_mask" in inputs:
                real = np.asarray(inputs["attention_mask"]).sum(axis=-1)[weight]
            else:  # hashed n-gram ids, 0 = padding
                real = (np.asarray(first) != 0).sum(axis=-1)[weight]
            self.sequence_lengths.append(real.reshape(-1).astype(np.int32))
        return batch

    def on_log(self, step: int, means: dict) -> None:
        self.log_points.append((int(step), time.perf_counter()))

    def to_dict(self, batch_size: int) -> dict:
        return {"log_points": self.log_points, "stamps": self.stamps, "lengths": self.lengths, "widths": self.lengths,
                "rows": self.rows, "sequence_lengths": [n.tolist() for n in self.sequence_lengths], "tile_pairs": self.tile_pairs, "steps": len(self.stamps), "batch_size": batch_size}


def steady_rate(record: dict, skip: int) -> tuple[float, float, list[int]]:
    """(comparisons/s, seconds/step, padded lengths of the timed steps) after step ``skip``.

    With ``log_points`` (pluralrm): between the first read point at or after step ``skip`` and
    the last. Otherwise (a peer's step-begin ``stamps``): over steps ``skip`` .. last.
    """
    if record.get("log_points"):
        points = [(s, t) for s, t in record["log_points"] if s >= skip]
        if len(points) < 2:
            raise ValueError(f"{len(points)} read points at or after step {skip}: need 2 (lower train.log_every)")
        (first, t0), (last, t1) = points[0], points[-1]
        seconds = (t1 - t0) / (last - first)
        return record["batch_size"] / seconds, seconds, record["lengths"][first:last]
    stamps = record["stamps"][: record["steps"]]
    if len(stamps) - skip < 2:
        raise ValueError(f"{len(stamps)} steps recorded: need at least skip + 2 = {skip + 2}")
    window = stamps[skip:]
    seconds = (window[-1] - window[0]) / (len(window) - 1)
    return record["batch_size"] / seconds, seconds, record["lengths"][skip : record["steps"] - 1]


def mean_length(lengths: list[int]) -> float:
    return float(np.mean(lengths)) if lengths else 0.0


# --------------------------------------------------------------------------- step time vs length
def length_sweep(lengths=(64, 128, 256, 512), batch_size: int = 16, batches: int = 3, repeats: int = 2,
                 data_path: str = str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl"),
                 batchings=("packed", "padded")) -> list[dict]:
    """Seconds of one MiniLM-L6 train step (forward + backward of the pooled features and a
    Bradley-Terry loss, jitted, compiled beforehand) on the same HH-RLHF pairs truncated to each
    max length, packed and padded, with the tokens each layout computes on.

    Returns one dict per (max length, batching): ``seconds`` (median over ``batches`` x
    ``repeats``), ``real_tokens`` and ``slots`` (token positions computed) per step.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from pluralrm.data.adapters.hh_rlhf import hh_rlhf
    from pluralrm.data.featurize import pair_inputs
    from pluralrm.data.packing import packed_pair_inputs
    from pluralrm.data.tokenize import TokenizerFeaturizer
    from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig

    data = hh_rlhf(data_path, on_bad_row="skip")
    rows = data.select(range(batch_size * batches))
    out = []
    for length in lengths:
        config = TransformerBackboneConfig("minilm-l6", pooling="cls", max_length=length,
                                           buckets=tuple(b for b in (32, 64, 128, 256, 512) if b <= length))
        model = TransformerBackbone.from_config(config)
        graphdef, state = nnx.split(model)
        featurizer = TokenizerFeaturizer("minilm-l6", max_length=length, buckets=config.buckets)

        @jax.jit
        def step(state, inputs):
            def loss(state):
                net = nnx.merge(graphdef, state)
                if "segment_ids" in inputs:
                    f = net.features(inputs)
                else:
                    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in inputs.items()}
                    f = net.features(flat).reshape(-1, 2, net.dim)
                gap = jnp.sum(f[:, 0] - f[:, 1], axis=-1)
                return jnp.mean(jax.nn.softplus(-gap))
            return jax.grad(loss)(state)

        for batching in batchings:
            times, real, slots = [], [], []
            for b in range(batches):
                part = rows[b * batch_size : (b + 1) * batch_size]
                texts = (part["prompt"], part["chosen"], part["rejected"])
                if batching == "packed":
                    inputs = packed_pair_inputs(featurizer, *texts)
                    real.append(int(inputs["lengths"].sum()))
                else:
                    inputs = pair_inputs(featurizer, *texts)
                    real.append(int(inputs["attention_mask"].sum()))
                slots.append(int(inputs["input_ids"].size))
                inputs = {k: jnp.asarray(v) for k, v in inputs.items()}
                jax.block_until_ready(step(state, inputs))  # compile
                for _ in range(repeats):
                    start = time.perf_counter()
                    jax.block_until_ready(step(state, inputs))
                    times.append(time.perf_counter() - start)
            row = {"max_length": length, "batching": batching, "seconds": float(np.median(times)),
                   "real_tokens": float(np.mean(real)), "slots": float(np.mean(slots))}
            print(f"  L={length:4d} {batching:7s} {row['seconds']:7.2f} s/step  real tokens {row['real_tokens']:7.0f}  "
                  f"computed slots {row['slots']:7.0f}  ms per 1k real tokens {1e6 * row['seconds'] / row['real_tokens']:6.0f}",
                  flush=True)
            out.append(row)
    return out


if __name__ == "__main__":
    import argparse
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    parser = argparse.ArgumentParser(description="MiniLM-L6 train step time vs max length, packed and padded")
    parser.add_argument("--lengths", default="64,128,256,512")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from machine import describe

    print(f"machine: {describe()}", flush=True)
    result = length_sweep(tuple(int(x) for x in args.lengths.split(",")), batches=args.batches)
    if args.out:
        from pluralrm.provenance import provenance

        command = "python benchmarks/steptime.py " + " ".join(sys.argv[1:])
        Path(args.out).write_text(json.dumps({"command": command, **provenance(), "machine": describe(),
                                              "rows": result}, indent=1))
