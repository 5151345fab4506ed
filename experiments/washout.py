"""Study 1 — washout: a pooled reward model fits the majority and loses minority groups;
group-aware heads (conditioned, per_group, mixture) recover them.

Per seed: a society with planted heterogeneity and unequal group sizes
(``configs/washout.yaml``), a held-out split by item, one model per head trained on the same
rows with the same (hashing) backbone. Each is scored on the held-out rows against the truth
(:mod:`pluralrm.simulate.recovery`): per group, the expected accuracy under the group's
population preference next to the group-aware and group-blind Bayes accuracies, and the
retention of between-group disagreement (:func:`retention_columns`).

    python experiments/washout.py --config experiments/configs/washout.yaml [--seeds 0,1,2] [--quick|--full]
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import common  # noqa: E402

MINORITY_SHARE = 0.1


@dataclass(frozen=True)
class WashoutConfig(common.StudyConfig):
    """Study 1. ``heads``: the heads compared (pooled first: the baseline)."""

    heads: tuple[str, ...] = ("pooled", "conditioned", "per_group", "mixture")


def retention_columns(prob_items, p_group_items) -> dict[str, float]:
    """The disagreement-retention columns of a model on held-out items.

    One function on purpose: the calibration module's data-based *disagreement retention
    ratio* (predicted between-group divergence / empirical divergence, finite-sample
    corrected) is to be added here once ``pluralrm.calibration`` is merged. For now:

    - ``truth_retention``: mean over items of the variance across groups of the model's
      P(chosen ≻ rejected), divided by the same for the simulator's true population
      probabilities (:func:`pluralrm.simulate.recovery.truth_retention`). The truth has no
      sampling noise, so no finite-sample correction is needed; it exists only for simulated
      data. 0 = the model says every group agrees (pooled), 1 = it keeps the true spread.
    - ``deviation_correlation``: whether the predicted group differences point the true way.

    Args:
      prob_items: ``[I, G']`` the model's per-group probabilities on held-out items.
      p_group_items: ``[I, G']`` the truth's, same rows and columns.
    """
    from pluralrm.simulate import deviation_correlation, truth_retention

    return {
        "truth_retention": truth_retention(prob_items, p_group_items),
        "deviation_correlation": deviation_correlation(prob_items, p_group_items),
    }


def run_seed(study: WashoutConfig, seed: int) -> dict:
    """Trains every head on one society and scores it; returns per-head results."""
    import numpy as np

    from pluralrm.simulate import group_recovery

    society = common.make_society(study, seed)
    data, truth = society.data, society.truth
    train_rows, test_rows = common.item_split(data, study.test_size, seed)
    train = data.select(train_rows)
    labels = np.asarray(data.select(test_rows)["label"])
    out = {"society_seed": society.config.seed, "train_rows": len(train_rows), "test_rows": len(test_rows),
           "heads": {}}
    for head in study.heads:
        model, seconds = common.fit_model(common.train_config(study, seed, head), train)
        prob, prob_items, item_rows = common.heldout_predictions(model, data, truth, test_rows)
        table = group_recovery(truth, test_rows, prob, labels)
        out["heads"][head] = {
            "train_seconds": seconds,
            "groups": [g.to_dict() for g in table],
            **retention_columns(prob_items, truth.p_group[item_rows]),
        }
        print(f"seed {seed} {head:12s} expected accuracy {table[0].expected_accuracy:.3f} "
              f"(Bayes {table[0].bayes_group:.3f}) in {seconds:.0f} s", flush=True)
    return out


def summarize(study: WashoutConfig, per_seed: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """Per group and head: intervals over seeds; the markdown tables."""
    heads = study.heads
    first = per_seed[0]["heads"][heads[0]]["groups"]
    groups = [g["group"] for g in first]
    share = {g["group"]: g["share"] for g in first}

    def values(head, group, key):
        return [next(g[key] for g in s["heads"][head]["groups"] if g["group"] == group) for s in per_seed]

    rows = []
    for group in groups:
        row = {"group": group, "share": share[group],
               "bayes_group": common.interval(values(heads[0], group, "bayes_group")),
               "bayes_blind": common.interval(values(heads[0], group, "bayes_blind"))}
        for head in heads:
            row[head] = common.interval(values(head, group, "expected_accuracy"))
            row[f"{head}_observed"] = common.interval(values(head, group, "observed_accuracy"))
        rows.append(row)
    retention = {head: {k: common.interval([s["heads"][head][k] for s in per_seed])
                        for k in ("truth_retention", "deviation_correlation")} for head in heads}

    header = ["group", "share", "Bayes group-aware", "Bayes group-blind", *heads]
    body = [[_label(r["group"], r["share"]), f"{r['share']:.2f}", common.fmt(r["bayes_group"]),
             common.fmt(r["bayes_blind"]), *(common.fmt(r[h]) for h in heads)] for r in rows]
    body.append(["truth_retention", "", "1", "0", *(common.fmt(retention[h]["truth_retention"], 2) for h in heads)])
    tables = {"accuracy": common.markdown_table(header, body)}
    return [*rows, {"group": "retention", **retention}], tables


def _label(group: str, share: float) -> str:
    if group == "all":
        return "all (row-weighted)"
    return common.short_group(group) + (" (minority)" if share < MINORITY_SHARE else "")


def plot(study: WashoutConfig, rows: list[dict], path: Path) -> None:
    """Per-group expected accuracy of each head with the two Bayes ceilings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = [r for r in rows if r["group"] not in ("retention",)]
    x = np.arange(len(groups))
    width = 0.8 / len(study.heads)
    fig, ax = plt.subplots(figsize=(1.4 * len(groups) + 2, 4))
    for j, head in enumerate(study.heads):
        mean = [r[head]["mean"] for r in groups]
        err = [0 if np.isnan(r[head]["half"]) else r[head]["half"] for r in groups]
        ax.bar(x - 0.4 + width * (j + 0.5), mean, width, yerr=err, capsize=2, label=head)
    for key, style, name in (("bayes_group", "k-", "Bayes group-aware"), ("bayes_blind", "k:", "Bayes group-blind")):
        for i, r in enumerate(groups):
            ax.plot([i - 0.45, i + 0.45], [r[key]["mean"]] * 2, style, lw=1.5, label=name if i == 0 else None)
    ax.set_xticks(x, [_label(r["group"], r["share"]).replace(" (", "\n(") for r in groups], fontsize=8)
    low = min(min(r[h]["mean"] for h in study.heads) for r in groups)
    ax.set_ylim(max(0.45, low - 0.05), 1.0)
    ax.set_ylabel("held-out expected accuracy")
    ax.set_title(f"Washout: per-group accuracy vs Bayes ({len(study.seeds)} seeds, mean ± 95% CI)")
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = common.parse_args("washout", __doc__, argv)
    study = common.load_study(WashoutConfig, args)
    started = time.perf_counter()
    per_seed = [run_seed(study, s) for s in study.seeds]
    rows, tables = summarize(study, per_seed)
    for name, table in tables.items():
        print(table)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    plot(study, rows, Path(args.out) / "washout.png")
    common.write_results(args, study, {"per_seed": per_seed, "summary": rows}, started, tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
