"""A pluralrm reward model as a TRL reward function (``GRPOTrainer(reward_funcs=...)``).

TRL calls a reward function as ``fn(prompts=..., completions=..., completion_ids=...,
**columns)`` with one entry per generated completion, every other dataset column repeated to
match, plus ``trainer_state``, ``log_extra`` and ``log_metric``; it wants one float per
completion and names the function's metrics by ``__name__`` (``rewards/<name>/mean``). See
``GRPOTrainer._calculate_rewards`` in TRL (read for TRL 1.16).

::

    from pluralrm.integrations.trl import reward_function
    worst_off = reward_function("runs/x", groups="all", aggregate="worst")   # the worst-off group
    per_row = reward_function("runs/x", group_column="country")              # the dataset's column
    GRPOTrainer(model=policy, reward_funcs=[worst_off], train_dataset=prompts, ...)

Whose reward: :class:`~pluralrm.integrations.rewards.RewardSpec` (one group, the shared reward,
or ``"all"`` with a rule), or per sample from a dataset column (``group_column``: each value a
spec like ``"country=NG"``, ``"all"``, a mapping, or a bare value of ``group_attribute``;
empty = ``groups``). Both TRL formats are accepted (:mod:`pluralrm.integrations.conversation`).
This module imports neither torch nor TRL: it returns a plain list of floats.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pluralrm.errors import DataError
from pluralrm.integrations.conversation import texts
from pluralrm.integrations.rewards import RewardSpec, check_spec, compute_rewards, parse_row_group


class PluralRewardFunction:
    """The callable TRL receives (see the module docstring); ``last_notes`` keeps the
    unseen-group policy's messages of the latest call, which are also logged through TRL's
    ``log_extra`` (column ``pluralrm_notes``) when TRL offers it."""

    def __init__(self, model: Any, spec: RewardSpec = RewardSpec(), group_column: str | None = None,
                 group_attribute: str | None = None, name: str | None = None):
        self.model, self.spec = model, spec
        self.group_column, self.group_attribute = group_column, group_attribute
        self.__name__ = name or _default_name(spec, group_column)
        self.last_notes: list[str] = []
        check_spec(model, spec)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Any = None,
                 **kwargs: Any) -> list[float]:
        prompt_texts, completion_texts = texts(prompts, completions)
        row_groups = None
        if self.group_column is not None:
            if self.group_column not in kwargs:
                columns = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric"))
                raise DataError(f"the dataset has no column {self.group_column!r} (its columns: {columns})",
                                field=self.group_column)
            values = kwargs[self.group_column]
            row_groups = [self.spec.groups if (g := parse_row_group(v, self.group_attribute,
                                                                    f"{self.group_column}.{i}")) is None else g
                          for i, v in enumerate(values)]
        rewards, notes = compute_rewards(self.model, prompt_texts, completion_texts, self.spec, row_groups)
        self.last_notes = notes
        log_extra = kwargs.get("log_extra")
        if notes and callable(log_extra):
            log_extra("pluralrm_notes", ["; ".join(notes)] * len(prompt_texts))
        return [float(r) for r in rewards]


def _default_name(spec: RewardSpec, group_column: str | None) -> str:
    if group_column is not None:
        return f"pluralrm_by_{group_column}"
    if spec.groups is None:
        return "pluralrm_pooled"
    if spec.groups == "all":
        return f"pluralrm_{spec.aggregate}"
    label = spec.label.replace("=", "_").replace(",", "_")
    return f"pluralrm_{label}"


def reward_function(
    model: Any,
    groups: str | Mapping[str, str] | None = None,
    aggregate: str = "mean",
    *,
    group_column: str | None = None,
    group_attribute: str | None = None,
    weights: str | Sequence[float] | None = None,
    normalize: str = "none",
    q: float | None = None,
    temperature: float | None = None,
    fallback: str = "pooled",
    name: str | None = None,
    checkpoint: str = "best",
) -> PluralRewardFunction:
    """A TRL reward function from a RewardModel, a model/run directory, or a hub repo id.

    Args:
      model: a :class:`~pluralrm.models.reward_model.RewardModel` or what ``RewardModel.load`` takes.
      groups: the default group (``"country=NG"``), ``"all"`` (every group combined by
        ``aggregate``) or None (the shared reward).
      aggregate, weights, normalize, q, temperature: the rule over groups for ``"all"``.
      group_column: a dataset column naming each sample's group (TRL passes it as a kwarg);
        group_attribute: the attribute its bare values belong to (``"NG"`` with ``"country"``).
      fallback: unseen group values: ``pooled`` (warned), ``error`` or ``nearest``.
      name: the function's ``__name__`` (TRL's metric names); derived from the spec if None.
    """
    if isinstance(model, (str, Path)):
        from pluralrm.models.reward_model import RewardModel

        model = RewardModel.load(model, checkpoint)
    params = {k: v for k, v in (("q", q), ("temperature", temperature)) if v is not None}
    spec = RewardSpec(groups=groups, aggregate=aggregate, weights=weights, normalize=normalize, params=params,
                      fallback=fallback)
    return PluralRewardFunction(model, spec, group_column, group_attribute, name)


__all__ = ["PluralRewardFunction", "reward_function"]
