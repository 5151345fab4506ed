"""The ``pluralrm`` console script.

Each subcommand lives in its own module ``pluralrm/cli/<name>.py`` exposing
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import the heavy stack
(JAX, datasets) inside ``run`` only, so ``pluralrm --help`` answers at once.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> one-line help. Order is the order ``--help`` lists them in.
COMMANDS: dict[str, str] = {
    "demo": "run the end-to-end demo on the bundled data",
    "simulate": "generate a synthetic society with planted group values (ground truth)",
    "data": "inspect, split and convert comparison data (summary, validate, split, candidates)",
    "train": "train a reward model from a YAML config",
    "score": "score candidate responses per group, aggregate across groups, pick the best",
    "serve": "serve a reward model over HTTP (score, compare, groups; needs pluralrm[serve])",
    "export": "write a shareable model directory (safetensors, config, tokenizer, model card)",
    "explain": "explain a values model's preference: each value's contribution per group",
    "calibrate": "disagreement and calibration report for comparison data and a model's predictions",
}


def build_parser() -> argparse.ArgumentParser:
    from pluralrm import __version__

    parser = argparse.ArgumentParser(
        prog="pluralrm",
        description="Pluralistic reward modeling: train, score and calibrate reward models "
        "conditioned on who is judging.",
    )
    parser.add_argument("--version", action="version", version=f"pluralrm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"pluralrm.cli.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pluralrm.errors import PluralRMError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except PluralRMError as e:
        from pluralrm.cli.console_warnings import cli_words

        print(f"pluralrm {args.command}: error: {cli_words(str(e), args.command)}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, a permission: the outputs were written atomically, none is partial
        print(f"pluralrm {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pluralrm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
