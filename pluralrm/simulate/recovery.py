"""How well predictions recover a simulated society's planted truth.

A model's held-out accuracy on sampled labels mixes two things: how close its probabilities
are to the truth, and the luck of the draws (a minority group with 100 held-out rows has a
sampling sd of ~4 points). The simulator knows every group's population probability
``p_c = Truth.p_group``, so a prediction can be scored in expectation instead:

    expected accuracy of q on a row = p   if q > ½,   1 − p   if q < ½,   ½ if q = ½

which is the accuracy the prediction would reach over infinitely many annotators of the group
judging that row, and is directly comparable with the Bayes accuracies the truth reports
(``E max(p, 1 − p)`` for a group-aware model, the population-majority rule for a group-blind
one). :func:`group_recovery` tabulates it per group next to those ceilings.

Between-group structure: :func:`between_group_variance` and :func:`truth_retention` compare
how much a model's per-group predictions differ across groups with how much the truth's do
(a pooled model retains 0, a model that reproduces every group's p exactly retains 1), and
:func:`deviation_correlation` checks that the differences point the right way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralrm.simulate.truth import Truth

# Variances of probabilities below this are rounding noise (identical columns can differ by an ulp
# after averaging): treated as "no between-group variation".
_NO_VARIATION = 1e-20


def expected_accuracy(prob: np.ndarray, p_true: np.ndarray) -> np.ndarray:
    """Accuracy of predictions in expectation over the label draw.

    Args:
      prob: ``[...]`` predicted P(chosen ≻ rejected).
      p_true: ``[...]`` the true probability the label is "chosen" (e.g. a group's p).

    Returns:
      ``[...]`` float64: p_true where prob > ½, 1 − p_true where prob < ½, ½ where prob = ½.
    """
    prob = np.asarray(prob, np.float64)
    p_true = np.asarray(p_true, np.float64)
    return np.where(prob > 0.5, p_true, np.where(prob < 0.5, 1.0 - p_true, 0.5))


@dataclass(frozen=True)
class GroupRecovery:
    """One group's (or ``"all"`` rows') accuracy next to the truth's ceilings.

    Attributes:
      group: the cell label (``"country=US,language=en"``) or ``"all"``.
      share: the group's population share (1.0 for ``"all"``).
      rows: number of rows judged by the group's annotators.
      expected_accuracy: mean :func:`expected_accuracy` of the predictions under the group's p.
      bayes_group: E max(p, 1 − p), the ceiling of a model that knows the group.
      bayes_blind: accuracy of the group-blind Bayes rule (predict p_pooled ≥ ½) under the
        group's p, the ceiling of a model that ignores groups.
      bayes_annotator: E max(p_a, 1 − p_a) with each row's annotator's p, the ceiling of a model
        that knows the individual.
      observed_accuracy: accuracy against the sampled hard labels when labels were given
        (ties left out), else NaN.
    """

    group: str
    share: float
    rows: int
    expected_accuracy: float
    bayes_group: float
    bayes_blind: float
    bayes_annotator: float
    observed_accuracy: float

    @property
    def regret(self) -> float:
        """bayes_group − expected_accuracy: the accuracy a group-aware model leaves on the table."""
        return self.bayes_group - self.expected_accuracy

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "group": self.group,
            "share": self.share,
            "rows": self.rows,
            "expected_accuracy": self.expected_accuracy,
            "bayes_group": self.bayes_group,
            "bayes_blind": self.bayes_blind,
            "bayes_annotator": self.bayes_annotator,
            "observed_accuracy": self.observed_accuracy,
            "regret": self.regret,
        }


def group_recovery(truth: Truth, rows: np.ndarray, prob: np.ndarray,
                   labels: np.ndarray | None = None) -> list[GroupRecovery]:
    """Per-group expected accuracy of predictions next to the Bayes accuracies.

    Each row is scored under its own annotator's group (cell): the truth is that group's
    population probability ``p_group[row, cell]``.

    Args:
      truth: the society's truth.
      rows: ``[n]`` indices into the truth's rows (e.g. a held-out split's rows).
      prob: ``[n]`` predicted P(chosen ≻ rejected) for those rows under their own group.
      labels: optional ``[n]`` sampled labels (1.0, 0.0, or 0.5 for a tie) for the observed
        accuracy.

    Returns:
      ``"all"`` first, then one entry per group that has rows, in truth order.
    """
    rows = np.asarray(rows, np.int64)
    prob = np.asarray(prob, np.float64)
    if prob.shape != rows.shape:
        raise ValueError(f"prob has shape {prob.shape} but rows has {rows.shape}")
    group = truth.row_group[rows]
    p = truth.p_group[rows, group]
    p_ann = truth.p_annotator[rows]
    blind = np.where(truth.p_pooled[rows] >= 0.5, p, 1.0 - p)
    expected = expected_accuracy(prob, p)
    if labels is None:
        correct, hard = np.zeros(len(rows)), np.zeros(len(rows), bool)
    else:
        labels = np.asarray(labels, np.float64)
        hard = labels != 0.5
        correct = ((prob > 0.5) == (labels > 0.5)).astype(np.float64)

    def entry(name: str, share: float, m: np.ndarray) -> GroupRecovery:
        return GroupRecovery(
            group=name,
            share=share,
            rows=int(m.sum()),
            expected_accuracy=_mean(expected[m]),
            bayes_group=_mean(np.maximum(p[m], 1.0 - p[m])),
            bayes_blind=_mean(blind[m]),
            bayes_annotator=_mean(np.maximum(p_ann[m], 1.0 - p_ann[m])),
            observed_accuracy=_mean(correct[m & hard]),
        )

    out = [entry("all", 1.0, np.ones(len(rows), bool))]
    for c, label in enumerate(truth.group_labels):
        m = group == c
        if m.any():
            out.append(entry(label, float(truth.group_share[c]), m))
    return out


def between_group_variance(prob_all: np.ndarray) -> np.ndarray:
    """Variance across groups of each row's per-group probabilities (groups weighted equally,
    so a minority's disagreement counts as much as a majority's).

    Args:
      prob_all: ``[N, G]`` P(chosen ≻ rejected) under every group.

    Returns:
      ``[N]`` population variance over the G columns.
    """
    return np.var(np.asarray(prob_all, np.float64), axis=1)


def truth_retention(prob_all: np.ndarray, p_group: np.ndarray) -> float:
    """How much of the true between-group disagreement a model's per-group predictions keep.

    mean_rows Var_groups(model's P) / mean_rows Var_groups(true p): 0 for a group-blind
    model, 1 when the predictions reproduce the truth's spread (it can exceed 1 when a model
    exaggerates differences, e.g. by being over-confident). The truth's p are population
    probabilities, so no finite-sample correction is needed; with data-based group rates the
    denominator would need one (sampling noise inflates their variance).

    Args:
      prob_all: ``[N, G]`` the model's P(chosen ≻ rejected) under every group.
      p_group: ``[N, G]`` the true population probabilities, columns in the same order.

    Returns:
      The ratio (NaN when the truth has no between-group variance).
    """
    prob_all, p_group = np.asarray(prob_all, np.float64), np.asarray(p_group, np.float64)
    if prob_all.shape != p_group.shape:
        raise ValueError(f"prob_all has shape {prob_all.shape} but p_group has {p_group.shape}")
    truth_var = float(np.mean(between_group_variance(p_group)))
    if truth_var <= _NO_VARIATION:
        return float("nan")
    return float(np.mean(between_group_variance(prob_all))) / truth_var


def deviation_correlation(prob_all: np.ndarray, p_group: np.ndarray) -> float:
    """Pearson correlation, over all (row, group) entries, between the model's and the truth's
    deviations from their row means: do the predicted group differences point the way the
    true ones do? (Scale-free, so it complements :func:`truth_retention`.)

    Args:
      prob_all: ``[N, G]`` the model's per-group probabilities.
      p_group: ``[N, G]`` the truth's, columns in the same order.

    Returns:
      The correlation (NaN when either side has no between-group variation).
    """
    a = np.asarray(prob_all, np.float64)
    b = np.asarray(p_group, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"prob_all has shape {a.shape} but p_group has {b.shape}")
    a = (a - a.mean(axis=1, keepdims=True)).reshape(-1)
    b = (b - b.mean(axis=1, keepdims=True)).reshape(-1)
    if np.mean(a * a) <= _NO_VARIATION or np.mean(b * b) <= _NO_VARIATION:
        return float("nan")
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


__all__ = [
    "GroupRecovery",
    "between_group_variance",
    "deviation_correlation",
    "expected_accuracy",
    "group_recovery",
    "truth_retention",
]
