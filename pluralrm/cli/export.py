"""``pluralrm export RUN --out DIR``: a shareable model directory from a run or a saved model.

Writes safetensors weights, config.json, the group schema, the backbone's tokenizer files
(transformer backbones) and a model card (README.md) that ``huggingface_hub.upload_folder``
can publish unchanged; ``RewardModel.load(DIR)`` (or the hub repo id) reads it back. See
``pluralrm.models.export``.
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run directory of `pluralrm train` or a saved model directory")
    p.add_argument("--out", required=True, metavar="DIR", help="the directory to write (must be empty or new)")
    p.add_argument("--step", default="best", help="with a run directory: best (default), latest or a step number")
    p.add_argument("--license", default="other",
                   help="the model card's licence: an SPDX id such as apache-2.0 or cc-by-4.0 (default: other)")
    p.add_argument("--data-source", default=None,
                   help="what the model was trained on, for the card (default: the run's data.path)")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pluralrm.models.export import export_model
    from pluralrm.models.reward_model import RewardModel

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not args.overwrite)):
        from pluralrm.errors import ConfigError

        raise ConfigError(f"--out {out} exists and is not an empty directory: choose another or pass --overwrite")
    model = RewardModel.load(args.run, args.step)
    run_dir = Path(args.run) if (Path(args.run) / "summary.json").is_file() else None
    path = export_model(model, out, run_dir=run_dir, license=args.license, data_source=args.data_source,
                        overwrite=args.overwrite)
    files = sorted(str(f.relative_to(path)) for f in path.rglob("*") if f.is_file())
    more = " ..." if len(files) > 8 else ""
    print(f"pluralrm export: wrote {path} ({len(files)} files: {', '.join(files[:8])}{more})")
    print(f"pluralrm export: publish with  huggingface_hub.upload_folder(repo_id=..., folder_path='{path}')")
    return 0
