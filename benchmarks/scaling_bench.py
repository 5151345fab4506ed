"""Scaling curves: training throughput vs batch size and length, cost vs number of groups G,
peak memory vs dataset size, 1 vs 8 host devices. Tables and PNGs go to ``benchmarks/results/``:
``scaling.json``, or ``memory.json`` when ``--sections memory`` runs alone; each records the
exact commit and a dirty flag.

    python benchmarks/scaling_bench.py [--quick] [--sections throughput,groups,memory,devices]
                                       [--memory-sizes 1000000,10000000]

1. ``throughput``: ``fit`` comparisons/s (steady state, ``benchmarks/steptime.py``) and MFU
   (``benchmarks/flops.py``) for the hashing backbone over batch sizes and n-gram lengths, and
   MiniLM-L6 at a few small (batch, length) settings (every batch padded to that length).
2. ``groups``: one training step (hashing backbone, conditioned head, schema with G groups,
   G = 1 .. 10,000, groups assigned at random to the bundled society's rows) and
   ``score_all_groups`` over 1024 responses (hashing; and MiniLM over 64 responses at G = 1 and
   1000), relative to G = 1. The hashing featurizer's text cache is cleared before every timed
   pass.
3. ``memory``: peak RSS of a 50-step training run (hashing, batch 64) on N simulated comparisons
   (``generate`` + ``save``, then ``fit`` reading the Parquet file), each in a fresh subprocess,
   with the RSS after loading and after the run; the simulator's own peak is reported too.
4. ``devices``: the same hashing run in subprocesses with 1 and with 8 host devices
   (``XLA_FLAGS=--xla_force_host_platform_device_count=8``): the sharded path's overhead.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from steptime import StepClock, mean_length, steady_rate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
HASHING = ["model.backbone.type=hashing"]


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    """Current resident set size (MiB) of this process."""
    return _status_mib("VmRSS")


def peak_mib() -> float:
    """Peak resident set size (MiB) of this process image (``VmHWM``; unlike ``ru_maxrss`` it
    does not carry over the parent's peak across fork + exec)."""
    return _status_mib("VmHWM")


class AnonPeak:
    """Samples ``RssAnon`` (heap, not file-backed pages) every 20 ms in a thread: the memory a
    process cannot give back. ``VmHWM`` also counts pages of memory-mapped data files that were
    read (page cache the kernel reclaims under pressure)."""

    def __init__(self):
        import threading

        self.peak = _status_mib("RssAnon")
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            self.peak = max(self.peak, _status_mib("RssAnon"))
            time.sleep(0.02)


def base_sets(steps: int, batch: int, run_dir: str, extra=(), log_every: int | None = None) -> list[str]:
    """``--set`` overrides of a timed run; ``log_every`` read points (where ``StepClock.on_log``
    times the training) every that many steps, by default only at the end."""
    return [f"train.steps={steps}", f"train.batch_size={batch}", "train.progress=false",
            f"train.log_every={log_every or steps}",
            "train.group_dropout=0.0", "eval.every=0", "checkpoint.every=0", "schedule.warmup_steps=0",
            f"run_dir={run_dir}", *extra]


def timed_fit(sets: list[str], train, skip: int) -> dict:
    """Runs ``fit`` with read points every ``skip`` steps and returns its steady comparisons/s
    (from step ``skip`` to the end), seconds/step and padded lengths."""
    from pluralrm.train import fit, load_config

    config = load_config(None, [*sets, f"train.log_every={skip}"])
    clock = StepClock()
    _, result = fit(config, train, None, transform_batch=clock, on_log=clock.on_log)
    rate, seconds, lengths = steady_rate(clock.to_dict(config.train.batch_size), skip)
    return {"cmp_per_s": rate, "s_per_step": seconds, "length": mean_length(lengths), "compilations": result.compilations}


def society(n: int | None = None):
    from pluralrm.simulate import load_default

    data = load_default().data
    return data.select(range(min(n, len(data)))) if n else data


# --------------------------------------------------------------------------- 1. throughput
def throughput(args, tmp: Path, peak: float) -> list[dict]:
    from flops import EncoderShape, hashing_train_flops, mfu, reward_model_train_flops

    rows = []
    data = society(4000 if args.quick else None)
    steps, skip = (4, 1) if args.quick else (30, 5)
    batches = (16, 64) if args.quick else (32, 64, 128, 256, 512)
    lengths = (128,) if args.quick else (128, 256, 512, 1024)
    settings = [(b, 512) for b in batches] + [(128, length) for length in lengths if length != 512]
    for batch, length in settings:
        sets = base_sets(steps, batch, str(tmp / f"h{batch}-{length}"),
                         HASHING + [f"model.backbone.max_length={length}", f"model.backbone.buckets=[{length}]"])
        r = timed_fit(sets, data, skip)
        flops = hashing_train_flops(batch, int(r["length"]), 64, (128,), 64)
        rows.append(dict(r, backbone="hashing", batch=batch, max_length=length, mfu=mfu(flops, r["s_per_step"], peak)))
        print(f"  hashing  B={batch:4d} L={length:4d}: {r['cmp_per_s']:8.0f} cmp/s  MFU {rows[-1]['mfu']:.3%}", flush=True)
    minilm = [] if args.quick else [(4, 64), (8, 64), (16, 64), (8, 128)]  # quick: trl_bench's smoke test covers MiniLM
    shape = EncoderShape()
    for batch, length in minilm:
        steps, skip = (3, 1) if args.quick else (7, 2)
        sets = base_sets(steps, batch, str(tmp / f"m{batch}-{length}"), [
            "model.backbone.type=transformer", "model.backbone.path=minilm-l6", "model.backbone.pooling=cls",
            f"model.backbone.max_length={length}", f"model.backbone.buckets=[{length}]",
            "model.head.type=pooled", "model.head.hidden_dim=384", "optimizer.lr=5e-5"])
        r = timed_fit(sets, data, skip)
        flops = reward_model_train_flops(shape, batch, length, 384)
        rows.append(dict(r, backbone="minilm-l6", batch=batch, max_length=length, mfu=mfu(flops, r["s_per_step"], peak)))
        print(f"  MiniLM   B={batch:4d} L={length:4d}: {r['cmp_per_s']:8.2f} cmp/s  MFU {rows[-1]['mfu']:.1%}", flush=True)
    return rows


# --------------------------------------------------------------------------- 2. groups
def with_groups(data, groups: int, seed: int = 0):
    keep = [c for c in data.column_names if c not in ("country", "language", "chosen_values", "rejected_values")]
    data = data.select_columns(keep)
    rng = np.random.default_rng(seed)
    return data.add_column("group", [f"g{i}" for i in rng.integers(0, groups, len(data))])


def group_costs(args, tmp: Path) -> list[dict]:
    from scoring_bench import hashing_model, schema_with, texts

    rows = []
    sizes = (1, 10, 100) if args.quick else (1, 10, 100, 1000, 10000)
    data = society(3000 if args.quick else None)
    steps, skip = (4, 1) if args.quick else (30, 5)
    for groups in sizes:
        sets = base_sets(steps, 64, str(tmp / f"g{groups}"), HASHING + ["model.head.type=conditioned"])
        r = timed_fit(sets, with_groups(data, groups), skip)
        rows.append({"what": "train step (hashing, conditioned)", "groups": groups, "seconds": r["s_per_step"]})
        print(f"  train G={groups:5d}: {r['s_per_step'] * 1e3:7.1f} ms/step", flush=True)
    n = 64 if args.quick else 1024
    prompts, responses = texts(n, 12, 1), texts(n, 40, 2)
    for groups in sizes:
        model = hashing_model(groups)
        model.score_all_groups(prompts, responses)  # compile
        best = float("inf")
        for _ in range(3):
            model.featurizer.clear_cache()
            start = time.perf_counter()
            model.score_all_groups(prompts, responses)
            best = min(best, time.perf_counter() - start)
        rows.append({"what": f"score_all_groups, hashing, {n} responses", "groups": groups, "seconds": best})
        print(f"  score_all_groups G={groups:5d}: {best * 1e3:7.1f} ms", flush=True)
    if not args.quick:
        rows += minilm_scoring(args, schema_with, prompts[:64], responses[:64])
    return rows


def minilm_scoring(args, schema_with, prompts, responses) -> list[dict]:
    from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

    rows = []
    backbone = BackboneConfig(type="transformer", path="minilm-l6", pooling="cls", max_length=128, buckets=(32, 64, 128))
    n = len(prompts)
    for groups in (1, 1000):
        model = RewardModel.create(ModelConfig(backbone=backbone, head=HeadConfig(type="conditioned", hidden_dim=384)),
                                   schema_with(groups))
        model.batch_size = 64
        model.score_all_groups(prompts[:n], responses[:n])
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            model.score_all_groups(prompts[:n], responses[:n])
            best = min(best, time.perf_counter() - start)
        rows.append({"what": f"score_all_groups, MiniLM-L6, {n} responses", "groups": groups, "seconds": best})
        print(f"  MiniLM score_all_groups G={groups:5d}: {best * 1e3:7.1f} ms", flush=True)
    return rows


# --------------------------------------------------------------------------- 3. memory
def child_simulate(n: int, out: str) -> dict:
    from pluralrm.simulate import DEFAULT_SOCIETY, generate

    start = time.perf_counter()
    generate(DEFAULT_SOCIETY.replace(comparisons=n, value_labels=False)).save(out)
    return {"seconds": time.perf_counter() - start, "peak_mib": peak_mib()}


def child_train(path: str, steps: int, batch: int = 64) -> dict:
    """A ``fit`` of ``steps`` steps of ``batch`` comparisons on the saved society at ``path``,
    as ``pluralrm train`` runs it: RSS before, after loading and at the end, peak RSS (all pages
    and anonymous only), the steady rate and the wall time of the whole run (load + train)."""
    from pluralrm.train import fit, load_config
    from pluralrm.train.data import prepare_data

    anon = AnonPeak()
    start = time.perf_counter()
    skip = min(5, steps - 2)
    config = load_config(None, base_sets(steps, batch, str(Path(path).parent / "run"), HASHING + [
        f"data.path={path}", "data.test_size=0.0", "model.head.type=conditioned"], log_every=skip))
    base = rss_mib()
    data = prepare_data(config.data, cache_dir=Path(path).parent / "run-data")  # as `pluralrm train` does
    loaded, load_seconds = rss_mib(), time.perf_counter() - start
    clock = StepClock()
    fit(config, data.train, None, transform_batch=clock, on_log=clock.on_log)
    rate, seconds, _ = steady_rate(clock.to_dict(batch), skip)
    return {"rows": len(data.train), "steps": steps, "batch": batch, "epochs": steps * batch / len(data.train),
            "rss_start_mib": base, "rss_loaded_mib": loaded, "load_seconds": load_seconds,
            "rss_end_mib": rss_mib(), "peak_mib": peak_mib(), "peak_anon_mib": anon.peak,
            "rss_file_end_mib": _status_mib("RssFile"), "cmp_per_s": rate,
            "wall_seconds": time.perf_counter() - start}


def run_child(args_list: list[str], env: dict | None = None, limit_mib: float = 16 * 1024) -> dict:
    """Runs this script as a child and returns its JSON line; kills it past ``limit_mib`` RSS."""
    proc = subprocess.Popen([sys.executable, __file__, *args_list], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, **(env or {})))
    peak = 0.0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
            peak = max(peak, rss)
        except (OSError, StopIteration):
            pass
        if peak > limit_mib:
            proc.kill()
            proc.wait()
            return {"error": f"killed at {peak:.0f} MiB RSS (limit {limit_mib:.0f} MiB)"}
        time.sleep(0.2)
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}"}
    return json.loads(out.strip().splitlines()[-1])


def memory(args, tmp: Path) -> list[dict]:
    rows = []
    sizes = [int(x) for x in args.memory_sizes.split(",")]
    for n in sizes:
        directory = tmp / f"society-{n}"
        sim = run_child(["--child", "simulate", str(n), str(directory)])
        row = {"comparisons": n, "simulate": sim}
        if "error" not in sim:
            steps = -(-n * args.memory_epochs // args.memory_batch) if args.memory_epochs else args.memory_steps
            row["train"] = run_child(["--child", "train", str(directory / "data.parquet"), str(steps),
                                      str(args.memory_batch)])
        rows.append(row)
        print(f"  N={n:>10,}: {json.dumps(row)}", flush=True)
        for f in directory.glob("*"):
            if f.is_file():
                f.unlink()
    return rows


# --------------------------------------------------------------------------- 4. devices
def child_devices(steps: int, batch: int) -> dict:
    import jax

    with tempfile.TemporaryDirectory() as tmp:
        r = timed_fit(base_sets(steps, batch, str(Path(tmp) / "run"), HASHING), society(), min(5, steps - 2))
    return dict(r, devices=jax.device_count())


def devices(args) -> list[dict]:
    steps, batch = (4, 16) if args.quick else (40, 256)
    rows = []
    for count in (1, 8):
        flags = os.environ.get("XLA_FLAGS", "")
        env = {"XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={count}".strip()}
        rows.append(run_child(["--child", "devices", str(steps), str(batch)], env))
        print(f"  {count} device(s): {json.dumps(rows[-1])}", flush=True)
    return rows


# --------------------------------------------------------------------------- output
def plot(results: dict, out: Path, tag: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "throughput" in results:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        rows = results["throughput"]
        h = [r for r in rows if r["backbone"] == "hashing" and r["max_length"] == 512]
        axes[0].plot([r["batch"] for r in h], [r["cmp_per_s"] for r in h], "o-")
        axes[0].set(xscale="log", xlabel="batch size (L = 512 n-grams)", ylabel="comparisons/s", title="hashing: batch")
        h = [r for r in rows if r["backbone"] == "hashing" and r["batch"] == 128]
        axes[1].plot([r["max_length"] for r in h], [r["cmp_per_s"] for r in h], "o-")
        axes[1].set(xscale="log", xlabel="n-gram length (batch 128)", ylabel="comparisons/s", title="hashing: length")
        m = [r for r in rows if r["backbone"] != "hashing"]
        axes[2].bar([f"B{r['batch']} L{r['max_length']}" for r in m], [r["cmp_per_s"] for r in m])
        axes[2].set(ylabel="comparisons/s", title="MiniLM-L6 fine-tuning")
        fig.tight_layout()
        fig.savefig(out / f"throughput{tag}.png", dpi=110)
        plt.close(fig)
    if "groups" in results:
        fig, ax = plt.subplots(figsize=(6, 4))
        for what in dict.fromkeys(r["what"] for r in results["groups"]):
            rs = [r for r in results["groups"] if r["what"] == what]
            ax.plot([r["groups"] for r in rs], [r["seconds"] / rs[0]["seconds"] for r in rs], "o-", label=what)
        ax.set(xscale="log", xlabel="groups G", ylabel="cost relative to G = 1", title="cost vs number of groups")
        ax.axhline(1.2, color="grey", ls=":", lw=1)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"groups{tag}.png", dpi=110)
        plt.close(fig)
    if "memory" in results:
        ok = [r for r in results["memory"] if "train" in r and "error" not in r["train"]]
        if ok:
            fig, ax = plt.subplots(figsize=(6, 4))
            x = np.arange(len(ok))
            ax.bar(x - 0.2, [r["train"]["rss_loaded_mib"] for r in ok], 0.4, label="RSS after loading")
            ax.bar(x + 0.2, [r["train"]["peak_mib"] for r in ok], 0.4, label="peak RSS (whole run)")
            ax.set_xticks(x, [f"{r['comparisons']:,}" for r in ok])
            ax.set(xlabel="comparisons", ylabel="MiB", title="training memory vs dataset size")
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / f"memory{tag}.png", dpi=110)
            plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sections", default="throughput,groups,memory,devices")
    parser.add_argument("--memory-sizes", default="1000000,10000000")
    parser.add_argument("--memory-steps", type=int, default=50)
    parser.add_argument("--memory-batch", type=int, default=64, help="comparisons per step in the memory runs")
    parser.add_argument("--memory-epochs", type=int, default=0,
                        help="train this many whole epochs of each size instead of --memory-steps steps")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "simulate":
            result = child_simulate(int(rest[0]), rest[1])
        elif kind == "train":
            result = child_train(rest[0], int(rest[1]), int(rest[2]))
        else:
            result = child_devices(int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return
    if args.quick and args.memory_sizes == parser.get_default("memory_sizes"):
        args.memory_sizes, args.memory_steps = "2000,4000", 8
    from flops import peak_matmul_flops
    from machine import describe

    from pluralrm.provenance import provenance

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe()}", flush=True)
    peak = peak_matmul_flops()
    print(f"peak float32 matmul: jax {peak['jax'] / 1e9:.1f} GFLOP/s, numpy {peak['numpy'] / 1e9:.1f} GFLOP/s", flush=True)
    results: dict = {"machine": describe(), **provenance(), "peak_flops": peak}
    sections = args.sections.split(",")
    with tempfile.TemporaryDirectory(prefix="pluralrm-scaling-") as tmp:
        for name, fn in (("throughput", lambda: throughput(args, Path(tmp), peak["jax"])),
                         ("groups", lambda: group_costs(args, Path(tmp))),
                         ("devices", lambda: devices(args)),
                         ("memory", lambda: memory(args, Path(tmp)))):
            if name in sections:
                print(f"{name}:", flush=True)
                results[name] = fn()
    tag = "-quick" if args.quick else ""
    name = "memory" if sections == ["memory"] else "scaling"  # the memory runs alone: their own file
    (out / f"{name}{tag}.json").write_text(json.dumps(results, indent=1))
    plot(results, out, tag)
    print(f"wrote {out}/{name}{tag}.json and PNGs")


if __name__ == "__main__":
    main()
