"""Reward tables: candidates × groups, and the groups' population weights.

A *group spec* names a group by attribute values: ``"country=NG,language=yo"`` or
``{"country": "NG"}`` (attributes left out are unknown and fall back to the shared reward).
A spec may name a value the model never saw; ``fallback`` decides what happens (see
:meth:`pluralrm.models.reward_model.RewardModel.encode_groups`): ``"pooled"`` (the shared
reward, with a warning naming the value), ``"error"`` (DataError) or ``"nearest"`` (the known
value with the most similar name).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pluralrm.data.schema import GroupSchema, parse_group_spec
from pluralrm.errors import ConfigError, DataError
from pluralrm.models.reward_model import FALLBACKS
from pluralrm.score.normalize import NORMALIZATIONS

GroupSpec = str | Mapping[str, str]


def spec_label(spec: GroupSpec) -> str:
    """Readable label of a group spec, ``"country=NG,language=yo"`` (``"pooled"`` if empty)."""
    parsed = parse_group_spec(spec)
    return ",".join(f"{a}={v}" for a, v in parsed.items()) or "pooled"


def is_single_spec(groups: Any) -> bool:
    """True for one group spec (a string or a mapping), False for a list of specs."""
    return isinstance(groups, (str, Mapping))


def group_scores(
    model: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    groups: GroupSpec | Sequence[GroupSpec] | None = None,
    fallback: str = "pooled",
    risk: float | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Rewards of N responses under K groups in one batched model call.

    Args:
      model: a :class:`~pluralrm.models.reward_model.RewardModel`.
      prompts, responses: N texts each.
      groups: None = every group of the model's schema (``score_all_groups``, one backbone
        pass); one spec = that group only (K = 1); a list of specs = those K groups (each
        response is scored under each).
      fallback: the unseen-group-value policy (module docstring).
      risk: α in (0, 1) scores by the lower α-quantile of each response's predicted reward
        distribution instead of its mean (models with a distributional head; see
        ``RewardModel.score``); None = the mean.

    Returns:
      ``(table [N, K], labels)``.
    """
    if groups is None:
        table, labels = model.score_all_groups(list(prompts), list(responses), **_risk_kw(risk))
        return np.asarray(table), list(labels)
    specs = [groups] if is_single_spec(groups) else list(groups)
    if not specs:
        raise DataError("groups is an empty list: name at least one group, or pass None for all", field="groups")
    n, k = len(prompts), len(specs)
    if len(responses) != n:
        raise DataError(f"{n} prompts but {len(responses)} responses", field="responses")
    rows = model.score(list(prompts) * k, list(responses) * k, groups=[s for s in specs for _ in range(n)],
                       fallback=fallback, **_risk_kw(risk))
    return np.asarray(rows).reshape(k, n).T, [spec_label(s) for s in specs]


def _risk_kw(risk: float | None) -> dict[str, float]:
    """``risk`` only when set, so that models without the option (duck-typed ones) still work."""
    return {} if risk is None else {"risk": risk}


def population_weights(schema: GroupSchema, groups: Sequence[GroupSpec] | None = None) -> np.ndarray:
    """Population share of each group: its number of training comparisons, normalised.

    Args:
      schema: the model's GroupSchema (``group_counts``).
      groups: None = the schema's groups in order (``[G]``); or specs, each weighted by the
        training comparisons of every schema group it matches (``"country=NG"`` sums over
        the languages of NG).

    Returns:
      ``[K]`` weights summing to 1.
    """
    counts = np.asarray(schema.group_counts, dtype=np.float64)
    if groups is None:
        if counts.size == 0 or counts.sum() <= 0:
            return np.ones(max(schema.num_groups, 1)) / max(schema.num_groups, 1)
        return counts / counts.sum()
    weights = []
    for spec in groups:
        parsed = parse_group_spec(spec)
        for attr in parsed:
            if attr not in schema.attributes:
                raise DataError(
                    f"unknown group attribute {attr!r}; this model knows {list(schema.attributes)}", field=attr
                )
        idx = [(schema.attributes.index(a), v) for a, v in parsed.items()]
        weights.append(sum(c for g, c in zip(schema.groups, counts) if all(g[i] == v for i, v in idx)))
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        raise DataError(
            f"none of the groups {[spec_label(s) for s in groups]} has training comparisons, so they "
            "have no population weight; pass weights explicitly",
            field="groups",
        )
    return w / w.sum()


def check_score_options(fallback: str, normalize: str = "none", weights: Any = None) -> None:
    """Fails early on scoring options a caller got wrong, before any model call: the unseen-group
    policy ``fallback`` (:data:`~pluralrm.models.reward_model.FALLBACKS`), the per-group
    normalisation (:data:`~pluralrm.score.normalize.NORMALIZATIONS`) and rule ``weights``
    (``"population"``, numbers, or None).

    Raises:
      ConfigError: naming the option, the value given and the values allowed.
    """
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"normalize must be one of {list(NORMALIZATIONS)}, got {normalize!r}")
    if fallback not in FALLBACKS:
        raise ConfigError(f"fallback must be one of {list(FALLBACKS)}, got {fallback!r}")
    if isinstance(weights, str) and weights != "population":
        raise ConfigError(f"weights must be 'population' or one number per group, got {weights!r}")


def rule_weights(
    schema: GroupSchema, rule: str, weights: str | Sequence[float] | None, groups: Sequence[GroupSpec] | None = None
) -> np.ndarray | None:
    """The group weights an aggregation rule gets from a caller's ``weights`` option.

    Args:
      schema: the model's GroupSchema.
      rule: the rule's name (:data:`pluralrm.score.rules.RULES`); ``weighted`` defaults to the
        population shares, since a weighted mean without weights has nothing to weigh by.
      weights: ``"population"`` (:func:`population_weights` of ``groups``), numbers (one per
        group, ``[K]``), or None (the rule's own default).
      groups: the specs being aggregated over; None = every group of the schema.

    Returns:
      ``[K]`` float64 weights, or None.
    """
    if weights == "population" or (weights is None and rule == "weighted"):
        return population_weights(schema, groups)
    return None if weights is None else np.asarray(weights, dtype=np.float64)


__all__ = ["GroupSpec", "check_score_options", "group_scores", "is_single_spec", "population_weights",
           "rule_weights", "spec_label"]
