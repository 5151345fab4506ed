"""Which reward a policy optimiser gets: the group spec and the rule over groups.

A policy trained against a pluralistic reward model must be told *whose* reward it optimises.
:class:`RewardSpec` says it once, for the TRL reward function (:mod:`pluralrm.integrations.trl`)
and the server's OpenRLHF route (``POST /get_reward``):

- ``groups=None`` — the shared (pooled) reward;
- ``groups="country=NG"`` (or a mapping) — that group's reward;
- ``groups="all"`` — every group of the model, combined by ``aggregate`` (a rule of
  :data:`pluralrm.score.rules.RULES`: ``mean``, ``weighted``, ``worst`` for the worst-off group,
  ``quantile``, ``softmin``, ``borda``, ``majority``), with ``weights`` (``"population"`` or
  one number per group), ``normalize`` and the rule's ``q`` / ``temperature``.

A per-row group (a dataset column in TRL, the ``labels`` of an OpenRLHF request) overrides
``groups`` row by row; :func:`parse_row_group` reads it. Ranking rules (``borda``,
``majority``) rank the rows that share a prompt, i.e. the completions of one GRPO group.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pluralrm.data.schema import UNKNOWN
from pluralrm.errors import ConfigError, DataError
from pluralrm.score.rules import RULES, aggregate
from pluralrm.score.table import check_score_options, rule_weights

ALL = "all"


@dataclass(frozen=True)
class RewardSpec:
    """Whose reward (see the module docstring). ``fallback``: the unseen-group-value policy
    (``pooled``: shared reward and a warning; ``error``; ``nearest``)."""

    groups: str | Mapping[str, str] | None = None
    aggregate: str = "mean"
    weights: str | tuple[float, ...] | None = None
    normalize: str = "none"
    params: Mapping[str, float] = field(default_factory=dict)
    fallback: str = "pooled"

    def __post_init__(self) -> None:
        if self.aggregate not in RULES:
            raise ConfigError(f"aggregate must be one of {list(RULES)}, got {self.aggregate!r}")
        check_score_options(self.fallback, self.normalize, self.weights)
        if self.weights is not None and not isinstance(self.weights, str):
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        unknown = set(self.params) - {"q", "temperature"}
        if unknown:
            raise ConfigError(f"params may hold q and temperature, not {sorted(unknown)}")

    @property
    def label(self) -> str:
        """Short description, e.g. ``worst over all groups`` or ``country=NG``."""
        if self.groups is None:
            return "pooled"
        if self.groups == ALL:
            return f"{self.aggregate} over all groups"
        return self.groups if isinstance(self.groups, str) else ",".join(f"{a}={v}" for a, v in self.groups.items())


def parse_row_group(value: Any, attribute: str | None = None, where: str = "group") -> str | dict[str, str] | None:
    """One row's group: ``None``/``""`` (shared reward), ``"all"``, a spec (``"country=NG"``,
    a mapping, or its JSON text), or with ``attribute`` a bare value (``"NG"`` → ``{attribute: "NG"}``).

    Raises:
      DataError: naming ``where`` when the value is not one of these.
    """
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise DataError(f"a group must be a string like 'country=NG' or an object, got {type(value).__name__}",
                        field=where, value=value)
    text = value.strip()
    if text == ALL:
        return ALL
    if text.startswith("{"):
        try:
            return parse_row_group(json.loads(text), attribute, where)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON group at character {e.pos}", field=where, value=value) from None
    if "=" in text or attribute is None:
        return text
    return {attribute: text}


def resolve_rows(model: Any, specs: Sequence[Any], fallback: str) -> tuple[list[Any], list[str]]:
    """Applies the unseen-value policy to each row's spec once per distinct spec.

    Returns:
      ``(specs, notes)``: ``"all"`` stays; other specs become ``{attribute: known value or ""}``
      mappings that score without further warnings; ``notes`` are the policy's messages
      (``group value country='FR' is not in the model's schema; using the pooled reward``).
    """
    cache: dict[str, Any] = {}
    notes: list[str] = []
    out = []
    for spec in specs:
        if spec == ALL:
            out.append(ALL)
            continue
        key = json.dumps(spec, sort_keys=True)
        if key not in cache:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ids = model.encode_groups(spec, 1, fallback)
            values = model.schema.decode(ids)[0]
            cache[key] = {a: v for a, v in zip(model.schema.attributes, values) if v != UNKNOWN}
            notes.extend(m for m in (str(w.message) for w in caught) if m not in notes)
        out.append(cache[key])
    return out, notes


def aggregate_groups(table: np.ndarray, spec: RewardSpec, schema: Any, sets: Sequence[str]) -> np.ndarray:
    """``[N, G]`` rewards under every group → ``[N]`` by ``spec``'s rule (``sets``: one label per row)."""
    weights = rule_weights(schema, spec.aggregate, spec.weights)
    return aggregate(table, spec.aggregate, weights, sets=list(sets), normalize=spec.normalize, **dict(spec.params))


def check_spec(model: Any, spec: RewardSpec) -> None:
    """Fails early on a spec this model cannot serve: an unknown group attribute (DataError), or
    rule weights/parameters that do not fit its groups (ConfigError)."""
    import warnings as _warnings

    if spec.groups not in (None, ALL):
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")  # an unseen value is the fallback policy's business, per request
            model.encode_groups(spec.groups, 1, "pooled")
    if spec.groups == ALL:
        aggregate_groups(np.zeros((1, model.schema.num_groups), np.float32), spec, model.schema, [""])


def compute_rewards(
    model: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    spec: RewardSpec,
    row_groups: Sequence[Any] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Rewards ``[N]`` under ``spec`` (``row_groups``: parsed per-row specs overriding ``spec.groups``).

    Rows under one group are scored with ``model.score`` (one batched call); rows under
    ``"all"`` with ``model.score_all_groups`` and the rule. Equal to those calls row by row.

    Returns:
      ``(rewards [N] float32, notes)``: the unseen-group policy's messages.
    """
    n = len(prompts)
    if len(responses) != n:
        raise DataError(f"{len(responses)} responses for {n} prompts", field="responses")
    specs = list(row_groups) if row_groups is not None else [spec.groups] * n
    if len(specs) != n:
        raise DataError(f"{len(specs)} groups for {n} rows", field="groups")
    resolved, notes = resolve_rows(model, specs, spec.fallback)
    rewards = np.zeros(n, np.float32)
    every = [i for i, s in enumerate(resolved) if s == ALL]
    one = [i for i, s in enumerate(resolved) if s != ALL]
    if one:
        rewards[one] = model.score([prompts[i] for i in one], [responses[i] for i in one],
                                   groups=[resolved[i] for i in one], fallback="error")
    if every:
        p = [prompts[i] for i in every]
        table, _ = model.score_all_groups(p, [responses[i] for i in every])
        rewards[every] = aggregate_groups(np.asarray(table), spec, model.schema, p)
    return rewards, notes


__all__ = ["ALL", "RewardSpec", "aggregate_groups", "check_spec", "compute_rewards", "parse_row_group", "resolve_rows"]
