"""A tiny deterministic training job, importable by tests and runnable as a subprocess:

    python tests/train/tiny_run.py RUN_DIR STEPS [--resume] [--set key=value ...]

Two groups with opposite tastes ("good"/"bad" words), a hashing backbone of a few thousand
parameters: fast enough to kill, resume and compare within seconds.
"""
import sys
from pathlib import Path

import numpy as np


def make_dataset(n: int = 1200, seed: int = 0):
    import datasets

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        group = "A" if i % 3 else "B"
        a, b = f"good answer {i % 17} x", f"bad answer {i % 13} y"
        prefer_a = rng.random() < (0.9 if group == "A" else 0.1)
        chosen, rejected = (a, b) if prefer_a else (b, a)
        rows.append(dict(prompt=f"question {i % 5}", chosen=chosen, rejected=rejected, label=1.0,
                         annotator_id=f"u{i % 24}", weight=1.0, country=group))
    data = datasets.Dataset.from_list(rows)
    return data.select(range(int(n * 0.8))), data.select(range(int(n * 0.8), n))


TINY_OVERRIDES = [
    "model.backbone.num_buckets=4096",
    "model.backbone.embed_dim=16",
    "model.backbone.hidden_dims=[32]",
    "model.backbone.buckets=[64,128,256,512]",
    "model.head.hidden_dim=16",
    "train.batch_size=32",
    "train.log_every=5",
    "train.progress=false",
    "eval.every=0",
    "checkpoint.every=5",
    "checkpoint.keep_last=3",
    "checkpoint.async_save=false",
]


def tiny_config(run_dir, steps, extra=()):
    from pluralrm.train import load_config

    return load_config(None, [*TINY_OVERRIDES, f"train.steps={steps}", f"run_dir={run_dir}", *extra])


def main(argv):
    run_dir, steps = argv[0], int(argv[1])
    resume = "--resume" in argv
    extra = [a for a in argv[2:] if "=" in a]
    from pluralrm.train import fit

    train, test = make_dataset()
    fit(tiny_config(run_dir, steps, extra), train, test, resume=resume)
    print("DONE", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main(sys.argv[1:])
