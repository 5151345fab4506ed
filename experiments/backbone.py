"""Backbone study: the same conditioned head on the hashing backbone vs pretrained MiniLM-L6.

    python experiments/backbone.py [--seeds 0] [--finetune-steps 300] [--quick]

On the bundled society (split by item, as in `pluralrm demo`), trains the conditioned head on
1. the hashing n-gram backbone (trained from scratch with the head);
2. frozen MiniLM-L6 sentence embeddings (computed once with `cache_embeddings`; head + MLP train);
3. MiniLM-L6 fine-tuned end to end for `--finetune-steps` steps (top 2 layers train);
and writes per-group held-out accuracy and wall time to experiments/results/backbone.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run(seed: int, finetune_steps: int, quick: bool, out: Path) -> dict:
    from flax import nnx

    from pluralrm.data import split
    from pluralrm.models.embedding_cache import cache_embeddings
    from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig
    from pluralrm.simulate import load_default
    from pluralrm.train import fit, load_config

    data = load_default().data
    train, test = split(data, by="item", test_size=0.2, seed=seed)
    if quick:
        train, test = train.select(range(2000)), test.select(range(500))
    common = ["model.head.type=conditioned", f"train.seed={seed}", "train.progress=false", "checkpoint.async_save=false"]
    steps = 60 if quick else 1000
    results = {}

    def record(name, config_overrides, started):
        config = load_config(None, [*common, *config_overrides, f"run_dir={out / f'{name}-seed{seed}'}"])
        _, result = fit(config, train, test)
        groups = {g["group"]: g["accuracy"] for g in result.eval_metrics[-1]["groups"]}
        results[name] = {"accuracy": groups, "seconds": time.perf_counter() - started,
                         "train_cmp_per_s": result.throughput}
        print(name, {k: round(v, 3) for k, v in groups.items()}, f"{results[name]['seconds']:.0f}s", flush=True)

    t = time.perf_counter()
    record("hashing", ["optimizer.lr=0.01", f"train.steps={steps}", f"eval.every={steps}"], t)

    t = time.perf_counter()
    config = TransformerBackboneConfig(path="minilm-l6", max_length=128, buckets=(64, 128), trainable="none")
    encoder = TransformerBackbone.from_config(config, nnx.Rngs(0))
    from datasets import concatenate_datasets

    table = cache_embeddings(concatenate_datasets([train, test]), encoder, config.featurizer(), out / f"minilm-seed{seed}.npz")
    embed_seconds = time.perf_counter() - t
    record("minilm_frozen", ["model.backbone.type=frozen", f"model.backbone.path={table}", "model.backbone.hidden_dims=[128]",
                             "optimizer.lr=0.003", f"train.steps={steps}", f"eval.every={steps}"], t)
    results["minilm_frozen"]["embedding_seconds"] = embed_seconds

    if finetune_steps:
        t = time.perf_counter()
        ft = 10 if quick else finetune_steps
        record("minilm_finetuned", ["model.backbone.type=transformer", "model.backbone.path=minilm-l6",
                                    "model.backbone.max_length=128", "model.backbone.buckets=[64,128]",
                                    "model.backbone.trainable=top_k", "model.backbone.top_k_layers=2",
                                    "train.batch_size=16", "optimizer.lr=0.0003", f"train.steps={ft}",
                                    f"eval.every={ft}", "eval.batch_size=64"], t)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="runs/backbone_study")
    args = parser.parse_args(argv)
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    from pluralrm.provenance import provenance

    code = provenance()  # before the run: the code that produced the figures
    results = {seed: run(int(seed), args.finetune_steps, args.quick, out) for seed in args.seeds.split(",")}
    payload = {"command": "python experiments/backbone.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               **code, "results": results}
    target = out / "backbone.json" if args.quick else RESULTS / "backbone.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
