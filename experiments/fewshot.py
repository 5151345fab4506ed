"""Study 4 — few-shot personalization: how fast does a reward model learn a *new* annotator
from a handful of their comparisons?

Per seed: a society whose annotators differ within their group (``within_noise``), items split
in two and annotators split in two. Models train on the known annotators' comparisons of the
training items; the new annotators are held out entirely. For each new annotator, their
comparisons of *training* items form an adaptation pool (in a seeded random order) and their
comparisons of *held-out* items are the test. With n = 0, 1, 2, 5, 10, 20 comparisons from the
pool, ``pluralrm.models.adapt.adapt_annotator`` fits the annotator's own parameters (mixture:
mixing logits; per_group with annotators: a reward offset) with the rest frozen, starting from
their group, under each prior of ``priors`` (``empirical``: fitted to the known annotators'
learned parameters; ``training``: the head's annotator_shrinkage taken as is). Baselines that
cannot adapt: pooled (one reward) and conditioned (the group's reward).

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

import numpy as np  # noqa: E402

from experiments import common, societies  # noqa: E402


@dataclass(frozen=True)
class FewShotConfig(common.StudyConfig):
    """Study 4.

    Attributes:
      shots: numbers of the new annotator's comparisons to adapt on.
      adaptive: head name → extra head knobs, for the heads that adapt per annotator.
      baselines: heads that cannot adapt (scored once, flat in n).
      new_annotators: fraction of annotators held out entirely.
      priors: the priors of the MAP fit (``pluralrm.models.adapt.prior_precision``).
      adapt_steps, adapt_lr: the MAP fit of a new annotator's parameters.
    """

    shots: tuple[int, ...] = (0, 1, 2, 5, 10, 20)
    adaptive: dict = field(default_factory=lambda: {"mixture": {}, "per_group": {"use_annotators": True}})
    baselines: tuple[str, ...] = ("pooled", "conditioned")
    new_annotators: float = 0.2
    priors: tuple[str, ...] = ("empirical", "training")
    adapt_steps: int = 300
    adapt_lr: float = 0.3


def splits(society, study: FewShotConfig, seed: int):
    """Training rows, and for each new annotator their adaptation pool and test rows."""

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
    from pluralrm.simulate import expected_accuracy

    p = truth.p_annotator[rows]
    own_group = truth.p_group[rows, truth.row_group[rows]]
    return {
        "bayes_annotator": float(np.mean(np.maximum(p, 1 - p))),
        "bayes_group": float(np.mean(expected_accuracy(own_group, p))),
        "bayes_blind": float(np.mean(expected_accuracy(truth.p_pooled[rows], p))),
    }


def run_seed(study: FewShotConfig, seed: int) -> dict:
    from pluralrm.models.adapt import adapt_annotator
    from pluralrm.simulate import expected_accuracy

    society = societies.make_society(study, seed)
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
        for prior in study.priors:
            started = time.perf_counter()
            by_shot, used = {}, {}
            for n in study.shots:
                accs, sizes = [], []
                for a, p in people.items():
                    shots = data.select(p["pool"][:n])
                    group = {attr: test_sets[a][attr][0] for attr in model.schema.attributes}
                    adapted = adapt_annotator(model, shots["prompt"], shots["chosen"], shots["rejected"],
                                              labels=shots["label"], group=group, steps=study.adapt_steps,
                                              learning_rate=study.adapt_lr, prior=prior)
                    test = test_sets[a]
                    prob = adapted.predict_preference(test["prompt"], test["chosen"], test["rejected"])
                    accs.append(float(np.mean(expected_accuracy(prob, truth.p_annotator[p["test"]]))))
                    sizes.append(len(shots))
                by_shot[str(n)] = float(np.mean(accs))  # str keys: the same after a JSON round trip
                used[str(n)] = float(np.mean(sizes))
            elapsed = time.perf_counter() - started
            out["models"][f"{head}/{prior}"] = {"train_seconds": seconds, "adapt_seconds": elapsed,
                                                "accuracy_by_shots": by_shot, "comparisons_used": used}
            print(f"seed {seed} {head}/{prior}: " + " ".join(f"{n}:{v:.3f}" for n, v in by_shot.items())
                  + f" ({seconds:.0f} s + adaptation {elapsed:.0f} s)", flush=True)
    return out


def summarize(study: FewShotConfig, per_seed: list[dict]) -> tuple[dict, dict[str, str]]:
    summary = {"references": {k: common.interval([s["references"][k] for s in per_seed])
                              for k in per_seed[0]["references"]}}
    for head in study.baselines:
        summary[head] = common.interval([s["models"][head]["accuracy"] for s in per_seed])
    adapted = _adapted(study)
    for name in adapted:
        summary[name] = {str(n): common.interval([s["models"][name]["accuracy_by_shots"][str(n)] for s in per_seed])
                         for n in study.shots}
    header = ["model", *(f"n = {n}" for n in study.shots)]
    rows = [[_title(name), *(common.fmt(summary[name][str(n)]) for n in study.shots)] for name in adapted]
    rows += [[f"{head} (no adaptation)", *([common.fmt(summary[head])] * len(study.shots))] for head in study.baselines]
    gains = {name: {str(n): common.interval([s["models"][name]["accuracy_by_shots"][str(n)]
                                              - s["models"][name]["accuracy_by_shots"][str(study.shots[0])]
                                              for s in per_seed]) for n in study.shots[1:]} for name in adapted}
    summary["gain_over_first"] = gains
    gain_table = common.markdown_table(
        ["model", *(f"n = {n}" for n in study.shots[1:])],
        [[_title(name), *(common.fmt(gains[name][str(n)]) for n in study.shots[1:])] for name in adapted])
    names = {"bayes_annotator": "Bayes, knows the annotator", "bayes_group": "Bayes, knows the group",
             "bayes_blind": "Bayes, group-blind"}
    rows += [[names[k], *([common.fmt(v)] * len(study.shots))] for k, v in summary["references"].items()]
    return summary, {"accuracy": common.markdown_table(header, rows), "gain": gain_table}


def _adapted(study: FewShotConfig) -> list[str]:
    """``head/prior`` names of the adapted models."""
    return [f"{head}/{prior}" for head in study.adaptive for prior in study.priors]


def _title(name: str) -> str:
    head, prior = name.split("/")
    return f"{head} adapted, " + ("empirical-Bayes prior" if prior == "empirical" else f"prior '{prior}'")


def plot(study: FewShotConfig, summary: dict):
    """Left: mean accuracy against the number of the new annotator's comparisons, with the
    baselines and ceilings. Right: the gain over no comparisons, paired within a seed, with
    its 95% interval (the society-to-society spread that widens the left panel cancels)."""
    plt = common.pyplot()

    shots = list(study.shots)
    x = np.arange(len(shots))  # evenly spaced: 0 comparisons has no log position
    colors = dict(zip(study.adaptive, ("tab:blue", "tab:red", "tab:purple", "tab:olive")))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.2))
    for name in _adapted(study):
        head, prior = name.split("/")
        style = "o-" if prior == "empirical" else "s--"
        left.plot(x, [summary[name][str(n)]["mean"] for n in shots], style, color=colors[head], label=_title(name))
        gain = summary["gain_over_first"][name]
        mean = np.array([0.0] + [gain[str(n)]["mean"] for n in shots[1:]])
        half = np.nan_to_num(np.array([0.0] + [gain[str(n)]["half"] for n in shots[1:]], dtype=float))
        right.plot(x, mean, style, color=colors[head], label=_title(name))
        right.fill_between(x, mean - half, mean + half, alpha=0.12, color=colors[head])
    styles = {"pooled": "tab:gray", "conditioned": "tab:green"}
    for head in study.baselines:
        left.axhline(summary[head]["mean"], color=styles.get(head, "tab:brown"), ls=":", label=f"{head} (no adaptation)")
    refs = summary["references"]
    left.axhline(refs["bayes_annotator"]["mean"], color="k", lw=1, label="Bayes, knows the annotator")
    left.axhline(refs["bayes_group"]["mean"], color="k", lw=1, ls="-.", label="Bayes, knows the group")
    right.axhline(0, color="k", lw=0.8)
    for ax in (left, right):
        ax.set_xticks(x, [str(n) for n in shots])
        ax.set_xlabel("comparisons from the new annotator")
    left.set_ylabel("expected accuracy on their held-out items")
    left.set_title(f"Accuracy (mean of {len(study.seeds)} societies)")
    right.set_ylabel("gain over 0 comparisons")
    right.set_title("Gain over the group's prediction (paired, mean ± 95% CI)")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def main(argv=None) -> int:
    args = common.parse_args("fewshot", __doc__, argv)
    return common.drive_seeds(args, FewShotConfig, run_seed, summarize, plot)


if __name__ == "__main__":
    raise SystemExit(main())
