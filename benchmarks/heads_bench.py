"""The heads-only regime: every head trained on cached embeddings (1M comparisons, D = 384,
G = 100 groups), time and steps until held-out accuracy is within 0.5 pt of its final value.

    python benchmarks/heads_bench.py [--comparisons 1000000] [--steps 400] [--batch-size 512] [--quick]

Data: ``generate`` with 100 countries (one language each: 100 groups), ``comparisons``
rows, value profiles written out (``value_labels``). Embeddings are *synthetic* and documented
as such: real MiniLM embeddings of a million texts take hours on this CPU, so each distinct
(prompt, response) gets ``e = P v + 0.5 n``, with ``v`` the response's planted K = 6 value
profile, ``P`` a fixed random ``[384, 6]`` projection (unit-variance entries) and ``n`` standard
normal noise in all 384 dimensions, written with ``EmbeddingTable.write``. Harms are not in the
embedding (they are in the choices), so accuracy tops out below the simulator's Bayes accuracy.

Each head trains on a ``frozen`` backbone over that table (no MLP: ``hidden_dims: []``, the
LayerNorm only), AdamW lr 3e-3, constant, batch ``--batch-size``; held-out accuracy on
``--eval`` comparisons every ``--eval-every`` steps. Training seconds exclude the evaluations
(their step intervals are replaced by the median step time) and include everything else.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from steptime import StepClock  # noqa: E402

HEADS = ("pooled", "conditioned", "per_group", "mixture", "distributional", "values")
DIM = 384


def society(n: int, groups: int, seed: int = 0):
    from pluralrm.simulate import SocietyConfig, generate

    config = SocietyConfig(countries=groups, languages=4, annotators=groups * 10, comparisons=n,
                           annotators_per_item=5, value_labels=True, seed=seed)
    return generate(config).data


def write_table(data, path: Path, seed: int = 0) -> int:
    """Synthetic embeddings (module docstring) for every distinct (prompt, response) of ``data``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pluralrm.data.columns import arrow_column
    from pluralrm.data.embeddings import KEY_SEP, EmbeddingTable

    prompt = arrow_column(data, "prompt")
    keys, profiles = [], []
    for side in ("chosen", "rejected"):
        keys.append(pc.binary_join_element_wise(prompt, arrow_column(data, side), KEY_SEP))
        values = arrow_column(data, f"{side}_values").combine_chunks()
        profiles.append(pc.list_flatten(values).to_numpy().reshape(len(data), -1))
    keys_all = pa.chunked_array([c for k in keys for c in k.chunks])
    unique_keys, first = np.unique(np.asarray(keys_all.to_pylist(), dtype=object), return_index=True)
    profile = np.concatenate(profiles)[first]
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((DIM, profile.shape[1]))
    vectors = profile @ projection.T + 0.5 * rng.standard_normal((len(first), DIM))
    EmbeddingTable.write(path, list(unique_keys), vectors.astype(np.float32))
    return len(first)


def train_head(head: str, table: Path, train, held_out, args, run_dir: Path) -> dict:
    from pluralrm.train import fit, load_config

    sets = [
        "model.backbone.type=frozen", f"model.backbone.path={table}", "model.backbone.hidden_dims=[]",
        f"model.head.type={head}", "model.head.hidden_dim=64", "optimizer.lr=3e-3", "schedule.warmup_steps=0",
        "schedule.decay=constant", f"train.steps={args.steps}", f"train.batch_size={args.batch_size}",
        "train.progress=false", "train.log_every=1", f"eval.every={args.eval_every}",  # timed at read points
        "eval.batch_size=4096", "checkpoint.every=0", f"run_dir={run_dir}",
    ]
    if head == "values":
        sets.append("model.head.num_values=6")
    clock = StepClock()
    start = time.perf_counter()
    _, result = fit(load_config(None, sets), train, held_out, transform_batch=clock, on_log=clock.on_log)
    wall = time.perf_counter() - start
    curve = [(e["step"], e["groups"][0]["accuracy"]) for e in result.eval_metrics]
    final = curve[-1][1]
    converged = next(step for step, acc in curve if acc >= final - 0.005)
    intervals = np.diff([t for _, t in clock.log_points])  # interval i: end of step i+1 -> end of step i+2
    evals = np.array([(i + 1) % args.eval_every == 0 for i in range(len(intervals))])
    step_time = float(np.median(intervals[~evals])) if (~evals).any() else float("nan")
    train_seconds = np.where(evals, step_time, intervals)
    return {"head": head, "final_accuracy": final, "converged_step": converged,
            "seconds_to_converge": float(train_seconds[: converged - 1].sum()) + step_time,
            "step_ms": step_time * 1e3, "cmp_per_s": args.batch_size / step_time, "wall_seconds": wall,
            "compilations": result.compilations, "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--eval", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--heads", default=",".join(HEADS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    if args.quick:
        args.comparisons, args.groups, args.eval, args.steps, args.batch_size, args.eval_every = 3000, 5, 500, 6, 64, 3
    from machine import describe

    from pluralrm.provenance import provenance

    print(f"machine: {describe()}", flush=True)
    start = time.perf_counter()
    data = society(args.comparisons + args.eval, args.groups)
    print(f"simulated {len(data):,} comparisons in {time.perf_counter() - start:.0f} s", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pluralrm-heads-") as tmp:
        table = Path(tmp) / "table.npz"
        start = time.perf_counter()
        keys = write_table(data, table)
        print(f"embedding table: {keys:,} distinct (prompt, response), D={DIM}, {time.perf_counter() - start:.0f} s", flush=True)
        held_out = data.select(range(args.eval))
        train = data.select(range(args.eval, len(data)))
        print(f"{'head':15} {'final acc':>9} {'conv. step':>10} {'s to conv.':>10} {'ms/step':>8} {'cmp/s':>9}")
        for head in args.heads.split(","):
            r = train_head(head, table, train, held_out, args, Path(tmp) / head)
            rows.append(r)
            print(f"{head:15} {r['final_accuracy']:9.3f} {r['converged_step']:10d} {r['seconds_to_converge']:10.1f} "
                  f"{r['step_ms']:8.1f} {r['cmp_per_s']:9.0f}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "-quick" if args.quick else ""
    (out / f"heads{tag}.json").write_text(json.dumps({"machine": describe(), **provenance(), "args": vars(args), "heads": rows}, indent=1))


if __name__ == "__main__":
    main()
