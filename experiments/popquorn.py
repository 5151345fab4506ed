"""Study 5 — real data: POPQUORN offensiveness ratings (Pei & Jurgens 2023).

262 US annotators (a sample representative by sex, age and race) rated the offensiveness of
Reddit comments from 1 (not offensive) to 5, each ~50 comments, each comment by ~9 annotators;
their gender, race, age, occupation and education are released. Three analyses:

1. Who rates higher (the paper's question), on the ratings themselves: each annotator's
   *offset* = mean over their ratings of (rating − the comment's mean rating), i.e. how much
   more offensive than the comment's other raters they find comments. Per attribute: the mean
   offset per value, a Kruskal–Wallis test across values (annotators are the units), and a
   joint least-squares model of the offset on all attributes with a partial F-test per
   attribute (each attribute's effect holding the others fixed).
2. Disagreement on comparisons: the ratings become pairs of comments by the same annotator
   (``pluralrm.data.popquorn``, pairs across items, capped per annotator and coordinated so
   that pairs are shared), and ``summarize`` gives, per attribute, the mean spread of the
   groups' preference rates over pairs voted on by two or more groups. Few votes per group
   inflate that spread, so it is compared with the same statistic after shuffling the
   attribute across annotators (a permutation null): the excess is the disagreement that
   sampling noise does not explain.
3. Reward models: pooled vs conditioned on the attributes, trained on 80% of the annotators,
   scored on the pairs of the held-out 20% (new people, known demographics): held-out accuracy
   overall and per attribute value, intervals over seeds (each seed a new annotator split).

The data state no licence and are not bundled: pass the CSV with ``--data`` (see README).

    python experiments/popquorn.py --data PATH/raw_data.csv [--seeds 0,1,2] [--quick]
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from experiments import common  # noqa: E402

HOW_TO_GET = ("the POPQUORN offensiveness ratings are not bundled (no licence is stated): clone "
              "https://github.com/Jiaxin-Pei/Potato-Prolific-Dataset and pass "
              "--data <clone>/dataset/offensiveness/raw_data.csv")


@dataclass(frozen=True)
class PopquornConfig(common.StudyConfig):
    """Study 5.

    Attributes:
      data: path of ``dataset/offensiveness/raw_data.csv`` (or pass ``--data``).
      groups: annotator attributes the conditioned model and the analyses use.
      heads: heads compared (pooled first: the baseline).
      max_pairs_per_annotator: cap on comparisons per annotator (coordinated sample).
      permutations: shuffles of each attribute for the disagreement null.
      min_annotators: values with fewer annotators are left out of the tests and tables.
    """

    data: str = ""
    groups: tuple[str, ...] = ("gender", "race", "age", "education")
    heads: tuple[str, ...] = ("pooled", "conditioned")
    max_pairs_per_annotator: int = 60
    permutations: int = 50
    min_annotators: int = 5


def annotator_offsets(path: str, groups) -> dict:
    """Each annotator's mean (rating − comment mean rating) and their attributes.

    Returns:
      ``{"offset": [A], "ratings": [A], <attribute>: [A] str}`` for the A annotators.
    """
    from pluralrm.data.convert import validated_ratings
    from pluralrm.data.readers import read_source

    r = validated_ratings(read_source(path), item="instance_id", response="text", annotator="user_id",
                          score="offensiveness", groups=groups)
    item, ann, score = r["item_code"], r["annotator_code"], r["score"]
    item_mean = np.bincount(item, weights=score) / np.bincount(item)
    residual = score - item_mean[item]
    count = np.bincount(ann)
    first = np.unique(ann, return_index=True)[1]
    out = {"offset": np.bincount(ann, weights=residual) / count, "ratings": count}
    out.update({g: r[f"group:{g}"][first] for g in groups})
    return out


def offset_tests(offsets: dict, groups, min_annotators: int) -> dict:
    """Per attribute: per-value mean offset (t-interval over annotators), Kruskal–Wallis
    p-value across values, and the joint model's coefficient per value (vs the most common
    value) and partial-F p-value. Values with fewer than ``min_annotators`` are left out."""
    from scipy import stats

    y = offsets["offset"]
    keep = np.ones(len(y), bool)
    for g in groups:
        values, counts = np.unique(offsets[g], return_counts=True)
        keep &= np.isin(offsets[g], values[counts >= min_annotators])
    y = y[keep]
    design, names, blocks = [np.ones(len(y))], ["intercept"], {}
    reference = {}
    for g in groups:
        col = offsets[g][keep]
        values, counts = np.unique(col, return_counts=True)
        reference[g] = values[np.argmax(counts)]
        start = len(names)
        for v in values:
            if v != reference[g]:
                design.append((col == v).astype(float))
                names.append(f"{g}={v}")
        blocks[g] = list(range(start, len(names)))
    X = np.stack(design, axis=1)
    beta, rss_full = _least_squares(X, y)
    dof = len(y) - X.shape[1]
    sigma2 = rss_full / dof if dof > 0 else float("nan")  # no residual dof: no intervals or tests
    cov = sigma2 * np.linalg.pinv(X.T @ X)
    t_crit = stats.t.ppf(0.975, dof) if dof > 0 else float("nan")
    out = {}
    for g in groups:
        col = offsets[g][keep]
        values = sorted(np.unique(col), key=lambda v: -np.sum(col == v))
        reduced = np.delete(X, blocks[g], axis=1)
        _, rss_reduced = _least_squares(reduced, y)
        q = len(blocks[g])
        f = ((rss_reduced - rss_full) / q) / sigma2 if q else float("nan")
        per_value = {}
        for v in values:
            sel = y[col == v]
            j = names.index(f"{g}={v}") if f"{g}={v}" in names else None
            per_value[v] = {
                "annotators": int(sel.size),
                "mean_offset": common.interval(sel.tolist()),
                "joint_coefficient": None if j is None else {
                    "mean": float(beta[j]), "half": float(t_crit * np.sqrt(cov[j, j])), "n": int(sel.size)},
            }
        out[g] = {
            "reference": str(reference[g]),
            "kruskal_p": _kruskal_p([y[col == v] for v in values]),
            "joint_f_p": float(stats.f.sf(f, q, dof)) if q and dof > 0 else float("nan"),
            "values": per_value,
        }
    return {"annotators": int(keep.sum()), "attributes": out}


def _kruskal_p(samples) -> float:
    """Kruskal–Wallis p-value across samples (NaN with fewer than two, or all values equal)."""
    from scipy import stats

    if len(samples) < 2:
        return float("nan")
    try:
        return float(stats.kruskal(*samples).pvalue)
    except ValueError:
        return float("nan")


def _least_squares(X, y):

    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    resid = y - X @ beta
    return beta, float(resid @ resid)


def disagreement_vs_null(pairs, groups, permutations: int, seed: int) -> dict:
    """Per attribute: the observed mean group spread over shared pairs (``summarize``'s
    figure) and its mean under shuffling the attribute across annotators."""
    from pluralrm.data.convert import preference_rates
    from pluralrm.data.pairs import canonicalize_dataset
    from pluralrm.data.summary import group_spread

    canon = canonicalize_dataset(pairs)
    annotators = np.asarray(pairs["annotator_id"], dtype=object)
    names, row_annotator = np.unique(annotators, return_inverse=True)
    rng = np.random.default_rng(seed)
    out = {}
    for g in groups:
        column = np.asarray(pairs[g], dtype=object)
        units, observed = group_spread(preference_rates(pairs, by=[g], pairs=canon), g)
        value_of = np.empty(len(names), dtype=object)
        value_of[row_annotator] = column
        null = []
        for _ in range(permutations):
            shuffled = rng.permutation(value_of)[row_annotator]
            permuted = pairs.remove_columns(g).add_column(g, shuffled.tolist())
            null.append(group_spread(preference_rates(permuted, by=[g], pairs=canon), g)[1])
        null = np.asarray(null)
        out[g] = {"units": units, "observed": observed, "null_mean": float(null.mean()),
                  "excess": observed - float(null.mean()),
                  "p_value": float((1 + np.sum(null >= observed)) / (permutations + 1))}
    return out


def run_seed(study: PopquornConfig, pairs, seed: int) -> dict:
    """Pooled vs conditioned on one annotator split; held-out accuracy overall and per value."""
    from pluralrm.train.evaluate import pair_metrics

    train_rows, test_rows = common.item_split(pairs, study.test_size, seed, by="annotator")
    train, test = pairs.select(train_rows), pairs.select(test_rows)
    label = np.asarray(test["label"])
    out = {"train_rows": len(train_rows), "test_rows": len(test_rows), "heads": {}}
    for head in study.heads:
        model, seconds = common.fit_model(common.train_config(study, seed, head), train)
        prob = model.predict(test)
        accuracy, nll = pair_metrics(prob, label)
        per_value = {}
        for g in study.groups:
            col = np.asarray(test[g], dtype=object)
            for v in np.unique(col):
                m = col == v
                per_value[f"{g}={v}"] = {"accuracy": pair_metrics(prob[m], label[m])[0], "rows": int(m.sum()),
                                         "annotators": len(set(np.asarray(test["annotator_id"])[m]))}
        out["heads"][head] = {"train_seconds": seconds, "accuracy": accuracy, "nll": nll, "groups": per_value}
        print(f"seed {seed} {head:12s} held-out accuracy {accuracy:.3f} nll {nll:.3f} ({seconds:.0f} s)", flush=True)
    return out


def summarize(study: PopquornConfig, analysis: dict, per_seed: list[dict]) -> tuple[dict, dict[str, str]]:
    heads = study.heads
    base, other = heads[0], heads[-1]
    keys = ["all", *sorted({k for s in per_seed for k in s["heads"][base]["groups"]})]

    def acc(s, head, key):
        return s["heads"][head]["accuracy"] if key == "all" else s["heads"][head]["groups"].get(key, {}).get("accuracy")

    summary = {}
    rows = []
    for key in keys:
        ann = [s["heads"][base]["groups"][key]["annotators"] for s in per_seed if key in s["heads"][base]["groups"]]
        if key != "all" and (not ann or max(ann) < 2):
            continue
        entry = {h: common.interval([acc(s, h, key) for s in per_seed if acc(s, h, key) is not None]) for h in heads}
        diffs = [acc(s, other, key) - acc(s, base, key) for s in per_seed if acc(s, base, key) is not None
                 and acc(s, other, key) is not None]
        entry["difference"] = common.interval(diffs)
        summary[key] = entry
        label = "all held-out pairs" if key == "all" else key
        rows.append([label, f"{sum(ann) / max(len(ann), 1):.0f}" if ann else "", *(common.fmt(entry[h]) for h in heads),
                     common.fmt(entry["difference"])])
    tables = {"models": common.markdown_table(["held-out annotators' pairs", "test annotators", *heads,
                                               f"Δ ({other} − {base})"], rows)}
    effect_rows = []
    for g, res in analysis["offsets"]["attributes"].items():
        for v, info in res["values"].items():
            coef = info["joint_coefficient"]
            effect_rows.append([g, v, info["annotators"], common.fmt(info["mean_offset"]),
                                "reference" if coef is None else common.fmt(coef),
                                f"{res['kruskal_p']:.3g}", f"{res['joint_f_p']:.3g}"])
    tables["offsets"] = common.markdown_table(
        ["attribute", "value", "annotators", "mean offset", "joint-model coefficient", "Kruskal–Wallis p",
         "joint partial-F p"], effect_rows)
    tables["disagreement"] = common.markdown_table(
        ["attribute", "shared pairs", "mean spread", "permutation null", "excess", "p"],
        [[g, d["units"], f"{d['observed']:.3f}", f"{d['null_mean']:.3f}", f"{d['excess']:+.3f}", f"{d['p_value']:.3g}"]
         for g, d in analysis["disagreement"].items()])
    return summary, tables


def main(argv=None) -> int:
    from pluralrm.errors import ConfigError

    args = common.parse_args("popquorn", __doc__, argv, extra=lambda p: p.add_argument(
        "--data", help="path of POPQUORN's dataset/offensiveness/raw_data.csv"))
    path = args.data
    if path:  # the recorded command names no local path
        args.argv = [a if a != path else "PATH/raw_data.csv" for a in args.argv]

    def run(study):
        from pluralrm.data import popquorn
        from pluralrm.data import summarize as summarize_data

        source = path or study.data
        if not source or not Path(source).is_file():
            raise ConfigError(HOW_TO_GET + (f" (no file at {source})" if source else ""))
        pairs = popquorn(source, groups=study.groups, max_pairs_per_annotator=study.max_pairs_per_annotator)
        print(summarize_data(pairs).to_text())
        analysis = {
            "pairs": len(pairs),
            "offsets": offset_tests(annotator_offsets(source, study.groups), study.groups, study.min_annotators),
            "disagreement": disagreement_vs_null(pairs, study.groups, study.permutations, seed=0),
        }
        return {"analysis": analysis, "per_seed": [run_seed(study, pairs, s) for s in study.seeds]}

    return common.drive(args, PopquornConfig, run,
                        lambda study, results, out: summarize(study, results["analysis"], results["per_seed"]))


if __name__ == "__main__":
    raise SystemExit(main())
