"""Study 2 — candidate sampling (Community Alignment): with the same annotation budget, do
negatively correlated candidate pairs teach a group-conditioned reward model the groups'
heterogeneous preferences better than independently drawn pairs? And when does it stop
mattering (a homogeneous society; very large budgets)?

Per condition and seed: one society; its comparisons drawn twice, with the two candidates of a
pair independent or negatively correlated (``candidate_correlation``), the same number of
comparisons N each; one conditioned model trained on each. Both are scored on one *probe*
set of fresh, independently sampled items judged by the same society (so neither arm is
tested on its own kind of pair), under every group:

- regret: Bayes accuracy − expected accuracy, per group, averaged over groups equally;
- deviation correlation: do the model's group differences point the true way;
- truth retention: how much of the true between-group spread the model keeps.

The effect is the per-seed difference negatively correlated − independent (paired: same
society, same probe), with a t-interval over seeds.

    python experiments/candidate_sampling.py --config experiments/configs/candidate_sampling.yaml
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from experiments import common, societies  # noqa: E402

ARMS = ("independent", "negatively_correlated")
METRICS = ("regret", "minority_regret", "deviation_correlation", "truth_retention")


@dataclass(frozen=True)
class CandidateSamplingConfig(common.StudyConfig):
    """Study 2.

    Attributes:
      head: the group-aware head trained on each arm.
      conditions: name → society knobs changed for that condition (``{}``: the base society).
      probe_items: fresh items drawn for the probe set.
      epochs: the least number of passes over the training rows (large budgets get more steps).
      minority_share: groups below this population share count as minorities.
    """

    head: str = "conditioned"
    conditions: dict = field(default_factory=lambda: {"base": {}})
    probe_items: int = 3000
    epochs: float = 2.0
    minority_share: float = 0.1


def probe_metrics(prob_all, p_group, shares, minority_share: float) -> dict[str, float]:
    """Scores per-group predictions on probe items against the truth.

    Args:
      prob_all: ``[P, G']`` the model's P(chosen ≻ rejected) under every group.
      p_group: ``[P, G']`` the true population probabilities.
      shares: ``[G']`` population shares.

    Returns:
      regret (groups weighted equally), minority_regret, per-group regret, deviation
      correlation and truth retention.
    """
    from pluralrm.simulate import deviation_correlation, expected_accuracy, truth_retention

    bayes = np.maximum(p_group, 1.0 - p_group).mean(axis=0)  # [G']
    accuracy = expected_accuracy(prob_all, p_group).mean(axis=0)
    regret = bayes - accuracy
    minority = np.asarray(shares) < minority_share
    return {
        "regret": float(regret.mean()),
        "minority_regret": float(regret[minority].mean()) if minority.any() else float("nan"),
        "group_regret": regret.tolist(),
        "group_bayes": bayes.tolist(),
        "deviation_correlation": deviation_correlation(prob_all, p_group),
        "truth_retention": truth_retention(prob_all, p_group),
    }


def run_condition_seed(study: CandidateSamplingConfig, changes: dict, seed: int) -> dict:
    """Both arms on one society: train, then score on the shared probe."""
    by_arm = {arm: societies.make_society(study, seed, candidate_sampling=arm, **changes) for arm in ARMS}
    probe, probe_rows = societies.probe_set(list(by_arm.values()), study.probe_items,
                                         candidate_sampling="independent")
    probe_data = probe.data.select(probe_rows)
    truth = probe.truth
    p_group = truth.p_group[probe_rows]
    out = {"society_seed": by_arm[ARMS[0]].config.seed, "probe_items": len(probe_rows),
           "true_disagreement": truth.disagreement()["std"], "arms": {}}
    for arm, society in by_arm.items():
        config = common.train_config(study, seed, study.head)
        steps = common.steps_for(config, len(society.data), study.epochs)
        model, seconds = common.fit_model(common.train_config(study, seed, study.head, steps), society.data)
        prob_all = common.group_probabilities(model, probe_data, truth.group_labels)
        metrics = probe_metrics(prob_all, p_group, truth.group_share, study.minority_share)
        out["arms"][arm] = {"steps": steps, "train_seconds": seconds,
                            "mean_abs_profile_gap": _profile_gap(society.truth), **metrics}
        print(f"seed {seed} {arm:22s} regret {metrics['regret']:.3f} dev-corr "
              f"{metrics['deviation_correlation']:.3f} ({steps} steps, {seconds:.0f} s)", flush=True)
    return out


def _profile_gap(truth) -> float:
    """Mean |v_first − v_second| per value dimension of the training pairs (how far apart
    the two candidates are)."""

    return float(np.mean(np.abs(truth.profiles[:, 0].astype(float) - truth.profiles[:, 1])))


def summarize(study: CandidateSamplingConfig, results: dict[str, list[dict]]) -> tuple[dict, dict[str, str]]:
    """Intervals over seeds per condition, arm and metric, and of the paired differences."""
    summary = {}
    for name, per_seed in results.items():
        entry = {}
        for metric in METRICS:
            by_arm = {arm: [s["arms"][arm][metric] for s in per_seed] for arm in ARMS}
            entry[metric] = {arm: common.interval(v) for arm, v in by_arm.items()}
            entry[metric]["difference"] = common.interval(  # None: NaN after a JSON round trip
                [None if a is None or b is None else b - a for a, b in zip(*by_arm.values())])
        entry["mean_abs_profile_gap"] = {arm: common.interval([s["arms"][arm]["mean_abs_profile_gap"]
                                                                for s in per_seed]) for arm in ARMS}
        entry["true_disagreement"] = common.interval([s["true_disagreement"] for s in per_seed])
        summary[name] = entry
    header = ["condition", "true disagreement (sd)"]
    for metric in ("regret", "minority_regret", "deviation_correlation"):
        header += [f"{metric} indep.", f"{metric} neg.-corr.", f"Δ {metric}"]
    rows = []
    for name, entry in summary.items():
        row = [name, common.fmt(entry["true_disagreement"])]
        for metric in ("regret", "minority_regret", "deviation_correlation"):
            row += [common.fmt(entry[metric][arm]) for arm in ARMS] + [common.fmt(entry[metric]["difference"])]
        rows.append(row)
    retention = common.markdown_table(
        ["condition", "truth_retention indep.", "truth_retention neg.-corr.", "Δ"],
        [[n, *(common.fmt(e["truth_retention"][a], 2) for a in ARMS), common.fmt(e["truth_retention"]["difference"], 2)]
         for n, e in summary.items()])
    return summary, {"effects": common.markdown_table(header, rows), "retention": retention}


def main(argv=None) -> int:
    args = common.parse_args("candidate_sampling", __doc__, argv)

    def run(study):
        return {"per_seed": {name: [run_condition_seed(study, changes or {}, s) for s in study.seeds]
                             for name, changes in study.conditions.items()}}

    return common.drive(args, CandidateSamplingConfig, run, lambda study, results, out: summarize(study, results["per_seed"]))


if __name__ == "__main__":
    raise SystemExit(main())
