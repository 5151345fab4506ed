"""``pluralrm train --config FILE [--set k=v ...] [--resume]``."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (experiments/configs/*.yaml); defaults if omitted")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optimizer.lr=3e-4 (repeatable)")
    p.add_argument("--out", help="run directory (same as --set run_dir=...)")
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint in the run directory")
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of a progress bar")


def run(args: argparse.Namespace) -> int:
    from pluralrm.train import fit, load_config
    from pluralrm.train.data import prepare_data

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"run_dir={args.out}")
    if args.no_progress:
        overrides.append("train.progress=false")
    config = load_config(args.config, overrides)
    data = prepare_data(config.data, cache_dir=Path(config.run_dir) / "data")
    print(f"data: {data.source}: {len(data.train)} training, {len(data.eval) if data.eval is not None else 0} held-out comparisons")
    _, result = fit(config, data.train, data.eval, resume=args.resume)
    best = f"best {result.best_metric:.4f} at step {result.best_step}" if result.best_step else "no evaluation"
    print(
        f"run {result.run_dir}: {result.steps} steps ({result.stopped_by}), {best}, "
        f"{result.throughput:,.0f} comparisons/s, {result.compilations} compilation(s) of the train step"
    )
    return 0
