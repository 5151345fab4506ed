"""How much hidden context a distributional reward model sees: the r² diagnostic.

A reward model with a distributional head predicts, per response and group, a mean μ and a
spread σ of the reward over the annotators. Over a dataset of responses, the share of the total
reward variance explained by the means is

    r² = Var(μ) / (Var(μ) + E[σ²])

(law of total variance: Var(μ) is the variance between responses, E[σ²] the variance within a
response across annotators). r² near 1: annotators agree up to noise the data explain; low r²:
much of what decides the labels is context the data do not record (hidden context), and the
mean reward silently aggregates it (by Borda count, DPL's theorem 3.1).

Reference: Siththaranjan, Laidlaw & Hadfield-Menell (2024), "Distributional preference learning:
understanding and accounting for hidden context in RLHF", ICLR, section 4; code
``cassidylaidlaw/hidden-context``, ``hidden_context/summarize_results.py``,
``explained_variance`` (variances with ``np.var``, i.e. population variances, over the chosen and
rejected responses together). Intervals: a bootstrap over comparisons (each resampled pair
brings both its responses), :func:`pluralrm.calibration.stats.bootstrap_sums`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pluralrm.calibration.stats import bootstrap_sums
from pluralrm.calibration.tables import Table
from pluralrm.errors import DataError


def explained_variance(means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """r² = Var(means) / (Var(means) + mean(stds²)) over the first axis.

    Args:
      means, stds: ``[N, ...]`` per-response means and standard deviations.

    Returns:
      ``[...]`` r² (NaN where both variances are 0).
    """
    means, stds = np.asarray(means, np.float64), np.asarray(stds, np.float64)
    between = np.var(means, axis=0)
    within = np.mean(stds**2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return between / (between + within)


@dataclass(frozen=True)
class HiddenContextReport:
    """r² per group with bootstrap intervals.

    Attributes:
      group_labels: the G groups.
      r2, low, high: ``[G]`` estimate and interval bounds (NaN without bootstrap).
      between, within: ``[G]`` Var(μ) and E[σ²].
      responses: number of responses (2 per comparison).
      confidence: the interval's level.
    """

    group_labels: list[str]
    r2: np.ndarray
    low: np.ndarray
    high: np.ndarray
    between: np.ndarray
    within: np.ndarray
    responses: int
    confidence: float

    def table(self) -> Table:
        return Table(
            "hidden_context",
            {"group": np.asarray(self.group_labels, dtype=object), "r2": self.r2, "r2_low": self.low,
             "r2_high": self.high, "var_of_means": self.between, "mean_variance": self.within},
            f"Explained variance r² = Var(μ) / (Var(μ) + E[σ²]) of the predicted reward distributions over "
            f"{self.responses:,} responses, with a {self.confidence:.0%} bootstrap interval over comparisons. "
            "Low r² means much of the disagreement is context the data do not record.",
        )

    def to_dict(self) -> dict[str, Any]:
        return {"groups": self.group_labels, "r2": self.r2.tolist(), "low": self.low.tolist(),
                "high": self.high.tolist(), "between": self.between.tolist(), "within": self.within.tolist(),
                "responses": self.responses, "confidence": self.confidence}


def hidden_context_r2(
    chosen_means: np.ndarray,
    chosen_stds: np.ndarray,
    rejected_means: np.ndarray,
    rejected_stds: np.ndarray,
    group_labels: Sequence[str] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> HiddenContextReport:
    """r² per group over the responses of N comparisons, with bootstrap intervals.

    Args:
      chosen_means, chosen_stds, rejected_means, rejected_stds: ``[N, G]`` (or ``[N]``) the
        predicted reward mean and standard deviation of each comparison's two responses under
        each group (``RewardModel.reward_moments``, or any model's outputs through
        ``pluralrm.reward_distributions.reward_moments``).
      group_labels: G labels (default ``group 0..G-1``).
      bootstrap: replicates over comparisons (0 = no intervals).
      seed, confidence: of the bootstrap.

    Returns:
      :class:`HiddenContextReport`.
    """
    arrays = [np.asarray(a, np.float64) for a in (chosen_means, chosen_stds, rejected_means, rejected_stds)]
    arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise DataError(f"means and stds must share one shape [N, G], got {[a.shape for a in arrays]}")
    mc, sc, mr, sr = arrays
    n, g = mc.shape
    if n < 1:
        raise DataError("r² needs at least one comparison")
    labels = list(group_labels) if group_labels is not None else [f"group {i}" for i in range(g)]
    if len(labels) != g:
        raise DataError(f"{len(labels)} group labels for {g} groups", field="group_labels")
    # per comparison: response count, Σμ, Σμ², Σσ² over its two responses (a statistic of sums)
    sums = np.concatenate([np.full((n, 1), 2.0), mc + mr, mc**2 + mr**2, sc**2 + sr**2], axis=1)

    def statistic(totals: np.ndarray) -> np.ndarray:  # [b, 1 + 3G] → [b, G]
        count = totals[:, :1]
        mean = totals[:, 1 : 1 + g] / count
        between = np.maximum(totals[:, 1 + g : 1 + 2 * g] / count - mean**2, 0.0)
        within = totals[:, 1 + 2 * g :] / count
        with np.errstate(invalid="ignore", divide="ignore"):
            return between / (between + within)

    both_m, both_s = np.concatenate([mc, mr]), np.concatenate([sc, sr])
    r2 = explained_variance(both_m, both_s)
    if bootstrap > 0:
        result = bootstrap_sums(sums, statistic, num_replicates=bootstrap, seed=seed, confidence=confidence)
        low, high = np.asarray(result.low), np.asarray(result.high)
    else:
        low = high = np.full(g, np.nan)
    return HiddenContextReport(labels, r2, low, high, np.var(both_m, axis=0), np.mean(both_s**2, axis=0),
                               2 * n, confidence)


def model_hidden_context(model: Any, dataset: Any, bootstrap: int = 1000, seed: int = 0,
                         confidence: float = 0.95) -> HiddenContextReport:
    """r² of a model with a distributional head on a ComparisonDataset's responses, per schema
    group (``RewardModel.reward_moments``: one backbone pass per response for every group)."""
    prompts = list(dataset["prompt"])
    mc, sc = model.reward_moments(prompts, list(dataset["chosen"]))
    mr, sr = model.reward_moments(prompts, list(dataset["rejected"]))
    return hidden_context_r2(mc, sc, mr, sr, model.group_labels, bootstrap, seed, confidence)


def hidden_context_section(model: Any, dataset: Any, bootstrap: int = 1000, seed: int = 0) -> tuple:
    """The report section ``(Section, figures)`` for ``write_report(extra=...)``: the r² table of
    a model with a distributional head; nothing for other heads."""
    if not hasattr(model.net.head, "all_groups_moments"):
        return ()
    from pluralrm.calibration.report import Section

    report = model_hidden_context(model, dataset, bootstrap=bootstrap, seed=seed)
    section = Section(
        "Hidden context",
        f"How much of the predicted reward variance the responses explain ({model.config.head.type} head): "
        "r² = Var(μ) / (Var(μ) + E[σ²]) (Siththaranjan et al. 2024). Low r² = much hidden context.",
        (report.table(),),
    )
    return ((section, ()),)


__all__ = ["HiddenContextReport", "explained_variance", "hidden_context_r2", "hidden_context_section",
           "model_hidden_context"]
