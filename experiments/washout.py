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
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from experiments import common, societies  # noqa: E402

MINORITY_SHARE = 0.1


@dataclass(frozen=True)
class WashoutConfig(common.StudyConfig):
    """Study 1. ``heads``: the heads compared (pooled first: the baseline)."""

    heads: tuple[str, ...] = ("pooled", "conditioned", "per_group", "mixture")


def retention_columns(prob_items, p_group_items) -> dict[str, float]:
    """The truth-based disagreement-retention columns of a model on held-out items.

    - ``truth_retention``: mean over items of the variance across groups of the model's
      P(chosen ≻ rejected), divided by the same for the simulator's true population
      probabilities (:func:`pluralrm.simulate.recovery.truth_retention`). No sampling noise, no
      correction; it exists only for simulated data. 0 = the model says every group agrees
      (pooled), 1 = it keeps the true spread.
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


def data_retention(model, test) -> float:
    """The calibration module's *disagreement retention ratio* on the held-out votes
    (``pluralrm.calibration.analyze(...).fidelity``, row "all"): predicted between-group squared
    preference gap over the empirical one with binomial vote noise subtracted, over units where
    two groups have >= 2 votes each. What a user can compute on real data."""
    from pluralrm.calibration import analyze

    group_p, labels = model.predict_all_groups(test)
    report = analyze(test, group_predictions=group_p, group_labels=labels, bootstrap=0, permutations=0, min_votes=2)
    return {r["group"]: r for r in report.fidelity.rows()}["all"]["retention"]


def run_seed(study: WashoutConfig, seed: int) -> dict:
    """Trains every head on one society and scores it; returns per-head results."""
    from pluralrm.simulate import group_recovery

    society = societies.make_society(study, seed)
    data, truth = society.data, society.truth
    train_rows, test_rows = common.item_split(data, study.test_size, seed)
    train = data.select(train_rows)
    labels = np.asarray(data.select(test_rows)["label"])
    out = {"society_seed": society.config.seed, "train_rows": len(train_rows), "test_rows": len(test_rows),
           "heads": {}}
    for head in study.heads:
        model, seconds = common.fit_model(common.train_config(study, seed, head), train)
        prob, prob_items, item_rows = societies.heldout_predictions(model, data, truth, test_rows)
        table = group_recovery(truth, test_rows, prob, labels)
        out["heads"][head] = {
            "train_seconds": seconds,
            "groups": [g.to_dict() for g in table],
            "data_retention": data_retention(model, data.select(test_rows)),
            **retention_columns(prob_items, truth.p_group[item_rows]),
        }
        print(f"seed {seed} {head:12s} expected accuracy {table[0].expected_accuracy:.3f} "
              f"(Bayes {table[0].bayes_group:.3f}) in {seconds:.0f} s", flush=True)
    return out


def summarize(study: WashoutConfig, per_seed: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """Per group and head: intervals over seeds of the accuracy and of the regret (Bayes
    group-aware − accuracy, paired within a seed); the markdown tables.

    Seeds are different societies, so a group's accuracy and its Bayes ceiling both move from
    seed to seed: the accuracy intervals carry that society-to-society spread, the regret
    intervals (a paired difference) mostly do not.
    """
    heads = study.heads
    first = per_seed[0]["heads"][heads[0]]["groups"]
    groups = [g["group"] for g in first]
    share = {g["group"]: g["share"] for g in first}

    def values(head, group, key):
        return [next(g[key] for g in s["heads"][head]["groups"] if g["group"] == group) for s in per_seed]

    rows = []
    for group in groups:
        aware, blind = values(heads[0], group, "bayes_group"), values(heads[0], group, "bayes_blind")
        row = {"group": group, "share": share[group], "bayes_group": common.interval(aware),
               "bayes_blind": common.interval(blind),
               "blind_regret": common.interval([a - b for a, b in zip(aware, blind)])}
        for head in heads:
            row[head] = common.interval(values(head, group, "expected_accuracy"))
            row[f"{head}_regret"] = common.interval(values(head, group, "regret"))
            row[f"{head}_observed"] = common.interval(values(head, group, "observed_accuracy"))
        rows.append(row)
    retention = {head: {k: common.interval([s["heads"][head][k] for s in per_seed])
                        for k in ("data_retention", "truth_retention", "deviation_correlation")} for head in heads}

    def label(r):
        return _label(r["group"], r["share"])

    tables = {
        "accuracy": common.markdown_table(
            ["group", "share", "Bayes group-aware", "Bayes group-blind", *heads],
            [[label(r), f"{r['share']:.2f}", common.fmt(r["bayes_group"]), common.fmt(r["bayes_blind"]),
              *(common.fmt(r[h]) for h in heads)] for r in rows]),
        "regret": common.markdown_table(
            ["group", "share", "Bayes group-blind", *heads],
            [[label(r), f"{r['share']:.2f}", common.fmt(r["blind_regret"]), *(common.fmt(r[f"{h}_regret"]) for h in heads)]
             for r in rows]),
        "retention": common.markdown_table(
            ["", *heads],
            [["data_retention", *(common.fmt(retention[h]["data_retention"], 2) for h in heads)],
             ["truth_retention", *(common.fmt(retention[h]["truth_retention"], 2) for h in heads)],
             ["deviation_correlation", *(common.fmt(retention[h]["deviation_correlation"], 2) for h in heads)]]),
        "observed": common.markdown_table(
            ["group", "share", *heads],
            [[label(r), f"{r['share']:.2f}", *(common.fmt(r[f"{h}_observed"]) for h in heads)] for r in rows]),
    }
    return [*rows, {"group": "retention", **retention}], tables


def _label(group: str, share: float) -> str:
    if group == "all":
        return "all (row-weighted)"
    return common.short_group(group) + (" (minority)" if share < MINORITY_SHARE else "")


def plot(study: WashoutConfig, rows: list[dict]):
    """Per-group regret (Bayes group-aware − expected accuracy) of each head, and the regret
    of the best group-blind rule."""
    plt = common.pyplot()

    groups = [r for r in rows if r["group"] != "retention"]
    x = np.arange(len(groups))
    width = 0.8 / len(study.heads)
    fig, ax = plt.subplots(figsize=(1.4 * len(groups) + 2, 4))
    for j, head in enumerate(study.heads):
        mean = [r[f"{head}_regret"]["mean"] for r in groups]
        err = [0 if np.isnan(r[f"{head}_regret"]["half"]) else r[f"{head}_regret"]["half"] for r in groups]
        ax.bar(x - 0.4 + width * (j + 0.5), mean, width, yerr=err, capsize=2, label=head)
    for i, r in enumerate(groups):
        ax.plot([i - 0.45, i + 0.45], [r["blind_regret"]["mean"]] * 2, "k:", lw=1.5,
                label="best group-blind rule" if i == 0 else None)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [_label(r["group"], r["share"]).replace(" (", "\n(") for r in groups], fontsize=8)
    ax.set_ylabel("regret: Bayes group-aware − expected accuracy")
    ax.set_title(f"Washout: held-out regret per group ({len(study.seeds)} societies, mean ± 95% CI)")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    args = common.parse_args("washout", __doc__, argv)
    return common.drive_seeds(args, WashoutConfig, run_seed, summarize, plot)


if __name__ == "__main__":
    raise SystemExit(main())
