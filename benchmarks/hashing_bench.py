"""The demo's training (hashing backbone) old vs new in one run, and where its step time goes.

    python benchmarks/hashing_bench.py [--old 9752700] [--rounds 2] [--steps 300]
                                       [--sections throughput,featurize,profile] [--out benchmarks/results]

``--old`` is checked out with ``git worktree add`` into a temporary directory and imported in
subprocesses through ``PYTHONPATH``; this tree runs the same child code the same way, so both
sides pay the same start-up. Runs are interleaved (old, new, old, new, ...) so that the load of
the shared machine falls on both alike.

1. ``throughput``: ``fit`` on the demo's data (the bundled society, split by item, 20% held
   out) with the demo's model (hashing backbone, conditioned head), no evaluations or
   intermediate checkpoints, for each setting: the old code at the old demo defaults (batch 64,
   lr 0.01), this tree at the same settings (the code alone), and this tree at the demo's
   current defaults (``pluralrm.cli.demo.DEMO_BATCH`` / ``DEMO_LR``). Each setting trains the
   same number of comparisons (``--steps`` x 64). Reported: steady comparisons/s to the return of
   ``fit`` (the final checkpoint included) from the first read point at or after step ``skip``
   (``fit(on_log=...)``, read points every ``skip`` steps) in a tree whose loop reads the device
   only there, or from the start of step ``skip`` in an older tree that synced every step; the
   whole ``fit`` in seconds (compilation and encoding included) and ``encode_comparisons``
   seconds.
2. ``featurize``: the hashing featurizer alone (old vs new, interleaved) on batches of
   ``--featurize-batch`` random comparisons of a 200,000-comparison simulated society (saved once
   to Parquet by this tree; each child reads it with pyarrow and featurizes
   ``(prompt, chosen)`` and ``(prompt, rejected)`` as ``pair_inputs`` does), a fresh featurizer
   per batch so every text is hashed: what a large corpus of mostly distinct texts costs per
   batch. Reported: pairs/s over ``--featurize-batches`` batches.
3. ``profile``: for old and new at their demo defaults, a ``jax.profiler`` trace of 10 steps
   (after 20 warm-up steps): XLA's time per fused op, summed over the trace and divided by the
   steps traced, with the op's source (``op_name`` from the HLO), and a cProfile of the whole
   ``fit``: the top functions by cumulative time.

The JSON written to ``--out/hashing_bench.json`` (``hashing_bench_<sections>.json`` when only some
sections run, so a partial run does not overwrite a whole one) records the git commit and whether the tree
was dirty, the old commit, the machine and load before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OLD_DEMO = {"batch": 64, "lr": 0.01}


# --------------------------------------------------------------------------- children
def _demo_data():
    from pluralrm.data import split
    from pluralrm.simulate import load_default

    train, _ = split(load_default().data, by="item", test_size=0.2, seed=0)
    return train


def _config(steps: int, batch: int, lr: float, run_dir: str, log_every: int | None = None):
    from pluralrm.train import load_config

    return load_config(None, [
        "model.backbone.type=hashing", "model.head.type=conditioned", f"optimizer.lr={lr}",
        f"train.steps={steps}", f"train.batch_size={batch}", "train.progress=false",
        f"train.log_every={log_every or steps}",
        "eval.every=0", "checkpoint.every=0", f"run_dir={run_dir}"])


def child_throughput(steps: int, batch: int, lr: float, skip: int) -> dict:
    import inspect

    import pluralrm
    from pluralrm.train import fit, trainer

    train = _demo_data()
    encode_seconds = []
    original = trainer.encode_comparisons

    def timed_encode(*a, **k):
        start = time.perf_counter()
        out = original(*a, **k)
        encode_seconds.append(time.perf_counter() - start)
        return out

    trainer.encode_comparisons = timed_encode
    stamps: list[float] = []

    def clock(step, batch_):
        stamps.append(time.perf_counter())
        return batch_

    # A tree whose loop reads the device only at log points has fit(on_log=...): time from the
    # first read point at or after `skip` (the prefetch thread's stamps run ahead of the device).
    # An older tree synced every step in the loop, where transform_batch ran: its stamps hold.
    read_points: list[tuple[int, float]] = []
    has_on_log = "on_log" in inspect.signature(fit).parameters
    hooks = {"on_log": lambda step, means: read_points.append((step, time.perf_counter()))} if has_on_log else {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fit(_config(steps, batch, lr, tmp + "/run", log_every=skip if has_on_log else None), train, None,
            transform_batch=clock, **hooks)
        end = time.perf_counter()
    first, since = next((p for p in read_points if p[0] >= skip), None) or (skip, stamps[skip])
    return {"package": pluralrm.__file__, "batch": batch, "lr": lr, "steps": steps,
            "timed_from": "read point" if has_on_log else "step start in the loop",
            "cmp_per_s": (steps - first) * batch / (end - since), "fit_seconds": end - start,
            "encode_seconds": sum(encode_seconds)}


def child_featurize(path: str, batch: int, batches: int) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    import pluralrm
    from pluralrm.data.featurize import HashingFeaturizer

    table = pq.read_table(path, columns=["prompt", "chosen", "rejected"])
    rng = np.random.default_rng(0)
    seconds = 0.0
    for _ in range(batches):
        rows = table.take(rng.choice(len(table), batch, replace=False))
        prompts, chosen, rejected = (rows.column(c).to_pylist() for c in ("prompt", "chosen", "rejected"))
        featurizer = HashingFeaturizer()  # nothing memoised: every text hashed
        start = time.perf_counter()
        featurizer(prompts * 2, chosen + rejected)
        seconds += time.perf_counter() - start
    return {"package": pluralrm.__file__, "batch": batch, "batches": batches, "pairs_per_s": batch * batches / seconds}


def child_profile(batch: int, lr: float, warm: int, traced: int, out_dir: str) -> dict:
    import cProfile
    import io
    import pstats

    import jax

    from pluralrm.train import fit

    train = _demo_data()

    def hook(step, batch_):
        if step == warm:
            jax.profiler.start_trace(out_dir, create_perfetto_trace=True)
        elif step == warm + traced:
            jax.profiler.stop_trace()
        return batch_

    steps = warm + traced + 10
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        profiler.enable()
        fit(_config(steps, batch, lr, tmp + "/run"), train, None, transform_batch=hook)
        profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    return {"batch": batch, "steps": steps, "ops": xla_op_times(Path(out_dir), traced),
            "cprofile": _trim_stats(text.getvalue())}


def _trim_stats(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return [line.replace(str(Path(sys.prefix)), "<venv>") for line in lines[start:]]


def xla_op_times(trace_dir: Path, steps: int, top: int = 14) -> list[dict]:
    """Milliseconds per step of each XLA op in a perfetto trace (threads running XLA kernels),
    with the HLO ``op_name`` of the op when the compiled module was dumped next to it."""
    import collections
    import gzip

    path = max(trace_dir.glob("**/*perfetto_trace.json.gz"))
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    threads = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    total: collections.Counter = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "Eigen" in threads.get((e["pid"], e.get("tid")), "") and "Thunk" not in e["name"]:
            total[e["name"]] += e["dur"]
    names = _hlo_op_names(trace_dir)
    rows = [{"op": name, "ms_per_step": us / 1e3 / steps, "source": names.get(name, "")}
            for name, us in total.most_common(top)]
    # a while loop's event spans its body's ops, which have their own events: not counted twice
    leaves = sum(us for name, us in total.items() if not name.startswith("while"))
    return [{"op": "(all XLA ops, loops' bodies once)", "ms_per_step": leaves / 1e3 / steps, "source": ""}, *rows]


def _hlo_op_names(trace_dir: Path) -> dict[str, str]:
    import re

    out = {}
    for path in trace_dir.glob("dump/*jit_step*cpu_after_optimizations.txt"):
        for line in path.read_text().splitlines():
            m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) .*op_name=\"([^\"]+)\"", line)
            if m:
                out[m.group(1)] = f"{m.group(2)} {m.group(3).replace('jit(step)/', '')}"
    return out


# --------------------------------------------------------------------------- parent
def run_child(tree: Path, args: list[str], env: dict | None = None) -> dict:
    """Runs this script's child mode with ``tree``'s package first on the path; its JSON line."""
    full_env = dict(os.environ, PYTHONPATH=str(tree), **(env or {}))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args], cwd=tree,
                          env=full_env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def old_tree(commit: str, where: Path) -> Path:
    if not (where / "pluralrm").is_dir():
        git("worktree", "add", "--detach", str(where), commit)
    if git("rev-parse", "HEAD", cwd=where) != git("rev-parse", commit):
        git("checkout", "--detach", commit, cwd=where)
    return where


def new_demo_defaults() -> dict:
    sys.path.insert(0, str(ROOT))
    from pluralrm.cli.demo import DEMO_BATCH, DEMO_LR

    return {"batch": DEMO_BATCH, "lr": DEMO_LR}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="9752700", help="the commit to compare against")
    parser.add_argument("--old-tree", default="/tmp/pluralrm-old", help="where its worktree goes")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="steps at batch 64 (others: same comparisons)")
    parser.add_argument("--sections", default="throughput,featurize,profile")
    parser.add_argument("--featurize-batch", type=int, default=4096)
    parser.add_argument("--featurize-batches", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "throughput":
            result = child_throughput(int(rest[0]), int(rest[1]), float(rest[2]), int(rest[3]))
        elif kind == "featurize":
            result = child_featurize(rest[0], int(rest[1]), int(rest[2]))
        else:
            result = child_profile(int(rest[0]), float(rest[1]), 20, 10, rest[2])
        print(json.dumps(result))
        return

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import describe

    old = old_tree(args.old, Path(args.old_tree))
    new = new_demo_defaults()
    sys.path.insert(0, str(ROOT))
    from pluralrm.provenance import provenance

    record = {**provenance(),  # results files being rewritten do not make the tree dirty
              "old_commit": git("rev-parse", args.old), "machine_before": describe(), "old_demo": OLD_DEMO,
              "new_demo": new, "steps_at_64": args.steps}
    settings = [("old", old, OLD_DEMO), ("new, old demo settings", ROOT, OLD_DEMO), ("new", ROOT, new)]
    sections = args.sections.split(",")
    if "throughput" in sections:
        runs = []
        for r in range(args.rounds):
            for name, tree, s in settings:
                steps = max(args.steps * 64 // s["batch"], 12)
                skip = max(steps // 10, 2)
                row = {"round": r, "setting": name, **run_child(tree, ["throughput", str(steps), str(s["batch"]), str(s["lr"]), str(skip)])}
                runs.append(row)
                print(json.dumps(row), flush=True)
        record["throughput"] = runs
    if "featurize" in sections:
        sys.path.insert(0, str(ROOT))
        from pluralrm.simulate import DEFAULT_SOCIETY, generate

        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            generate(DEFAULT_SOCIETY.replace(comparisons=200_000, value_labels=False)).save(tmp + "/society")
            for r in range(args.rounds):
                for name, tree in (("old", old), ("new", ROOT)):
                    row = {"round": r, "setting": name, **run_child(tree, [
                        "featurize", tmp + "/society/data.parquet", str(args.featurize_batch), str(args.featurize_batches)])}
                    runs.append(row)
                    print(json.dumps(row), flush=True)
        record["featurize"] = runs
    if "profile" in sections:
        profiles = {}
        for name, tree, s in (settings[0], settings[2]):
            with tempfile.TemporaryDirectory() as tmp:
                env = {"XLA_FLAGS": f"--xla_dump_to={tmp}/dump --xla_dump_hlo_module_re=.*jit_step.*"}
                profiles[name] = run_child(tree, ["profile", str(s["batch"]), str(s["lr"]), tmp], env)
            print(name, json.dumps(profiles[name].get("ops", profiles[name]), indent=1), flush=True)
        record["profile"] = profiles
    record["machine_after"] = describe()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "hashing_bench" if sections == parser.get_default("sections").split(",") else "hashing_bench_" + "_".join(sections)
    (out / f"{name}.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {out / (name + '.json')}")
    if "throughput" in record:
        print(summary(record["throughput"]))
    for name in ("old", "new"):
        rates = [r["pairs_per_s"] for r in record.get("featurize", []) if r["setting"] == name and "error" not in r]
        if rates:
            print(f"featurize {name}: {sorted(rates)} pairs/s")


def summary(runs: list[dict]) -> str:
    import numpy as np

    lines = ["setting: median cmp/s (runs), median fit s, encode s"]
    base = None
    for name in dict.fromkeys(r["setting"] for r in runs):
        ok = [r for r in runs if r["setting"] == name and "error" not in r]
        if not ok:
            lines.append(f"{name}: failed ({[r.get('error', '')[-200:] for r in runs if r['setting'] == name]})")
            continue
        rate = float(np.median([r["cmp_per_s"] for r in ok]))
        base = base or rate
        lines.append(f"{name} (batch {ok[0]['batch']}): {rate:,.0f} cmp/s {[round(r['cmp_per_s']) for r in ok]} "
                     f"= {rate / base:.1f}x; fit {np.median([r['fit_seconds'] for r in ok]):.1f} s; "
                     f"encode {np.median([r['encode_seconds'] for r in ok]):.2f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
