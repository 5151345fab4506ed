"""``pluralrm explain --checkpoint RUN --prompt P --a A --b B [--groups SPEC ... | --all-groups] [--json]``.

Prints, for each group, P(a ≻ b), the reward gap r_g(a) − r_g(b) and each value's contribution
w_g,k (v_k(a) − v_k(b)) to it (a ``values`` head only; see ``pluralrm.explain``). Without
``--groups``/``--all-groups`` it explains the shared weights (a judge whose group is unknown).
"""
from __future__ import annotations

import argparse

from pluralrm.cli.model_options import add_checkpoint_arguments, add_group_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint_arguments(p, " (values head)")
    p.add_argument("--prompt", required=True, help="the prompt both answers reply to")
    p.add_argument("--a", required=True, help="answer a")
    p.add_argument("--b", required=True, help="answer b")
    add_group_arguments(p, "a group to explain, e.g. country=NG or country=NG,language=yo (repeatable)",
                        "explain every group of the model's schema", metavar="SPEC")
    p.add_argument("--fallback", default="pooled", choices=("pooled", "error", "nearest"),
                   help="what an unknown group value falls back to (default: the shared weights, with a warning)")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from pluralrm.cli.console_warnings import printed_warnings
    from pluralrm.explain import explain
    from pluralrm.models.reward_model import RewardModel

    with printed_warnings("explain"):
        model = RewardModel.load(args.checkpoint, checkpoint=args.step)
        groups = "all" if args.all_groups else (args.groups or None)
        explanation = explain(model, args.prompt, args.a, args.b, groups=groups, fallback=args.fallback)
    if explanation.value_names and all(n == f"value_{k}" for k, n in enumerate(explanation.value_names)):
        print("pluralrm explain: note: the values are unnamed; train with model.head.value_names=[...] (as "
              "experiments/configs/values_hashing.yaml does for the simulated society) to name them",
              file=sys.stderr)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=1, ensure_ascii=False))
    else:
        print_explanation(explanation)
    return 0


def print_explanation(explanation) -> None:
    """Two rich tables: contributions per group × value (values ordered by mean |contribution|,
    each group's largest in bold), and the value scores of both answers."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    names = explanation.value_names
    matrix = explanation.contribution_matrix()  # [G, K]
    order = np.argsort(-np.mean(np.abs(matrix), axis=0), kind="stable")
    console = Console(width=max(100, 34 + 11 * (len(names) + 2)))
    console.print(f"[bold]prompt[/bold] {_short(explanation.prompt)}")
    console.print(f"[bold]a[/bold]      {_short(explanation.a)}")
    console.print(f"[bold]b[/bold]      {_short(explanation.b)}")
    table = Table(title="why each group prefers a or b: w_g,k·(v_k(a) − v_k(b)) per value, summing to the gap")
    table.add_column("group")
    for col in ("P(a≻b)", "gap", *(names[k] for k in order)):
        table.add_column(col, justify="right")
    for g, group in enumerate(explanation.groups):
        top = int(np.argmax(np.abs(matrix[g])))
        cells = [f"[bold]{matrix[g, k]:+.4f}[/bold]" if k == top else f"{matrix[g, k]:+.4f}" for k in order]
        table.add_row(group.group, f"{group.probability:.4f}", f"{group.gap:+.4f}", *cells)
    console.print(table)
    scores = Table(title="value scores v(a), v(b)")
    scores.add_column("answer")
    for k in order:
        scores.add_column(names[k], justify="right")
    scores.add_row("a", *(f"{explanation.scores_a[k]:+.4f}" for k in order))
    scores.add_row("b", *(f"{explanation.scores_b[k]:+.4f}" for k in order))
    scores.add_row("a − b", *(f"{explanation.scores_a[k] - explanation.scores_b[k]:+.4f}" for k in order))
    console.print(scores)


def _short(text: str, limit: int = 90) -> str:
    from rich.markup import escape

    text = " ".join(text.split())
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")
