"""``analyze``: every calibration measure of a ComparisonDataset (and a model's predictions on
it), as one :class:`CalibrationReport` of tables.

Data-level sections need no model: agreement within and between groups (alpha, κ_x, GAI with
permutation p-values), between-group divergence with permutation tests of every pair of
groups (Holm and Benjamini–Hochberg adjusted), and the most contested units. With predictions
the report adds per-group calibration (accuracy, NLL, Brier, ECE with bootstrap intervals;
reliability diagrams), fidelity to disagreement (retention with intervals, correlations), and
the model's representativeness of each group.

The bootstrap resamples ``unit="annotator"`` (all votes of an annotator together) or
``unit="item"`` (all votes on a comparison unit together). The ``weight`` column is a training
loss weight and is not used here.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from pluralrm.calibration import agreement as agr
from pluralrm.calibration import divergence as div
from pluralrm.calibration import fidelity as fid
from pluralrm.calibration import metrics as met
from pluralrm.calibration.stats import benjamini_hochberg, bootstrap_sums, cluster_sums, holm, percentile_interval
from pluralrm.calibration.tables import Matrix, Table, json_safe
from pluralrm.calibration.votes import GroupVotes, column, group_rates, group_votes
from pluralrm.data.schema import group_attributes
from pluralrm.errors import ConfigError, DataError

UNITS: tuple[str, ...] = ("annotator", "item")
MIN_VOTES_CHOICES: tuple[int, ...] = (3, 2, 1)  # tried in this order when min_votes is None (auto)
MIN_SHARED_UNITS = 20  # units two groups must share for their divergence to count as measured


@dataclass(frozen=True)
class CalibrationReport:
    """The result of :func:`analyze`. Model sections are None without predictions;
    ``alignment`` needs ``group_predictions``.

    Attributes:
      settings: what was analysed and how (by, sizes, groups, level, bootstrap, notes).
      groups: per group: rows, annotators, units, alpha (IRR), GAI and its p-values.
      agreement: G × G alpha within (diagonal) and κ_x between groups; agreement_normalized:
        κ_x / √(IRR_a IRR_b).
      divergence, divergence_units: G × G mean Jensen–Shannon divergence between groups'
        preference rates over shared units, and how many units.
      preference_gap: G × G root of the noise-corrected mean squared gap in preference rate
        (how far apart two groups' P(first ≻ second) typically are, vote noise removed).
      group_tests: per pair of groups: noise-corrected mean squared preference gap and its
        permutation p-value, Holm and BH adjusted.
      contested: the units groups disagree about most, with texts.
      calibration: per group and overall: accuracy, NLL, Brier, ECE (with intervals), adaptive
        ECE, and the NLL-optimal temperature on these data (a diagnostic).
      reliability: reliability-diagram bins per group and overall (top-label, equal width).
      fidelity: disagreement retention per group and overall with intervals, and correlations
        of predicted and empirical deviations from the other groups.
      fidelity_pairs: per pair of groups, correlation of predicted and empirical differences.
      representativeness: per group, OpinionQA representativeness and GlobalOpinionQA
        similarity of the model conditioned on that group.
      alignment: G × G representativeness of the model conditioned on group a (row) to group b.
    """

    settings: Mapping[str, Any]
    groups: Table
    agreement: Matrix
    agreement_normalized: Matrix
    divergence: Matrix
    divergence_units: Matrix
    preference_gap: Matrix
    group_tests: Table
    contested: Table
    calibration: Table | None = None
    reliability: Table | None = None
    fidelity: Table | None = None
    fidelity_pairs: Table | None = None
    representativeness: Table | None = None
    alignment: Matrix | None = None

    def sections(self) -> dict[str, Table | Matrix]:
        """The tables and matrices present, by name, in report order."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "settings" and getattr(self, f.name) is not None}

    def tables(self) -> dict[str, Any]:
        """Every section as a pandas DataFrame."""
        return {name: section.to_pandas() for name, section in self.sections().items()}

    def to_dict(self) -> dict[str, Any]:
        return {"settings": json_safe(dict(self.settings)),
                **{name: section.to_dict() for name, section in self.sections().items()}}

    def to_json(self, indent: int | None = 1) -> str:
        """Every number of the report as JSON (NaN and infinities as null)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)


def analyze(data, predictions: np.ndarray | None = None, by: str | Sequence[str] | None = None,
            group_predictions: np.ndarray | None = None, group_labels: Sequence[str] | None = None,
            bootstrap: int = 1000, unit: str = "annotator", seed: int = 0, *, level: str = "interval",
            min_votes: int | None = None, num_bins: int = 10, permutations: int = 1000, top_contested: int = 20,
            confidence: float = 0.95, interval: str = "bca", unseen_groups: Sequence[str] = (),
            progress: Callable[[str], None] | None = None) -> CalibrationReport:
    """Measures disagreement across annotator groups in the data and in a model.

    Args:
      data: a ComparisonDataset.
      predictions: ``[N]`` the model's P(chosen ≻ rejected) per row under the row's own group.
      by: group attribute(s); default every group attribute of ``data``.
      group_predictions: ``[N, G']`` the model's P(chosen ≻ rejected) per row under every group.
      group_labels: the G' labels of ``group_predictions``' columns (``"country=NG"``).
      bootstrap: replicates for confidence intervals (0: none).
      unit: what the bootstrap resamples: ``"annotator"`` or ``"item"`` (comparison units).
      seed: for resampling and permutations.
      level: Krippendorff level of measurement for agreement (votes are 0, ½, 1).
      min_votes: votes a group needs on a unit for divergence, contested units and retention
        (retention needs at least 2). ``None`` (default): the largest of 3, 2, 1 with which at
        least half of the pairs of groups share ``MIN_SHARED_UNITS`` units (see
        :func:`choose_min_votes`); ``settings["min_votes"]`` says what was used and why.
      num_bins: reliability-diagram bins.
      permutations: permutations per test (0: no tests).
      top_contested: rows of the contested-units table.
      confidence: interval level.
      interval: ``"percentile"`` or ``"bca"``.
      unseen_groups: labels of groups the model never saw (its predictions for their rows are the
        documented fallback, the shared reward); their rows get their own calibration row
        ``unseen groups (shared reward)`` and a note.
      progress: called with the name of each stage as it starts (the CLI shows it).

    Returns:
      CalibrationReport.
    """
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    agr.check_level(level)
    by = group_attributes(data) if by is None else ([by] if isinstance(by, str) else list(by))
    votes = group_votes(data, by)
    if votes.num_groups == 0:
        raise DataError(f"no row has a known value of {by}; nothing to compare", field=by[0] if by else "by")
    predictions, group_predictions = _check_predictions(votes, predictions, group_predictions, group_labels)
    rates = group_rates(votes)
    notes: list[str] = []
    unavailable: dict[str, str] = {}
    if min_votes is None:
        min_votes, why = choose_min_votes(rates)
        notes.append(why)
    elif min_votes < 1:
        raise ConfigError(f"min_votes must be >= 1, got {min_votes}")
    settings = {
        "by": list(votes.by), "rows": votes.num_rows, "units": votes.num_units,
        "annotators": votes.num_annotators, "groups": list(votes.group_labels),
        "rows_without_group": int((votes.group < 0).sum()), "level": level, "min_votes": min_votes,
        "bootstrap": bootstrap, "bootstrap_unit": unit, "interval": interval, "confidence": confidence,
        "permutations": permutations, "seed": seed,
        "alpha": agr.alpha_from_votes(votes.unit, votes.vote, level),
    }
    stage = progress or (lambda name: None)
    stage("agreement within and between groups")
    report = dict(_agreement_sections(votes, level, permutations, seed, notes))
    stage("divergence between groups")
    report.update(_divergence_sections(data, votes, rates, min_votes, permutations, seed, top_contested))
    if not np.any(report["divergence_units"].values[np.triu_indices(votes.num_groups, k=1)]):
        unavailable["divergence"] = (
            f"no unit has at least {min_votes} vote(s) from two different groups, so no pair of groups can be "
            "compared: the data needs comparisons of the same prompt and pair (item_id) judged by several "
            "groups; lower min_votes (--min-votes), or compare by a coarser attribute (--by)")
    unseen = [g for g in unseen_groups if g in votes.group_labels]
    if unseen:
        rows = int(np.isin(votes.group, [votes.group_labels.index(g) for g in unseen]).sum())
        notes.append(f"groups the model never saw: {', '.join(unseen)} ({rows:,} rows): predicted with the shared "
                     "(population) reward, the documented fallback for unseen group values; the calibration table "
                     "lists them together as 'unseen groups (shared reward)'")
    settings["unseen_groups"] = unseen
    if predictions is not None:
        options = dict(bootstrap=bootstrap, unit=unit, seed=seed, confidence=confidence, interval=interval)
        stage("calibration per group")
        report.update(_calibration_sections(votes, data, predictions, num_bins, options, unseen))
        model = fid.unit_group_predictions(votes, predictions, group_predictions)
        own = fid.unit_group_predictions(votes, predictions)
        stage("disagreement retention and representativeness")
        report.update(_fidelity_sections(votes, rates, model, min_votes, options))
        report.update(_representativeness_sections(votes, rates, own, model if group_predictions is not None else None))
        fidelity_units = report["fidelity"].columns["units"]
        if not np.any(np.nan_to_num(fidelity_units) > 0):
            unavailable["fidelity"] = (
                f"disagreement retention needs units where a group and the other groups each have at least "
                f"{max(min_votes, 2)} votes (two for a variance), and this data has none: give each item more "
                "votes per group (more annotators per item), or compare by a coarser attribute (--by)")
    settings["unavailable"] = unavailable
    notes.extend(f"{section}: not computed: {why}" for section, why in unavailable.items())
    settings["notes"] = notes
    return CalibrationReport(settings=settings, **report)


def choose_min_votes(rates) -> tuple[int, str]:
    """The ``min_votes`` the data supports and why: the largest of :data:`MIN_VOTES_CHOICES`
    with which at least half of the pairs of groups share :data:`MIN_SHARED_UNITS` units (more
    votes per cell mean less noisy rates; too few shared units leave the divergence empty, as
    with 3,000 comparisons of five votes spread over six groups)."""
    g = rates.count.shape[1]
    pairs = max(g * (g - 1) // 2, 1)
    counts = {}
    for m in MIN_VOTES_CHOICES:
        _, units = div.pairwise_divergence(rates, "js", m)
        shared = units[np.triu_indices(g, k=1)]
        counts[m] = int((shared >= MIN_SHARED_UNITS).sum())
        if counts[m] * 2 >= pairs:
            tried = "".join(f"; with {k}, {counts[k]} of {pairs} pairs share {MIN_SHARED_UNITS}+ units"
                            for k in MIN_VOTES_CHOICES if k > m)
            return m, f"min_votes {m} (chosen for this data{tried}; set min_votes (--min-votes) to choose)"
    m = MIN_VOTES_CHOICES[-1]
    return m, (f"min_votes {m} (chosen for this data: even then only {counts[m]} of {pairs} pairs of groups share "
               f"{MIN_SHARED_UNITS}+ units; set min_votes (--min-votes) to choose)")


def _check_predictions(votes: GroupVotes, predictions, group_predictions, group_labels):
    """Validated ``predictions [N]`` and ``group_predictions [N, G]`` in ``votes``' group order."""
    n = votes.num_rows
    if group_predictions is not None:
        gp = np.asarray(group_predictions, dtype=np.float64)
        if group_labels is None or gp.ndim != 2 or gp.shape != (n, len(group_labels)):
            raise DataError(f"group_predictions must be [rows, len(group_labels)] = [{n}, "
                            f"{None if group_labels is None else len(group_labels)}], got shape {gp.shape}",
                            field="group_predictions")
        labels = list(group_labels)
        missing = [g for g in votes.group_labels if g not in labels]
        if missing:
            raise DataError(f"group_predictions has no column for groups {missing} (its group_labels: {labels})",
                            field="group_labels")
        gp = gp[:, [labels.index(g) for g in votes.group_labels]]
        _check_range(gp.reshape(-1), "group_predictions", n_columns=gp.shape[1])
        if predictions is None:
            own = np.take_along_axis(gp, np.maximum(votes.group, 0)[:, None], 1)[:, 0]
            predictions = np.where(votes.group >= 0, own, np.nan)
        group_predictions = gp
    if predictions is not None:
        predictions = np.asarray(predictions, dtype=np.float64)
        if predictions.shape != (n,):
            raise DataError(f"predictions must be [rows] = [{n}], got shape {predictions.shape}", field="predictions")
        _check_range(np.where(np.isnan(predictions) & (votes.group < 0), 0.5, predictions), "predictions")
    return predictions, group_predictions


def _check_range(values: np.ndarray, name: str, n_columns: int = 1) -> None:
    bad = ~((values >= 0.0) & (values <= 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{name} must be probabilities in [0, 1]", row=i // n_columns + 1, field=name,
                        value=float(values[i]))


# ------------------------------------------------------------------ data-level sections
def _agreement_sections(votes: GroupVotes, level: str, permutations: int, seed: int, notes: list[str]):
    labels = list(votes.group_labels)
    if np.unique(votes.vote[votes.group >= 0]).size > agr.MAX_VALUES:
        votes = replace(votes, vote=np.round(votes.vote * 20) / 20)
        notes.append("agreement: soft labels rounded to multiples of 0.05")
    counts = agr.group_value_counts(votes)
    matrix = agr.agreement_matrix(counts.counts, counts.values, level)
    if permutations > 0:
        test = agr.gai_permutation_test(votes, level, permutations, seed)
        gai, p = test.observed, test.pvalue
    else:
        gai, p = agr.group_association_index(counts.counts, counts.values, level), np.full(len(labels), np.nan)
    keep = votes.group >= 0
    per_group = lambda x: np.array([np.unique(x[keep & (votes.group == g)]).size for g in range(len(labels))])  # noqa: E731
    groups = Table("groups", {
        "group": np.array(labels, dtype=object),
        "rows": np.bincount(votes.group[keep], minlength=len(labels)),
        "annotators": per_group(votes.annotator),
        "units": per_group(votes.unit),
        "alpha": np.diag(matrix),
        "gai": gai, "gai_p": p, "gai_p_holm": holm(p), "gai_p_bh": benjamini_hochberg(p),
    }, f"Krippendorff's alpha ({level}) within each group; GAI = in-group alpha / cross-replication "
       "kappa with all other groups (GRASP, Prabhakaran et al. 2024), p from a permutation test "
       "of raters across groups (one-sided: GAI above chance).")
    yield "groups", groups
    yield "agreement", Matrix("agreement", labels, labels, matrix,
                              f"Diagonal: alpha ({level}) within the group; off-diagonal: cross-replication "
                              "reliability kappa_x between the groups (Wong et al. 2021) on units both rated.")
    yield "agreement_normalized", Matrix("agreement_normalized", labels, labels, agr.normalized_xrr(matrix),
                                         "kappa_x / sqrt(alpha_a alpha_b): cross-group agreement relative to "
                                         "what the groups' own reliabilities allow.")


def _divergence_sections(data, votes: GroupVotes, rates, min_votes: int, permutations: int, seed: int,
                         top: int):
    labels = list(votes.group_labels)
    divergence, units = div.pairwise_divergence(rates, "js", min_votes)
    yield "divergence", Matrix("divergence", labels, labels, divergence,
                               f"Mean Jensen-Shannon divergence (bits) between groups' preference rates over "
                               f"units where both have at least {min_votes} votes (raw: includes vote noise).")
    yield "divergence_units", Matrix("divergence_units", labels, labels, units,
                                     f"Units with at least {min_votes} votes from both groups (diagonal: from the group).")
    ia, ib = np.triu_indices(len(labels), k=1)
    gap = np.full(ia.size, np.nan)
    p = np.full(ia.size, np.nan)
    shared = np.zeros(ia.size)
    for k, (a, b) in enumerate(zip(ia, ib)):
        value, eligible = div.noise_corrected_gap(rates, a, b, min_votes)
        shared[k] = eligible.sum()
        gap[k] = value.sum() / shared[k] if shared[k] else np.nan
        if permutations > 0 and shared[k]:
            p[k] = div.group_difference_test(votes, a, b, permutations, seed + k, min_votes).pvalue
    matrix = np.zeros((len(labels), len(labels)))
    matrix[ia, ib] = matrix[ib, ia] = np.sqrt(np.maximum(gap, 0.0))
    yield "preference_gap", Matrix("preference_gap", labels, labels, matrix,
                                   "Root mean squared difference in preference rate between the groups over "
                                   "shared units, with the binomial vote noise subtracted (0 = no difference).")
    yield "group_tests", Table("group_tests", {
        "group_a": np.array([labels[a] for a in ia], dtype=object),
        "group_b": np.array([labels[b] for b in ib], dtype=object),
        "units": shared, "gap2": gap, "p": p, "p_holm": holm(p), "p_bh": benjamini_hochberg(p),
    }, "gap2: mean over shared units of the noise-corrected squared difference in preference rate "
       "(unbiased for the true squared gap; 0 if the groups agree); p: permutation test reassigning "
       "raters between the two groups.")
    yield "contested", div.contested_units(data, votes, rates, min_votes, top)


# ------------------------------------------------------------------ model-level sections
def _calibration_sections(votes: GroupVotes, data, predictions: np.ndarray, num_bins: int, options,
                          unseen: Sequence[str] = ()):
    labels = np.asarray(column(data, "label"), dtype=np.float64)
    has = ~np.isnan(predictions)
    p, y = met.check_probabilities(predictions[has], labels[has])
    group = votes.group[has]
    cluster = (votes.annotator if options["unit"] == "annotator" else votes.unit)[has]
    names = list(votes.group_labels) + ["all"]
    masks = [group == g for g in range(votes.num_groups)] + [np.ones(p.shape[0], dtype=bool)]
    if unseen:
        names.append("unseen groups (shared reward)")
        masks.append(np.isin(group, [votes.group_labels.index(g) for g in unseen]))
    edges = np.linspace(0.5, 1.0, num_bins + 1)
    rows: dict[str, list] = {k: [] for k in ("group", "rows")}
    metric_cols = {f"{m}{s}": [] for m in met.CALIBRATION_METRICS for s in ("", "_low", "_high")}
    extra = {"ece_adaptive": [], "temperature": []}
    bins: dict[str, list] = {k: [] for k in ("group", "bin", "lower", "upper", "count", "confidence", "accuracy")}
    logits = np.log(np.clip(p, 1e-12, 1.0)) - np.log(np.clip(1.0 - p, 1e-12, 1.0))
    for name, mask in zip(names, masks):
        rows["group"].append(name)
        rows["rows"].append(int(mask.sum()))
        result = _bootstrap_terms(met.calibration_terms(p[mask], y[mask], edges), cluster[mask],
                                  met.calibration_from_totals, options)
        for j, m in enumerate(met.CALIBRATION_METRICS):
            for s, values in (("", result[0]), ("_low", result[1]), ("_high", result[2])):
                metric_cols[f"{m}{s}"].append(values[j])
        if mask.any():
            extra["ece_adaptive"].append(met.expected_calibration_error(p[mask], y[mask], num_bins, "quantile"))
            extra["temperature"].append(met.fit_temperature(logits[mask], y[mask]))
            diagram = met.reliability_diagram(p[mask], y[mask], num_bins)
        else:
            extra["ece_adaptive"].append(np.nan)
            extra["temperature"].append(np.nan)
            diagram = met.ReliabilityDiagram(edges, np.zeros(num_bins), np.full(num_bins, np.nan), np.full(num_bins, np.nan))
        for b in range(num_bins):
            for key, value in (("group", name), ("bin", b), ("lower", diagram.edges[b]), ("upper", diagram.edges[b + 1]),
                               ("count", diagram.count[b]), ("confidence", diagram.confidence[b]),
                               ("accuracy", diagram.accuracy[b])):
                bins[key].append(value)
    level = int(round(100 * options["confidence"]))
    yield "calibration", Table("calibration", {**rows, **metric_cols, **extra},
                               f"Per group and overall; _low/_high: {level}% bootstrap interval resampling "
                               f"{options['unit']}s (ECE: percentile interval of the resampled ECE, which is "
                               "biased upward, so the estimate can sit at its low end). ECE: top-label, "
                               f"{num_bins} equal-width bins; "
                               "ece_adaptive: equal-mass bins; temperature: the T minimising NLL on these "
                               "data (diagnostic; fit on validation data to deploy).")
    yield "reliability", Table("reliability", {k: np.array(v, dtype=object if k == "group" else np.float64)
                                               for k, v in bins.items()},
                               "Top-label reliability diagram bins: mean confidence and mean accuracy.")


def _bootstrap_terms(terms: np.ndarray, cluster: np.ndarray, statistic, options) -> tuple[np.ndarray, ...]:
    """(estimate, low, high) of statistic(Σ terms), resampling clusters of rows.

    The last entry (ECE) always gets the percentile interval: ECE is biased upward, its
    replicates can all lie above the estimate, and BCa then collapses to a point.
    """
    totals = terms.sum(0)
    estimate = statistic(totals[None])[0]
    if options["bootstrap"] <= 0 or terms.shape[0] == 0:
        return estimate, np.full_like(estimate, np.nan), np.full_like(estimate, np.nan)
    result = bootstrap_sums(cluster_sums(cluster, terms), statistic, options["bootstrap"], options["seed"],
                            options["confidence"], options["interval"])
    low, high = result.low.copy(), result.high.copy()
    ece_low, ece_high = percentile_interval(result.replicates[:, -1], options["confidence"])
    low[-1], high[-1] = ece_low, ece_high
    return result.estimate, low, high


def _fidelity_sections(votes: GroupVotes, rates, model: np.ndarray, min_votes: int, options):
    labels = list(votes.group_labels)
    g = votes.num_groups
    retention, units = fid.disagreement_retention(model, rates, min_votes)
    low, high = np.full(g + 1, np.nan), np.full(g + 1, np.nan)

    def ratio(totals: np.ndarray) -> np.ndarray:
        return fid.retention_ratio(totals[..., : g + 1], totals[..., g + 1:])

    if options["bootstrap"] > 0:
        # Always over comparison units: resampling annotators would make each replicate treat its
        # resampled votes as the truth, so the noise-corrected denominator would centre on the raw
        # (noise-inflated) gap and the interval would miss the estimate (see fidelity docs).
        num, den = fid.retention_terms(model, rates, min_votes)
        result = bootstrap_sums(np.concatenate([num, den], 1), ratio, options["bootstrap"], options["seed"],
                                options["confidence"], options["interval"])
        low, high = result.low, result.high
    corr = fid.difference_correlation(model, rates)
    yield "fidelity", Table("fidelity", {
        "group": np.array(labels + ["all"], dtype=object), "retention": retention,
        "retention_low": low, "retention_high": high, "units": units,
        "pearson": np.append(corr.group_pearson, np.nan), "spearman": np.append(corr.group_spearman, np.nan),
        "correlation_units": np.append(corr.group_units, np.nan),
    }, "Disagreement retention = predicted / noise-corrected empirical squared preference gap (per group: "
       "against the other groups pooled; all: every pair of groups); 0 = the model ignores groups, 1 = "
       "it reproduces the true differences; intervals resample comparison units. Correlations: "
       "predicted vs empirical deviation of the group from the rest, over units.")
    ia, ib = np.triu_indices(g, k=1)
    yield "fidelity_pairs", Table("fidelity_pairs", {
        "group_a": np.array([labels[a] for a in ia], dtype=object),
        "group_b": np.array([labels[b] for b in ib], dtype=object),
        "pearson": corr.pair_pearson[ia, ib], "spearman": corr.pair_spearman[ia, ib], "units": corr.pair_units[ia, ib],
    }, "Correlation over units of the predicted and the empirical difference in preference rate.")


def _representativeness_sections(votes: GroupVotes, rates, own: np.ndarray, model: np.ndarray | None):
    labels = list(votes.group_labels)
    rep, sim, units = div.alignment(own, rates)
    yield "representativeness", Table("representativeness", {
        "group": np.array(labels, dtype=object), "representativeness": np.diag(rep),
        "similarity": np.diag(sim), "units": np.diag(units),
    }, "The model conditioned on each group vs that group's empirical preference rates: OpinionQA "
       "representativeness 1 - W1/(N-1) (N = 2 choices: 1 - |q - r|) and GlobalOpinionQA similarity "
       "1 - Jensen-Shannon distance, averaged over units.")
    if model is not None:
        rep, _, _ = div.alignment(model, rates)
        yield "alignment", Matrix("alignment", [f"model|{label}" for label in labels], labels, rep,
                                  "OpinionQA representativeness of the model conditioned on the row's group "
                                  "to the column group's preferences; a steerable model is highest on the diagonal.")
