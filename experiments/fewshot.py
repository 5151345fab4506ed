"""Study 4 — few-shot personalization: how fast does a reward model learn a *new* annotator
from a handful of their comparisons?

Per seed: a society whose annotators differ within their group (``within_noise``), items split
in two and annotators split in two. Models train on the known annotators' comparisons of the
training items; the new annotators are held out entirely. For each new annotator, their
comparisons of *training* items form an adaptation pool (in a seeded random order) and their
comparisons of *held-out* items are the test. With n = 0, 1, 2, 5, 10, 20 comparisons from the
pool, ``pluralrm.models.adapt.adapt_annotator`` fits the annotator's own parameters (mixture:
mixing logits; per_group with annotators: a reward offset) with the rest frozen, starting from
their group. Baselines that cannot adapt: pooled (one reward) and conditioned (the group's
reward).

Score: expected accuracy on the test comparisons under the annotator's *own* true probability
(``Truth.p_annotator``), next to the ceilings of a per-annotator, a group-aware and a
group-blind Bayes rule. Averaged over new annotators, then intervals over seeds; a plot.

    python experiments/fewshot.py --config experiments/configs/fewshot.yaml [--seeds 0,1,2] [--quick]
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import common  # noqa: E402


@dataclass(frozen=True)
class FewShotConfig(common.StudyConfig):
    """Study 4.

    Attributes:
      shots: numbers of the new annotator's comparisons to adapt on.
      adaptive: head name → extra head knobs, for the heads that adapt per annotator.
      baselines: heads that cannot adapt (scored once, flat in n).
      new_annotators: fraction of annotators held out entirely.
      adapt_steps, adapt_lr: the MAP fit of a new annotator's parameters.
    """

    shots: tuple[int, ...] = (0, 1, 2, 5, 10, 20)
    adaptive: dict = field(default_factory=lambda: {"mixture": {}, "per_group": {"use_annotators": True}})
    baselines: tuple[str, ...] = ("pooled", "conditioned")
    new_annotators: float = 0.2
    adapt_steps: int = 300
    adapt_lr: float = 0.3


def splits(society, study: FewShotConfig, seed: int):
    """Training rows, and for each new annotator their adaptation pool and test rows."""
    import numpy as np

    data, truth = society.data, society.truth
    train_items, test_items = common.item_split(data, study.test_size, seed)
    known_rows, new_rows = common.item_split(data, study.new_annotators, seed, by="annotator")
    is_test_item = np.zeros(len(data), bool)
    is_test_item[test_items] = True
    is_new = np.zeros(len(data), bool)
    is_new[new_rows] = True
    train = np.flatnonzero(~is_new & ~is_test_item)
    rng = np.random.default_rng(seed)
    people = {}
    for a in np.unique(truth.row_annotator[is_new]):
        mine = truth.row_annotator == a
        pool = np.flatnonzero(mine & ~is_test_item)
        people[int(a)] = {"pool": rng.permutation(pool), "test": np.flatnonzero(mine & is_test_item)}
    return train, people


def references(truth, rows) -> dict[str, float]:
    """Ceilings on a new annotator's test rows, under their own true p."""
    import numpy as np

    from pluralrm.simulate import expected_accuracy

    p = truth.p_annotator[rows]
    own_group = truth.p_group[rows, truth.row_group[rows]]
    return {
        "bayes_annotator": float(np.mean(np.maximum(p, 1 - p))),
        "bayes_group": float(np.mean(expected_accuracy(own_group, p))),
        "bayes_blind": float(np.mean(expected_accuracy(truth.p_pooled[rows], p))),
    }


def run_seed(study: FewShotConfig, seed: int) -> dict:
    import numpy as np

    from pluralrm.models.adapt import adapt_annotator
    from pluralrm.simulate import expected_accuracy

    society = common.make_society(study, seed)
    data, truth = society.data, society.truth
    train_rows, people = splits(society, study, seed)
    train = data.select(train_rows)
    test_sets = {a: data.select(p["test"]) for a, p in people.items()}
    refs = {a: references(truth, p["test"]) for a, p in people.items()}
    out = {"society_seed": society.config.seed, "train_rows": len(train_rows), "new_annotators": len(people),
           "test_rows_per_annotator": float(np.mean([len(p["test"]) for p in people.values()])),
           "references": {k: float(np.mean([r[k] for r in refs.values()])) for k in next(iter(refs.values()))},
           "models": {}}
    for head in study.baselines:
        model, seconds = common.fit_model(common.train_config(study, seed, head), train)
        accs = [float(np.mean(expected_accuracy(model.predict(test_sets[a]), truth.p_annotator[p["test"]])))
                for a, p in people.items()]
        out["models"][head] = {"train_seconds": seconds, "accuracy": float(np.mean(accs))}
        print(f"seed {seed} {head:12s} {np.mean(accs):.3f} ({seconds:.0f} s)", flush=True)
    for head, knobs in study.adaptive.items():
        config = common.train_config(study, seed, head, model={"head": dict(knobs or {})})
        model, seconds = common.fit_model(config, train)
        by_shot = {}
        started = time.perf_counter()
        for n in study.shots:
            accs = []
            for a, p in people.items():
                shots = data.select(p["pool"][:n])
                group = {attr: test_sets[a][attr][0] for attr in model.schema.attributes}
                adapted = adapt_annotator(model, shots["prompt"], shots["chosen"], shots["rejected"],
                                          labels=shots["label"], group=group, steps=study.adapt_steps,
                                          learning_rate=study.adapt_lr)
                test = test_sets[a]
                prob = adapted.predict_preference(test["prompt"], test["chosen"], test["rejected"])
                accs.append(float(np.mean(expected_accuracy(prob, truth.p_annotator[p["test"]]))))
            by_shot[str(n)] = float(np.mean(accs))  # str keys: the same after a JSON round trip
        out["models"][head] = {"train_seconds": seconds, "adapt_seconds": time.perf_counter() - started,
                               "accuracy_by_shots": by_shot}
        print(f"seed {seed} {head:12s} " + " ".join(f"{n}:{v:.3f}" for n, v in by_shot.items())
              + f" ({seconds:.0f} s + adaptation {time.perf_counter() - started:.0f} s)", flush=True)
    return out


def summarize(study: FewShotConfig, per_seed: list[dict]) -> tuple[dict, dict[str, str]]:
    summary = {"references": {k: common.interval([s["references"][k] for s in per_seed])
                              for k in per_seed[0]["references"]}}
    for head in study.baselines:
        summary[head] = common.interval([s["models"][head]["accuracy"] for s in per_seed])
    for head in study.adaptive:
        summary[head] = {str(n): common.interval([s["models"][head]["accuracy_by_shots"][str(n)] for s in per_seed])
                         for n in study.shots}
    header = ["model", *(f"n = {n}" for n in study.shots)]
    rows = [[f"{head} (adapted)", *(common.fmt(summary[head][str(n)]) for n in study.shots)] for head in study.adaptive]
    rows += [[f"{head} (no adaptation)", *([common.fmt(summary[head])] * len(study.shots))] for head in study.baselines]
    names = {"bayes_annotator": "Bayes, knows the annotator", "bayes_group": "Bayes, knows the group",
             "bayes_blind": "Bayes, group-blind"}
    rows += [[names[k], *([common.fmt(v)] * len(study.shots))] for k, v in summary["references"].items()]
    return summary, {"accuracy": common.markdown_table(header, rows)}


def plot(study: FewShotConfig, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shots = list(study.shots)
    x = np.arange(len(shots))  # evenly spaced: 0 shots has no log position
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for head in study.adaptive:
        mean = np.array([summary[head][str(n)]["mean"] for n in shots])
        half = np.nan_to_num(np.array([summary[head][str(n)]["half"] for n in shots], dtype=float))
        ax.plot(x, mean, "o-", label=f"{head} (adapted)")
        ax.fill_between(x, mean - half, mean + half, alpha=0.2)
    styles = {"pooled": ("tab:gray", "--"), "conditioned": ("tab:green", "--")}
    for head in study.baselines:
        color, ls = styles.get(head, ("tab:brown", "--"))
        ax.axhline(summary[head]["mean"], color=color, ls=ls, label=f"{head} (no adaptation)")
    refs = summary["references"]
    ax.axhline(refs["bayes_annotator"]["mean"], color="k", ls="-", lw=1, label="Bayes, knows the annotator")
    ax.axhline(refs["bayes_group"]["mean"], color="k", ls=":", lw=1, label="Bayes, knows the group")
    ax.set_xticks(x, [str(n) for n in shots])
    ax.set_xlabel("comparisons from the new annotator")
    ax.set_ylabel("expected accuracy on their held-out items")
    ax.set_title(f"Few-shot personalization ({len(study.seeds)} seeds, mean ± 95% CI)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = common.parse_args("fewshot", __doc__, argv)

    def finish(study, results, out):
        summary, tables = summarize(study, results["per_seed"])
        plot(study, summary, out / "fewshot.png")
        return summary, tables

    return common.drive(args, FewShotConfig, lambda study: {"per_seed": [run_seed(study, s) for s in study.seeds]},
                        finish)


if __name__ == "__main__":
    raise SystemExit(main())
