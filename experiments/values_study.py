"""Value-decomposed rewards on a simulated society: are the planted group value weights recovered?

    python experiments/values_study.py --config experiments/configs/values_study.yaml [--text] [--quick]

For each seed, a society with planted cell weights w_c ∈ R^K is simulated, split by item, and
three reward models are trained on the same data with oracle features (each response's true
value profile; ``pluralrm.simulate.oracle``):

- ``values`` with value labels *withheld*: value scores are identified only up to an invertible
  linear map A, so the learned weights are compared with the planted ones after the best linear
  alignment: A is fitted by least squares from learned value scores to true profiles on
  training responses (p ≈ A v + c), the weights are mapped by A⁻ᵀ (then w·v = (A⁻ᵀ w)·p + const)
  and correlated (Spearman over the K values, per group) with w_c;
- ``values`` with value labels *given*: per-value score accuracy (R² and correlation of v_k with
  the true profile on held-out responses) and weight recovery without alignment;
- ``conditioned``: the FiLM head, for held-out accuracy on the same data.

``--text`` adds the hashing text backbone (first seed, labels withheld and given). Writes
``results.json``, ``summary.md``, ``weights.png`` (planted vs recovered, first seed) and
``weight_table.png`` (the labels-given model's G×K table with bootstrap intervals, first seed)
under ``--out``.
"""
from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import yaml
from scipy.stats import pearsonr, spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pluralrm.configs import from_dict  # noqa: E402
from pluralrm.data.split import TEST, TRAIN, split_assignment  # noqa: E402
from pluralrm.explain import group_value_weights, plot_group_value_weights  # noqa: E402
from pluralrm.provenance import provenance  # noqa: E402
from pluralrm.simulate import DEFAULT_SOCIETY, generate  # noqa: E402
from pluralrm.simulate.oracle import oracle_table  # noqa: E402
from pluralrm.train import TrainConfig, fit  # noqa: E402

MODELS = ("values_nolabels", "values_labels", "conditioned")


# ---------------------------------------------------------------------------- alignment math
def fit_alignment(learned: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine map from learned scores ``[R, K]`` to true profiles ``[R, K]``:
    p ≈ A v + c. Returns ``(A [K, K], c [K])``."""
    design = np.concatenate([learned, np.ones((len(learned), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, true, rcond=None)  # [K + 1, K]
    return coef[:-1].T, coef[-1]


def align_weights(weights: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Weights ``[G, K]`` on learned scores → weights on true profiles: A⁻ᵀ w per row."""
    return np.linalg.solve(a.T, weights.T).T


def r_squared(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``[K]`` 1 − SSE/SST per column."""
    sse = np.sum((true - pred) ** 2, axis=0)
    sst = np.sum((true - true.mean(axis=0)) ** 2, axis=0)
    return 1.0 - sse / np.maximum(sst, 1e-12)


def per_group_correlation(learned: np.ndarray, planted: np.ndarray, kind=spearmanr) -> np.ndarray:
    """``[G]`` rank (or linear) correlation over the K values, group by group."""
    return np.array([kind(x, y).statistic for x, y in zip(learned, planted)])


# ---------------------------------------------------------------------------- config
def deep_merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in changes.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_study(path: str | Path, quick: bool) -> dict:
    study = yaml.safe_load(Path(path).read_text())
    quick_changes = study.pop("quick", {})
    return deep_merge(study, quick_changes) if quick else study


def train_config(study: dict, head: str, run_dir: Path, table: Path | None, seed: int, text: bool,
                 value_names: tuple[str, ...] = ()) -> TrainConfig:
    """The TrainConfig of one model. ``value_names`` name the values head's scores: only when
    value labels train them (without labels, score k is a learned direction, not value k)."""
    data = deep_merge(study["train"], study["text"]) if text else copy.deepcopy(study["train"])
    data["model"]["head"]["type"] = head
    data["model"]["head"]["value_names"] = list(value_names)
    data["model"]["backbone"]["path"] = "" if text else str(table)
    data["train"]["seed"] = seed
    data["run_dir"] = str(run_dir)
    return from_dict(TrainConfig, data)


# ---------------------------------------------------------------------------- one seed
def side_rows(result, rows: np.ndarray, limit: int, rng) -> tuple[list, list, np.ndarray]:
    """(prompts, responses, true profiles [2n, K]) of both sides of up to ``limit`` rows."""
    rows = np.sort(rng.choice(rows, min(limit, len(rows)), replace=False))
    data = result.data.select(rows)
    prompts = list(data["prompt"]) * 2
    responses = list(data["chosen"]) + list(data["rejected"])
    truth = np.concatenate([result.truth.profile("chosen")[rows], result.truth.profile("rejected")[rows]])
    return prompts, responses, truth.astype(np.float64)


def values_metrics(model, result, train_rows, test_rows, limit, seed) -> dict:
    """Alignment, score accuracy and weight recovery of one trained values model."""
    rng = np.random.default_rng(seed)
    truth = result.truth
    head = model.net.head
    ids = model.schema.group_ids()
    order = [list(truth.group_labels).index(label) for label in model.group_labels]
    planted = truth.group_value_weights[order]  # [G, K] in the model's group order
    learned = np.asarray(head.value_weights(jnp.asarray(ids)), np.float64)
    fit_p, fit_r, fit_true = side_rows(result, train_rows, limit, rng)
    a, c = fit_alignment(model.value_scores(fit_p, fit_r).astype(np.float64), fit_true)
    test_p, test_r, test_true = side_rows(result, test_rows, limit, rng)
    test_scores = model.value_scores(test_p, test_r).astype(np.float64)
    aligned = align_weights(learned, a)
    target = truth.scale * planted
    return {
        "groups": list(model.group_labels),
        "planted": planted.tolist(),
        "learned": learned.tolist(),
        "aligned": aligned.tolist(),
        "direct_spearman": per_group_correlation(learned, planted).tolist(),
        "aligned_spearman": per_group_correlation(aligned, planted).tolist(),
        "aligned_pearson": per_group_correlation(aligned, planted, pearsonr).tolist(),
        # least-squares slope of recovered on planted reward weights (scale·w_c): < 1 is the
        # attenuation of population preferences by within-group spread
        "slope_raw": float(np.sum(learned * target) / np.sum(target**2)),
        "slope_aligned": float(np.sum(aligned * target) / np.sum(target**2)),
        "alignment_r2": r_squared(test_scores @ a.T + c, test_true).tolist(),
        "score_r2": r_squared(test_scores, test_true).tolist(),
        "score_corr": [float(pearsonr(test_scores[:, k], test_true[:, k]).statistic) for k in range(a.shape[0])],
    }


def run_seed(study: dict, seed: int, out: Path, text: bool = False, table_png: Path | None = None) -> dict:
    """Simulates one society, trains the models on it and measures them. With ``table_png``,
    also bootstraps the labels-given model's weight table (``study["bootstrap"]`` resamples)
    and draws it there."""
    config = DEFAULT_SOCIETY.replace(**study["society"], seed=study["society_seed"] + seed)
    result = generate(config)
    assignment = split_assignment(result.data, "item", 0.0, study["test_fraction"], seed)
    train_rows, test_rows = np.flatnonzero(assignment == TRAIN), np.flatnonzero(assignment == TEST)
    train, test = result.data.select(train_rows), result.data.select(test_rows)
    unlabelled = [d.remove_columns(["chosen_values", "rejected_values"]) for d in (train, test)]
    table = None if text else oracle_table(result, out / f"seed{seed}" / "oracle.npz")
    truth = result.truth
    p_own = truth.p_group[test_rows, truth.row_group[test_rows]]
    record = {"seed": seed, "bayes_accuracy": float(np.mean(np.maximum(p_own, 1 - p_own))), "accuracy": {},
              "value_names": list(truth.value_names), "scale": truth.scale}
    heads = {"values_nolabels": ("values", unlabelled), "values_labels": ("values", (train, test))}
    if not text:
        heads["conditioned"] = ("conditioned", unlabelled)
    for name, (head, (tr, te)) in heads.items():
        run_dir = out / f"seed{seed}" / f"{'text_' if text else ''}{name}"
        names = truth.value_names if name == "values_labels" else ()
        model, res = fit(train_config(study, head, run_dir, table, seed, text, names), tr, te)
        record["accuracy"][name] = res.eval_metrics[-1]["groups"][0]["accuracy"]
        if head == "values":
            record[name] = values_metrics(model, result, train_rows, test_rows, study["alignment_rows"], seed)
        if table_png is not None and name == "values_labels":
            weights = group_value_weights(run_dir, bootstrap=study["bootstrap"], data=tr, seed=seed)
            plot_group_value_weights(weights, table_png, f"value weights per group, labels given (seed {seed}), "
                                     f"{weights.level:.0%} intervals, B={weights.bootstrap}")
            record["weight_table"] = weights.to_dict()
        print(f"seed {seed} {'text ' if text else ''}{name}: held-out accuracy {record['accuracy'][name]:.4f}", flush=True)
    return record


# ---------------------------------------------------------------------------- report
def mean_sd(values) -> str:
    """``mean ± sd`` over seeds (sd with ddof=1; the mean alone for one seed)."""
    values = np.asarray(values, np.float64)
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def summarize(records: list[dict], text_record: dict | None) -> str:
    """The markdown tables of the README section."""
    lines = [f"Seeds: {len(records)} (mean ± sd over seeds; each seed a new society and run).", "",
             "| model | held-out accuracy |", "|---|---|"]
    lines.append(f"| Bayes (group-aware truth) | {mean_sd([r['bayes_accuracy'] for r in records])} |")
    for name in MODELS:
        lines.append(f"| {name} | {mean_sd([r['accuracy'][name] for r in records])} |")
    diff = [r["accuracy"]["values_nolabels"] - r["accuracy"]["conditioned"] for r in records]
    lines.append(f"| values_nolabels − conditioned (paired) | {mean_sd(diff)} |")
    groups = records[0]["values_nolabels"]["groups"]
    lines += ["", "Weight recovery per group (Spearman over the K values; labels withheld: after "
              "alignment / raw; labels given: raw):", "",
              "| group | withheld, aligned | withheld, raw | given, raw |", "|---|---|---|---|"]
    for g, label in enumerate(groups):
        cells = [mean_sd([r[m][key][g] for r in records]) for m, key in
                 (("values_nolabels", "aligned_spearman"), ("values_nolabels", "direct_spearman"),
                  ("values_labels", "direct_spearman"))]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| mean over groups | " + " | ".join(
        mean_sd([np.mean(r[m][key]) for r in records]) for m, key in
        (("values_nolabels", "aligned_spearman"), ("values_nolabels", "direct_spearman"),
         ("values_labels", "direct_spearman"))) + " |")
    slopes = [(r["values_nolabels"]["slope_aligned"], r["values_labels"]["slope_raw"]) for r in records]
    lines += ["", f"Scale of the recovered weights (least-squares slope on the planted reward weights "
              f"scale·w_c): withheld, aligned {mean_sd([x for x, _ in slopes])}; given {mean_sd([y for _, y in slopes])}."]
    table = records[0].get("weight_table")
    if table:
        lower, upper = np.asarray(table["lower"], float), np.asarray(table["upper"], float)
        lines += ["", f"Bootstrap of the labels-given weight table (seed {records[0]['seed']}, B={table['bootstrap']}, "
                  f"annotators resampled, value scores frozen): mean {table['level']:.0%} interval width "
                  + ", ".join(f"{g.replace('country=', '').replace(',language=', '/')} {w:.3f}"
                              for g, w in zip(table["groups"], np.nanmean(upper - lower, axis=1)))
                  + f"; largest |model − full-data refit| {table['refit_offset']:.3f}."]
    lines += ["", "Value scores on held-out responses (R² against the true profile; labels withheld: "
              "after the linear alignment):", "", "| value | withheld, aligned R² | given, R² | given, corr |",
              "|---|---|---|---|"]
    names = records[0]["value_names"]
    for k, name in enumerate(names):
        lines.append(f"| {name} | {mean_sd([r['values_nolabels']['alignment_r2'][k] for r in records])} | "
                     f"{mean_sd([r['values_labels']['score_r2'][k] for r in records])} | "
                     f"{mean_sd([r['values_labels']['score_corr'][k] for r in records])} |")
    if text_record:
        t = text_record
        lines += ["", f"Hashing text backbone (seed {t['seed']}): held-out accuracy withheld "
                  f"{t['accuracy']['values_nolabels']:.3f}, given {t['accuracy']['values_labels']:.3f} "
                  f"(Bayes {t['bayes_accuracy']:.3f}); mean aligned Spearman (withheld) "
                  f"{np.mean(t['values_nolabels']['aligned_spearman']):.3f}, mean alignment R² "
                  f"{np.mean(t['values_nolabels']['alignment_r2']):.3f}; mean raw Spearman (given) "
                  f"{np.mean(t['values_labels']['direct_spearman']):.3f}, mean score R² "
                  f"{np.mean(t['values_labels']['score_r2']):.3f}."]
    return "\n".join(lines) + "\n"


def plot_recovery(record: dict, path: Path) -> Path:
    """Planted vs recovered weights, one panel per group (bars per value), for one seed.

    Recovered weights are in reward units per unit of profile; the planted ones are shown as
    scale·w_c (the simulator's utility per unit of profile) so both are on the same axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nol, lab = record["values_nolabels"], record["values_labels"]
    planted = np.asarray(nol["planted"]) * record["scale"]
    series = (("planted (scale·w_c)", planted, "0.3"),
              ("withheld, aligned A⁻ᵀw", np.asarray(nol["aligned"]), "tab:blue"),
              ("given, raw w", np.asarray(lab["learned"]), "tab:orange"))
    names = record["value_names"]
    cols = 3
    rows = int(np.ceil(len(nol["groups"]) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False, sharey=True)
    x = np.arange(len(names))
    for g, label in enumerate(nol["groups"]):
        ax = axes[g // cols][g % cols]
        for j, (name, w, color) in enumerate(series):
            ax.bar(x + (j - 1) * 0.27, w[g], 0.27, label=name, color=color)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
        ax.set_title(f"{label.replace('country=', '').replace(',language=', '/')}: ρ aligned "
                     f"{nol['aligned_spearman'][g]:.2f}, given {lab['direct_spearman'][g]:.2f}", fontsize=8)
    for ax in axes.flat[len(nol["groups"]):]:
        ax.axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"planted vs recovered value weights per group (seed {record['seed']}; ρ = Spearman)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "experiments/configs/values_study.yaml"))
    parser.add_argument("--out", default=str(ROOT / "experiments/results/values_study"),
                        help="where results.json, summary.md and weights.png go")
    parser.add_argument("--runs", help="where training runs go (default: a temporary directory)")
    parser.add_argument("--quick", action="store_true", help="the small size (one seed, fewer steps)")
    parser.add_argument("--text", action="store_true", help="also train on text with the hashing backbone")
    args = parser.parse_args(argv)
    code, started = provenance(), time.perf_counter()  # before the run: the code behind the figures
    study = load_study(args.config, args.quick)
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(args.runs).absolute() if args.runs else Path(tmp)
        records = [run_seed(study, s, runs, table_png=out / "weight_table.png" if i == 0 else None)
                   for i, s in enumerate(study["seeds"])]
        text_record = run_seed(study, study["seeds"][0], runs, text=True) if args.text else None
    summary = summarize(records, text_record)
    command = shlex.join(["python", "experiments/values_study.py", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, **code, "wall_seconds": round(time.perf_counter() - started, 1),
              "cpu_seconds": round(time.process_time(), 1), "config": study, "records": records, "text": text_record}
    (out / "results.json").write_text(json.dumps(report, indent=1))
    (out / "summary.md").write_text(summary)
    plot_recovery(records[0], out / "weights.png")
    print(summary)
    return report


if __name__ == "__main__":
    main()
