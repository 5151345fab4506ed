"""``pluralrm train --config FILE [--set k=v ...] [--out DIR]`` starts a run;
``pluralrm train --resume RUN_DIR [--set k=v ...]`` continues one from its saved config.yaml.

On resume, ``--set`` may change only keys that cannot change the result
(``pluralrm.train.config.RESUME_SAFE_KEYS``: logging, progress, evaluation and checkpoint
cadence, a larger ``train.steps`` to extend the run); any other key is refused, naming it.
``--config FILE --resume [RUN_DIR]`` still works when FILE matches the saved config but for
those keys.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (experiments/configs/*.yaml); defaults if omitted")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optimizer.lr=3e-4 (repeatable); with --resume "
                        "only keys that cannot change the result (logging, eval/checkpoint cadence, a larger train.steps)")
    p.add_argument("--out", help="run directory (same as --set run_dir=...)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                   help="continue RUN_DIR from its newest good checkpoint with its saved config.yaml "
                        "(a finished run is left alone; --set train.steps=N extends it)")
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of a progress bar")


def _config(args: argparse.Namespace):
    from pluralrm.errors import ConfigError
    from pluralrm.train import load_config
    from pluralrm.train.config import resume_config

    overrides = list(args.overrides)
    if args.no_progress:
        overrides.append("train.progress=false")
    run_dir = args.resume if isinstance(args.resume, str) else args.out
    if isinstance(args.resume, str) and args.out and Path(args.out) != Path(args.resume):
        raise ConfigError(f"--resume {args.resume} and --out {args.out} name different run directories; give one")
    if args.resume is not None and not args.config:
        if not run_dir:
            raise ConfigError("--resume needs the run directory: pluralrm train --resume RUN_DIR")
        config = resume_config(run_dir, overrides)
        for item in args.overrides:
            print(f"resume: applying --set {item} (a key that cannot change the result)", file=sys.stderr)
        return config
    if run_dir:
        overrides.append(f"run_dir={run_dir}")
    return load_config(args.config, overrides)


def _load_data(config):
    """Loads and splits the data, with a spinner and the elapsed time while it runs (a large
    file is validated and memory-mapped first, which takes a while)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from pluralrm.train.data import prepare_data

    what = config.data.path or "the bundled default society"
    console = Console(stderr=True)
    start = time.perf_counter()
    if config.train.progress and console.is_terminal:
        columns = (SpinnerColumn(), TextColumn(f"loading {what}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            progress.add_task("load", total=None)
            data = prepare_data(config.data, cache_dir=Path(config.run_dir) / "data")
    else:
        print(f"loading {what} ...", file=sys.stderr, flush=True)
        data = prepare_data(config.data, cache_dir=Path(config.run_dir) / "data")
    print(f"data: {data.source}: {len(data.train)} training, {len(data.eval) if data.eval is not None else 0} "
          f"held-out comparisons ({time.perf_counter() - start:.1f} s)")
    return data


def _finished_at(config) -> int | None:
    """The step of the run's newest verified checkpoint when it already reaches ``train.steps``
    (then there is nothing to train and no reason to load the data first)."""
    from pluralrm.models.run_checkpoint import verify_step

    run_dir = Path(config.run_dir)
    if not (run_dir / "checkpoints").is_dir():
        return None
    total = config.train.steps * config.optimizer.accumulation_steps
    for step in sorted((int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()), reverse=True):
        if verify_step(run_dir, step) is None:
            return step if step >= total else None
    return None


def run(args: argparse.Namespace) -> int:
    from pluralrm.train import fit

    config = _config(args)
    if args.resume is not None and not args.config and (done := _finished_at(config)) is not None:
        print(f"{config.run_dir}: already finished at step {done} (train.steps={config.train.steps}); nothing to do "
              "(to train longer: --resume RUN_DIR --set train.steps=N)", file=sys.stderr)
        return 0
    data = _load_data(config)
    _, result = fit(config, data.train, data.eval, resume=args.resume is not None)
    if result.stopped_by.startswith("already finished"):  # fit said so, and how to extend it
        return 0
    best = f"best {result.best_metric:.4f} at step {result.best_step}" if result.best_step else "no evaluation"
    print(
        f"run {result.run_dir}: {result.steps} steps ({result.stopped_by}), {best}, "
        f"{result.throughput:,.0f} comparisons/s, {result.compilations} compilation(s) of the train step"
    )
    return 0
