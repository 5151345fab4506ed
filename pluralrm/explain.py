"""Explanations of a value-decomposed reward model: which values each group weighs, and why it
preferred an answer.

A ``values`` head scores a response on K values, v(x, y) ∈ R^K, and weighs them per group,
r_g = w_g·(v − u_0) (``pluralrm.models.heads.ValuesHead``). So the reward gap between two
answers splits exactly into one term per value,

    r_g(a) − r_g(b) = Σ_k w_g,k (v_k(a) − v_k(b)),

and ``explain`` reports those terms per group, largest first, with P(a ≻ b) = σ(gap / T_g)
(T_g the group's calibrated temperature, 1 when none). ``group_value_weights`` gives the G×K
weight table (the schema's groups and the shared w_0 row), optionally with bootstrap intervals.

What the names mean. A model trained with per-response value labels has value k = the labelled
value k. A model trained on comparisons alone identifies its value scores only up to an
invertible linear map A (r_g = (A⁻ᵀ w_g)·(A v)): its "value k" is a learned direction, the
names from the config are then labels of convenience, and weights are comparable with planted
or surveyed ones only after alignment (see ``experiments/values_study.py``). Within one model,
the decomposition is exact either way.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from pluralrm.errors import ConfigError, DataError
from pluralrm.models.heads import ValuesHead
from pluralrm.models.reward_model import RewardModel

SHARED = "shared"
"""Label of the shared weights w_0: the reward of a judge whose group is unknown."""

GroupSpec = str | Mapping[str, str] | None


# ---------------------------------------------------------------------------- explanations
@dataclass(frozen=True)
class ValueContribution:
    """One value's share of a group's reward gap: ``weight · (score_a − score_b)``."""

    value: str
    weight: float
    score_a: float
    score_b: float
    contribution: float


@dataclass(frozen=True)
class GroupExplanation:
    """Why group ``group`` prefers a or b: P(a ≻ b), the reward gap r_g(a) − r_g(b), and the
    per-value contributions (sorted by decreasing |contribution|; they sum to ``gap``)."""

    group: str
    probability: float
    gap: float
    temperature: float
    contributions: tuple[ValueContribution, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "probability": self.probability,
            "gap": self.gap,
            "temperature": self.temperature,
            "contributions": [vars(c).copy() for c in self.contributions],
        }


@dataclass(frozen=True)
class Explanation:
    """``explain``'s answer: the value scores of both answers and one GroupExplanation per group.

    ``scores_a`` / ``scores_b``: ``[K]`` value scores v(a), v(b), in ``value_names`` order.
    """

    prompt: str
    a: str
    b: str
    value_names: tuple[str, ...]
    scores_a: np.ndarray
    scores_b: np.ndarray
    groups: tuple[GroupExplanation, ...]

    def contribution_matrix(self) -> np.ndarray:
        """``[G, K]`` contributions in ``value_names`` order (rows in ``groups`` order)."""
        order = {name: k for k, name in enumerate(self.value_names)}
        out = np.zeros((len(self.groups), len(self.value_names)))
        for g, group in enumerate(self.groups):
            for c in group.contributions:
                out[g, order[c.value]] = c.contribution
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``pluralrm explain --json`` prints it)."""
        return {
            "prompt": self.prompt,
            "a": self.a,
            "b": self.b,
            "value_names": list(self.value_names),
            "value_scores": {"a": self.scores_a.tolist(), "b": self.scores_b.tolist()},
            "groups": [g.to_dict() for g in self.groups],
        }


def values_head(model: RewardModel) -> ValuesHead:
    """The model's values head, or a ConfigError saying that explanations need one."""
    head = model.net.head
    if not isinstance(head, ValuesHead):
        raise ConfigError(
            f"explanations need a model with a 'values' head (value scores weighted per group); "
            f"this model's head is {model.config.head.type!r}. Train one with "
            "model.head.type=values and model.head.value_names=[...] (or model.head.num_values=K), e.g. "
            "`pluralrm train --config experiments/configs/values_hashing.yaml --out runs/v`"
        )
    return head


def _group_rows(model: RewardModel, groups: GroupSpec | Sequence[GroupSpec] | str, fallback: str
                ) -> tuple[list[str], np.ndarray, list[dict[str, str]] | None]:
    """Labels, ids ``[G, A]`` and per-group specs (None for "all") of the groups to explain.

    A spec's label names its known attribute values after the fallback policy
    (``"country=NG"``); a spec with none known is the shared weights, labelled ``"shared"``.
    """
    schema = model.schema
    if isinstance(groups, str) and groups == "all":
        return model.group_labels, schema.group_ids(), None
    specs = [groups] if groups is None or isinstance(groups, (str, Mapping)) else list(groups)
    if not specs:
        raise DataError("no groups to explain: pass None (shared), 'all', or group specs", field="groups")
    ids = np.concatenate([model.encode_groups(s, 1, fallback) for s in specs])
    known = [
        {a: vocab[i - 1] for a, vocab, i in zip(schema.attributes, schema.vocabularies, row) if i > 0}
        for row in ids.tolist()
    ]
    labels = [",".join(f"{a}={v}" for a, v in spec.items()) or SHARED for spec in known]
    return labels, ids, known


def _temperatures(model: RewardModel, ids: np.ndarray) -> np.ndarray:
    """``[G]`` the calibrated temperature ``predict_preference`` applies to each group's ids."""
    by_ids = {tuple(g): model.temperatures.get(label, 1.0)
              for g, label in zip(model.schema.group_ids().tolist(), model.group_labels)}
    return np.array([by_ids.get(tuple(row), 1.0) for row in np.asarray(ids).tolist()])


def explain(
    model: RewardModel,
    prompt: str,
    a: str,
    b: str,
    groups: GroupSpec | Sequence[GroupSpec] | str = None,
    fallback: str = "pooled",
) -> Explanation:
    """Why each group prefers answer ``a`` or ``b``: per-value contributions to the reward gap.

    Args:
      model: a RewardModel with a ``values`` head (ConfigError otherwise).
      prompt, a, b: the prompt and the two answers.
      groups: None for the shared weights (judge's group unknown), ``"all"`` for every group
        of the model's schema, one spec (``"country=NG"`` or ``{"country": "NG"}``) or a list
        of specs. A value the schema does not know follows ``fallback`` (as in
        ``RewardModel.encode_groups``).

    Returns:
      Explanation. For each group, ``contributions[k] = w_g,k (v_k(a) − v_k(b))``, sorted by
      magnitude, sum to ``gap = model.score(a) − model.score(b)`` for that group up to float32
      rounding of the model's own sum; ``probability`` is ``model.predict_preference``'s.
    """
    head = values_head(model)
    labels, ids, specs = _group_rows(model, groups, fallback)
    n = len(labels)
    scores = model.value_scores([prompt, prompt], [a, b]).astype(np.float64)  # [2, K]
    weights = np.asarray(head.value_weights(jnp.asarray(ids)), np.float64)  # [G, K]
    if specs is None:
        rewards = model.score_all_groups([prompt, prompt], [a, b])[0]  # [2, G]
        gaps = rewards[0].astype(np.float64) - rewards[1]
        probs = model.predict_preference(prompt, a, b, groups="all")[0]
    else:
        rewards = model.score([prompt, prompt] * n, [a, b] * n, groups=[s for s in specs for _ in range(2)])
        gaps = rewards[0::2].astype(np.float64) - rewards[1::2]
        probs = model.predict_preference([prompt] * n, [a] * n, [b] * n, groups=specs)
    names = head.value_names()
    temperatures = _temperatures(model, ids)
    out = []
    for g in range(n):
        terms = weights[g] * (scores[0] - scores[1])
        order = np.argsort(-np.abs(terms), kind="stable")
        contributions = tuple(
            ValueContribution(names[k], float(weights[g, k]), float(scores[0, k]), float(scores[1, k]), float(terms[k]))
            for k in order
        )
        out.append(GroupExplanation(labels[g], float(probs[g]), float(gaps[g]), float(temperatures[g]), contributions))
    return Explanation(prompt, a, b, names, scores[0], scores[1], tuple(out))


# ---------------------------------------------------------------------------- the weight table
@dataclass(frozen=True)
class ValueWeightTable:
    """The G×K value weights of a values head: the schema's groups, then the shared w_0 row.

    Attributes:
      groups: G + 1 row labels (schema group labels, then ``"shared"``).
      value_names: K column labels.
      weights: ``[G + 1, K]`` the model's weights.
      lower / upper: ``[G + 1, K]`` bootstrap interval bounds, or None without bootstrap (NaN
        for a group with no comparisons in the bootstrap data).
      level: the intervals' coverage (e.g. 0.95).
      bootstrap: number of resamples B (0 = none).
      refit_offset: max |model weights − full-data refit| (optimisation error of training
        relative to the refit's exact optimum; small when training converged).
      conditioning: what the intervals condition on (see ``group_value_weights``).
    """

    groups: tuple[str, ...]
    value_names: tuple[str, ...]
    weights: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    level: float = 0.95
    bootstrap: int = 0
    refit_offset: float | None = None
    conditioning: str = ""

    def to_dict(self) -> dict[str, Any]:
        def plain(x):
            return None if x is None else [[None if math.isnan(v) else float(v) for v in row] for row in x]

        return {
            "groups": list(self.groups),
            "value_names": list(self.value_names),
            "weights": plain(self.weights),
            "lower": plain(self.lower),
            "upper": plain(self.upper),
            "level": self.level,
            "bootstrap": self.bootstrap,
            "refit_offset": self.refit_offset,
            "conditioning": self.conditioning,
        }


CONDITIONING = (
    "Intervals refit only the group weights (w_0 and the attribute offsets) by the training "
    "objective's exact optimum on {B} resamples of annotators (all of an annotator's comparisons "
    "together, resampled within each group cell), with everything else frozen: the backbone, the "
    "trunk and the value scores v, the items and the hyper-parameters (shrinkage, group dropout, "
    "loss). They measure how precisely these data pin the weights *given these value scores*; "
    "the variability of v itself (and, without value labels, which linear basis of values was "
    "learned) is not included, so they are narrower than intervals from retraining the network."
)


# The trainer's defaults (LoopConfig.group_dropout, LossConfig.type/margin/tie_param), for a model
# directory that records no objective (one saved with RewardModel.save); tests/test_explain.py
# checks they still equal pluralrm.train.config's, which this layer does not import.
DEFAULT_OBJECTIVE: dict[str, Any] = {"group_dropout": 0.1, "loss": "bradley_terry", "margin": 0.0, "tie_param": None}


def _training_settings(path: Path | None) -> tuple[float, str, float, float | None]:
    """(group_dropout, loss type, margin, tie_param) the model was trained with: the
    ``"objective"`` entry the trainer writes into a run's ``model.json``, else the defaults."""
    from pluralrm.untrusted import read_json

    objective = dict(DEFAULT_OBJECTIVE)
    if path is not None and (path / "model.json").is_file():
        recorded = read_json(path / "model.json", max_bytes=16 << 20).get("objective") or {}
        objective.update({k: v for k, v in recorded.items() if k in objective})
    return (float(objective["group_dropout"]), str(objective["loss"]), float(objective["margin"]),
            None if objective["tie_param"] is None else float(objective["tie_param"]))


def group_value_weights(
    model_or_run: RewardModel | str | Path,
    bootstrap: int = 0,
    data: Any = None,
    seed: int = 0,
    level: float = 0.95,
    group_dropout: float | None = None,
) -> ValueWeightTable:
    """The G×K value-weight table of a values head, optionally with bootstrap intervals.

    Args:
      model_or_run: a RewardModel, or a model / run directory (loaded with its best checkpoint).
      bootstrap: B resamples for intervals (0 = point estimates only).
      data: the comparisons to bootstrap over (a ComparisonDataset; normally the training data);
        required when ``bootstrap > 0``.
      seed: seed of the resampling.
      level: coverage of the intervals.
      group_dropout: the training group-dropout rate the refit objective averages over; by
        default the run's (recorded in its model.json by the trainer), else the trainer's default.

    Returns:
      ValueWeightTable. Intervals are percentile intervals of B refits of the group weights
      with the value scores frozen (see ``CONDITIONING`` / ``pluralrm.models.value_refit``),
      re-centred on the model's weights by the offset between them and the full-data refit
      (zero at an exact optimum), so a point estimate always lies in its interval whenever the
      refits scatter around the full-data refit.
    """
    path = None
    if not isinstance(model_or_run, RewardModel):
        path = Path(model_or_run)
        model_or_run = RewardModel.load(path)
    model = model_or_run
    head = values_head(model)
    ids = np.concatenate([model.schema.group_ids(), np.zeros((1, model.schema.num_attributes), np.int32)])
    weights = np.asarray(head.value_weights(jnp.asarray(ids)), np.float64)
    labels = (*model.group_labels, SHARED)
    names = head.value_names()
    if not bootstrap:
        return ValueWeightTable(labels, names, weights, level=level)
    if bootstrap < 2 or not 0 < level < 1:
        raise ConfigError(f"bootstrap needs B >= 2 resamples and 0 < level < 1, got B={bootstrap}, level={level}")
    if data is None or len(data) == 0:
        raise DataError("bootstrap intervals need the comparisons to resample: pass data= (the training data)",
                        field="data")
    from pluralrm.models import value_refit

    dropout, loss, margin, tie = _training_settings(path)
    dropout = dropout if group_dropout is None else group_dropout
    cols = data.column_names
    row_ids = model.schema.encode({a: data[a] for a in model.schema.attributes if a in cols}, n=len(data))
    prompts = list(data["prompt"])
    delta = model.value_scores(prompts, list(data["chosen"])).astype(np.float64) - model.value_scores(
        prompts, list(data["rejected"]))
    weight = np.asarray(data["weight"], np.float64) if "weight" in cols else np.ones(len(data))
    problem = value_refit.weight_problem(delta, row_ids, np.asarray(data["label"]), weight, dropout)
    annotators = data["annotator_id"] if "annotator_id" in cols else [""] * len(data)
    counts = value_refit.annotator_resample_counts(annotators, problem.row_cell, bootstrap, np.random.default_rng(seed))
    counts = np.concatenate([np.ones((1, len(data))), counts])  # row 0: the data as given
    theta, _ = value_refit.newton_refit(problem, value_refit.head_parameters(head, problem), counts,
                                        head.config.shrinkage, loss, margin, tie)
    refits = value_refit.group_weights(problem, theta, ids)  # [B + 1, G + 1, K]
    deviation = refits[1:] - refits[0]
    alpha = (1.0 - level) / 2
    lower = weights + np.quantile(deviation, alpha, axis=0)
    upper = weights + np.quantile(deviation, 1.0 - alpha, axis=0)
    fitted = value_refit.fitted_groups(problem, ids)
    lower[~fitted], upper[~fitted] = np.nan, np.nan
    offset = float(np.max(np.abs(weights[fitted] - refits[0][fitted])))
    return ValueWeightTable(labels, names, weights, lower, upper, level, bootstrap, offset,
                            CONDITIONING.format(B=bootstrap))


# ---------------------------------------------------------------------------- plotting
def plot_group_value_weights(table: ValueWeightTable, path: str | Path, title: str | None = None) -> Path:
    """Draws the G×K weight table as a heat map (intervals, when present, as text) to ``path``.

    Matplotlib's Agg backend (no display needed). Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g, k = table.weights.shape
    fig, ax = plt.subplots(figsize=(1.5 + 1.25 * k, 1.2 + 0.55 * g))
    bound = float(np.max(np.abs(table.weights))) or 1.0
    image = ax.imshow(table.weights, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    for i in range(g):
        for j in range(k):
            text = f"{table.weights[i, j]:.2f}"
            if table.lower is not None and not np.isnan(table.lower[i, j]):
                text += f"\n[{table.lower[i, j]:.2f}, {table.upper[i, j]:.2f}]"
            dark = abs(table.weights[i, j]) > 0.6 * bound
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(k), table.value_names, rotation=30, ha="right")
    ax.set_yticks(range(g), table.groups)
    ax.axhline(g - 1.5, color="black", linewidth=1.0)  # the shared row below the groups
    suffix = f", {table.level:.0%} bootstrap intervals (B={table.bootstrap})" if table.bootstrap else ""
    ax.set_title(title or f"value weights per group{suffix}", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    fig.tight_layout()
    from pluralrm.atomic import atomic_path

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=130, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


__all__ = [
    "CONDITIONING",
    "SHARED",
    "Explanation",
    "GroupExplanation",
    "ValueContribution",
    "ValueWeightTable",
    "explain",
    "group_value_weights",
    "plot_group_value_weights",
    "values_head",
]
