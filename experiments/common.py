"""What every study script shares: its command line, config, splits, training, statistics and
result files (simulated societies: ``experiments/societies.py``).

A study is ``experiments/<study>.py --config experiments/configs/<study>.yaml [--seeds 0,1,2]
[--quick | --full] [--set key=value ...] [--out DIR]``. Its YAML mirrors the study's frozen
config dataclass (a subclass of :class:`StudyConfig`); the blocks ``quick:`` and ``full:``
apply for ``--quick`` (the size the tests run) and ``--full``: their ``society`` and ``train``
mappings are merged key by key, any other key replaces the default's. Seed ``s`` draws
the society with ``society.seed + s`` and trains with ``train.seed = s``, so every seed is a new
society and a new initialisation, and intervals over seeds cover both.

Results go to ``<out>/<study>.json`` with the exact command, the resolved config, the seeds, the
wall time and every per-seed number the tables summarise.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPERIMENTS = Path(__file__).resolve().parent
REPO = EXPERIMENTS.parent
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
if str(REPO) not in sys.path:  # run as `python experiments/<study>.py` from anywhere
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from pluralrm.configs import apply_overrides, from_dict, load_yaml, to_dict  # noqa: E402
from pluralrm.errors import ConfigError  # noqa: E402
from pluralrm.provenance import provenance  # noqa: E402

SIZES = ("quick", "default", "full")
MERGED_KEYS = ("society", "train")  # size blocks merge into these key by key and replace the others
# Experiment runs write only a final checkpoint, print nothing per step and evaluate themselves.
RUN_DEFAULTS: dict[str, Any] = {
    "train": {"progress": False, "log_every": 1_000_000},
    "eval": {"every": 0},
    "checkpoint": {"every": 0, "keep_last": 1, "keep_best": 1, "async_save": False},
}


@dataclass(frozen=True)
class StudyConfig:
    """What every study has.

    Attributes:
      seeds: the seeds (society ``seed + s``, training ``train.seed = s``).
      society: ``SocietyConfig`` knobs (simulated studies).
      train: a ``TrainConfig`` mapping (model, optimizer, train, ...) shared by the study's models.
      test_size: fraction of items (or annotators) held out.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    society: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    test_size: float = 0.25


# ---------------------------------------------------------------------------------- command line
def parse_args(name: str, doc: str, argv: Sequence[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The command line every study shares (module docstring); ``extra`` adds study options."""
    p = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=doc.strip().splitlines()[0])
    p.add_argument("--config", default=str(EXPERIMENTS / "configs" / f"{name}.yaml"), help="the study's YAML")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (default: the config's)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the tiny size the tests run")
    size.add_argument("--full", action="store_true", help="the large size")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a study config key, e.g. --set train.train.steps=200 (repeatable)")
    p.add_argument("--out", default=str(EXPERIMENTS / "results"), help="directory for <study>.json and figures")
    p.add_argument("--resummarize", action="store_true",
                   help="recompute the tables and figures from the per-seed results already in <out>/<study>.json "
                        "(no training; the recorded command, config and timings are kept)")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    args.name = name
    args.size = "quick" if args.quick else "full" if args.full else "default"
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def load_study(cls: type, args: argparse.Namespace):
    """The study config: the YAML, its ``quick``/``full`` block for that size, ``--set`` and
    ``--seeds`` overrides, as a ``cls`` (a StudyConfig subclass; unknown keys are errors)."""
    data = load_yaml(args.config)
    blocks = {size: data.pop(size, None) or {} for size in ("quick", "full")}
    for key, value in blocks.get(args.size, {}).items():  # society/train merge, the rest replaces
        data[key] = deep_merge(data.get(key) or {}, value) if key in MERGED_KEYS else value
    data = apply_overrides(data, args.overrides)
    if args.seeds:
        try:
            data["seeds"] = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    config = from_dict(cls, data)
    if not config.seeds:
        raise ConfigError("a study needs at least one seed")
    return config


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, merging nested mappings key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------- splits
def item_split(data, test_size: float, seed: int, by: str = "item") -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train [n], test [m])`` of a split by ``item`` (or annotator, ...)."""
    from pluralrm.data.split import TEST, TRAIN, split_assignment

    assignment = split_assignment(data, by, 0.0, test_size, seed)
    return np.flatnonzero(assignment == TRAIN), np.flatnonzero(assignment == TEST)


# -------------------------------------------------------------------------------------- training
def train_config(study: StudyConfig, seed: int, head: str | None = None, steps: int | None = None,
                 **extra: Any):
    """The study's TrainConfig for one model: RUN_DEFAULTS, the study's ``train`` mapping, then
    the head type, the seed, the step count and any nested ``extra`` mapping."""
    from pluralrm.train import TrainConfig

    data = deep_merge(RUN_DEFAULTS, study.train)
    changes: dict[str, Any] = {"train": {"seed": seed}}
    if head is not None:
        changes["model"] = {"head": {"type": head}}
    if steps is not None:
        changes["train"]["steps"] = int(steps)
    data = deep_merge(deep_merge(data, changes), extra)
    return from_dict(TrainConfig, data)


def steps_for(config, rows: int, epochs: float) -> int:
    """At least ``config.train.steps``, and enough for ``epochs`` passes over ``rows``."""
    return max(config.train.steps, math.ceil(epochs * rows / config.train.batch_size))


def fit_model(config, train):
    """Trains one model in a temporary run directory and returns ``(RewardModel, seconds)``."""
    from pluralrm.train import fit

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pluralrm-exp-") as run_dir:
        model, _ = fit(dataclasses.replace(config, run_dir=run_dir), train)
    return model, time.perf_counter() - start


def group_probabilities(model, data, group_labels: Sequence[str]) -> np.ndarray:
    """``[N, G']`` P(chosen ≻ rejected) under every group, columns in ``group_labels`` order
    (the truth's). A group the model never saw in training is an error."""
    probs, labels = model.predict_all_groups(data)
    index = {label: j for j, label in enumerate(labels)}
    missing = [g for g in group_labels if g not in index]
    if missing:
        raise ConfigError(f"the model saw no training data for group(s) {missing}; enlarge the society")
    return np.asarray(probs, np.float64)[:, [index[g] for g in group_labels]]


# ------------------------------------------------------------------------------------ statistics
def interval(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean and the half-width of a Student-t interval over seeds (NaN half-width for one
    seed). Returns ``{"mean", "half", "n"}`` (NaN values are left out)."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if x.size == 0:
        return {"mean": float("nan"), "half": float("nan"), "n": 0}
    half = float("nan") if x.size < 2 else float(
        stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": float(x.mean()), "half": half, "n": int(x.size)}


def fmt(iv: Mapping[str, float], digits: int = 3) -> str:
    """``0.812 ± 0.010`` (just the mean when there is no interval)."""
    if math.isnan(iv["mean"]):
        return "–"
    if math.isnan(iv["half"]):
        return f"{iv['mean']:.{digits}f}"
    return f"{iv['mean']:.{digits}f} ± {iv['half']:.{digits}f}"


def short_group(label: str) -> str:
    """``country=NG,language=yo`` → ``NG/yo``."""
    return "/".join(part.split("=", 1)[-1] for part in label.split(","))


# -------------------------------------------------------------------------------------- reporting
def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table (first column left-aligned, the others right-aligned)."""
    align = [":--"] + ["--:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (studies write PNGs, never open windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, from the repository root."""
    return shlex.join(["python", f"experiments/{args.name}.py", *args.argv])


def write_results(args: argparse.Namespace, study: StudyConfig, results: Mapping[str, Any],
                  started: float, tables: Mapping[str, str] | None = None) -> Path:
    """Writes ``<out>/<study>.json``: the command, size, seeds, resolved config, wall time and
    this process's CPU time (on a shared machine, wall time includes waiting for cores),
    commit and dirty flag (``pluralrm.provenance``), the markdown ``tables`` and the study's
    ``results``."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    payload = {
        "study": args.name,
        "command": command_line(args),
        "size": args.size,
        "seeds": list(study.seeds),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time(), 1),
        "cpu_count": os.cpu_count(),
        **provenance(),  # "commit" (full hash) and "dirty" (uncommitted changes outside results/)
        "config": to_dict(study),
        "tables": dict(tables or {}),
        "results": results,
    }
    path.write_text(json.dumps(_plain(payload), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({payload['wall_seconds']} s wall, {payload['cpu_seconds']} s CPU)")
    return path


def drive(args: argparse.Namespace, cls: type, run: Callable[[Any], dict[str, Any]],
          finish: Callable[[Any, Mapping[str, Any], Path], tuple[Any, dict[str, str]]]) -> int:
    """A study's main: ``run(study) -> results`` (with ``"per_seed"``), then
    ``finish(study, results, out_dir) -> (summary, tables)`` (figures go to ``out_dir``);
    writes ``<out>/<study>.json`` and prints the tables. With ``--resummarize``, ``finish``
    runs on the saved results (and the saved config) instead of new ones."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.resummarize:
        saved = load_results(args)
        study = from_dict(cls, saved["config"])
        summary, tables = finish(study, saved["results"], out)
        resummarize(args, saved, {"summary": summary}, tables)
    else:
        study = load_study(cls, args)
        started = time.perf_counter()
        results = run(study)
        summary, tables = finish(study, results, out)
        write_results(args, study, {**results, "summary": summary}, started, tables)
    for name, table in tables.items():
        print(f"\n{name}\n{table}")
    return 0


def drive_seeds(args: argparse.Namespace, cls: type, run_seed: Callable[[Any, int], dict],
                summarize: Callable[[Any, list], tuple[Any, dict[str, str]]],
                plot: Callable[[Any, Any], Any] | None = None) -> int:
    """:func:`drive` for the usual study: ``run_seed(study, seed)`` per seed, then
    ``summarize(study, per_seed) -> (summary, tables)`` and, when given,
    ``plot(study, summary) -> figure``, saved as ``<out>/<study>.png``."""

    def finish(study, results, out):
        summary, tables = summarize(study, results["per_seed"])
        if plot is not None:
            figure = plot(study, summary)
            figure.savefig(out / f"{args.name}.png", dpi=120)
            pyplot().close(figure)
        return summary, tables

    return drive(args, cls, lambda study: {"per_seed": [run_seed(study, s) for s in study.seeds]}, finish)


def load_results(args: argparse.Namespace) -> dict[str, Any]:
    """The saved ``<out>/<study>.json`` (for ``--resummarize``)."""
    path = Path(args.out) / f"{args.name}.json"
    if not path.is_file():
        raise ConfigError(f"--resummarize: no results at {path}; run the study first")
    return json.loads(path.read_text())


def resummarize(args: argparse.Namespace, saved: dict[str, Any], results: Mapping[str, Any],
                tables: Mapping[str, str]) -> Path:
    """Rewrites ``<out>/<study>.json`` with new summaries and tables of the same per-seed
    results; everything recorded about the run that produced them is kept."""
    path = Path(args.out) / f"{args.name}.json"
    saved = {**saved, "tables": dict(tables), "results": {**saved["results"], **results}}
    path.write_text(json.dumps(_plain(saved), indent=1, ensure_ascii=False) + "\n")
    print(f"re-summarized {path}")
    return path


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, NaN to None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
