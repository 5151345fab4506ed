"""The options of every subcommand that loads a trained model and scores under groups.

``score``, ``explain`` and ``serve`` read a model the same way (``--checkpoint RUN`` and
``--step``), and ``score`` and ``explain`` choose groups the same way (repeatable ``--groups``
or ``--all-groups``), so their flags and defaults cannot drift apart. Only argparse here: the
heavy stack loads in each command's ``run``.
"""
from __future__ import annotations

import argparse


def add_checkpoint_arguments(p: argparse.ArgumentParser, needs: str = "") -> None:
    """``--checkpoint RUN`` (required; args.checkpoint) and ``--step`` (args.step, default
    ``best``); ``needs`` is added to the help, e.g. ``" (values head)"``."""
    p.add_argument("--checkpoint", required=True, metavar="RUN",
                   help=f"a run directory of `pluralrm train` or a saved model directory{needs}")
    p.add_argument("--step", default="best", help="with a run directory: best (default), latest or a step number")


def add_group_arguments(p: argparse.ArgumentParser, groups_help: str, all_groups_help: str,
                        metavar: str = "ATTR=VALUE[,ATTR=VALUE]") -> None:
    """``--groups SPEC`` (repeatable; args.groups, None when not given) or ``--all-groups``
    (args.all_groups), never both."""
    which = p.add_mutually_exclusive_group()
    which.add_argument("--groups", action="append", metavar=metavar, help=groups_help)
    which.add_argument("--all-groups", action="store_true", help=all_groups_help)


__all__ = ["add_checkpoint_arguments", "add_group_arguments"]
