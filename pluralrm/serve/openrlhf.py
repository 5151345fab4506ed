"""OpenRLHF's remote reward protocol: ``POST /get_reward``.

OpenRLHF (``--remote_rm_url http://HOST:PORT/get_reward``) posts, per rollout,
``{"query": [prompt + response as decoded text], "prompts": [prompt], "labels": [label]}``
with ``Content-Type: application/json`` and reads ``rewards`` (and ``scores``, falling back to
``rewards``, and ``extra_logs``) from the JSON answer: ``openrlhf/utils/agent.py``
(``SingleTurnAgentExecutor._fetch_rewards_via_http``) and ``openrlhf/cli/serve_rm.py``
(answer ``{"rewards", "scores", "extra_logs"}``) at OpenRLHF commit 3c3be62 (2026-08-13).
Older clients (``openrlhf/utils/remote_rm_utils.py``) post ``{"query": [...]}`` alone.

The response text is ``query`` minus its ``prompts`` prefix (without ``prompts``: the whole
query, under an empty prompt); ``strip_texts`` (e.g. ``</s>``, ``<|im_end|>``) are removed
from its end. Whose reward (:class:`~pluralrm.integrations.rewards.RewardSpec`): the server's
default (``--reward-groups``, ``--reward-aggregate``), or per row from OpenRLHF's ``labels``
with ``--groups-from-labels`` (each label a group spec, ``"all"``, or a bare value of the named
attribute), or per request from the pluralrm extension field ``groups``. Unseen group values
follow the server's ``--unseen`` policy, reported in ``warnings`` and ``unseen_policy``, and per
row in ``extra_logs["pluralrm_unseen_group"]`` (1.0 where the row's group was replaced by the
policy), which OpenRLHF logs like its other per-sample extras.
"""
# no `from __future__ import annotations`: FastAPI reads the body model from the annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from starlette.exceptions import HTTPException

from pluralrm.data.schema import parse_group_spec
from pluralrm.errors import ConfigError, DataError
from pluralrm.integrations.rewards import ALL, RewardSpec, aggregate_groups, check_spec, parse_row_group, resolve_rows
from pluralrm.serve.requests import FieldError, Limits


@dataclass(frozen=True)
class RlhfConfig:
    """The OpenRLHF route's settings: the default reward, where per-row groups come from, and
    the texts stripped from the end of each response."""

    reward: RewardSpec = RewardSpec()
    groups_from_labels: bool = False
    label_attribute: str | None = None
    strip_texts: tuple[str, ...] = ()


def reward_request_model(limits: Limits) -> type[BaseModel]:
    """``GetRewardRequest`` with text lengths capped at ``limits.max_text_chars``."""
    Text = Annotated[str, StringConstraints(max_length=limits.max_text_chars)]
    Label = Annotated[str, StringConstraints(max_length=1000)]
    GroupSpec = Label | dict[Label, Label]

    class GetRewardRequest(BaseModel):
        """``POST /get_reward`` (OpenRLHF): ``query`` (prompt + response texts), optional
        ``prompts`` and ``labels`` (one per query; labels may be anything), and the pluralrm
        extension ``groups`` (one spec, ``"all"``, or one per query)."""

        model_config = ConfigDict(extra="forbid")
        query: list[Text]
        prompts: list[Text] | None = None
        labels: list[Any] | None = None
        groups: GroupSpec | list[GroupSpec | None] | None = None

        @model_validator(mode="after")
        def _consistent(self) -> "GetRewardRequest":
            for name in ("prompts", "labels", "groups"):
                value = getattr(self, name)
                if isinstance(value, list) and len(value) != len(self.query):
                    raise FieldError(name, f"{len(value)} {name} for {len(self.query)} queries (one per query)")
            return self

    return GetRewardRequest


def split_queries(query: list[str], prompts: list[str] | None,
                  strip_texts: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    """``(prompts, responses, notes)``: each query cut after its prompt (see the module docstring)."""
    if prompts is None:
        prompts = [""] * len(query)
    responses, notes = [], []
    for i, (q, p) in enumerate(zip(query, prompts)):
        if q.startswith(p):
            r = q[len(p):]
        else:
            k = 0
            while k < min(len(p), len(q)) and p[k] == q[k]:
                k += 1
            r = q[k:]
            notes.append(f"query.{i}: does not start with prompts.{i}; scored the text after their first "
                         f"{k} common characters as the response")
        changed = True
        while changed:
            changed = False
            for t in strip_texts:
                if t and r.endswith(t):
                    r, changed = r[: -len(t)], True
        responses.append(r)
    return list(prompts), responses, notes


def row_groups(body: Any, config: RlhfConfig) -> list[Any] | None:
    """Per-row group specs of a request, or None (the server's default for every row)."""
    n = len(body.query)
    if body.groups is not None:
        if isinstance(body.groups, list):
            return [parse_row_group(g, None, f"groups.{i}") for i, g in enumerate(body.groups)]
        return [parse_row_group(body.groups, None, "groups")] * n
    if config.groups_from_labels:
        if body.labels is None:
            raise FieldError("labels", "this server reads each row's group from labels (--groups-from-labels)")
        return [parse_row_group(v, config.label_attribute, f"labels.{i}") for i, v in enumerate(body.labels)]
    return None


def add_openrlhf_route(app: FastAPI, model: Any, limits: Limits, config: RlhfConfig) -> None:
    """Registers ``POST /get_reward`` on ``app`` (its micro-batcher is ``app.state.batcher``)."""
    GetRewardRequest = reward_request_model(limits)
    spec = config.reward
    try:
        check_spec(model, spec)
    except (ConfigError, DataError) as e:
        raise ConfigError(f"the /get_reward default reward ({spec.label}): {getattr(e, 'reason', e)}") from None

    @app.post("/get_reward")
    async def get_reward(body: GetRewardRequest, request: Request) -> dict[str, Any]:
        if len(body.query) > limits.max_items:
            raise HTTPException(413, f"query: {len(body.query)} items, more than this server's limit of "
                                     f"{limits.max_items} per request")
        try:
            groups = row_groups(body, config)
            prompts, responses, notes = split_queries(body.query, body.prompts, config.strip_texts)
            specs = groups if groups is not None else [spec.groups] * len(prompts)
            resolved, unseen = resolve_rows(model, specs, spec.fallback)
        except FieldError as e:
            raise HTTPException(422, f"body.{e}") from None
        except DataError as e:
            raise HTTPException(422, f"body.{e.field or 'groups'}: {e.reason}") from None
        batcher = request.app.state.batcher
        rewards = np.zeros(len(prompts), np.float32)
        one = [i for i, s in enumerate(resolved) if s != ALL]
        every = [i for i, s in enumerate(resolved) if s == ALL]
        if one:
            rewards[one] = await batcher.submit("score", {"prompts": [prompts[i] for i in one],
                                                          "responses": [responses[i] for i in one],
                                                          "groups": [resolved[i] for i in one]})
        if every:
            p = [prompts[i] for i in every]
            table = await batcher.submit("all_groups", {"prompts": p, "responses": [responses[i] for i in every]})
            rewards[every] = await batcher.run_in_worker(lambda: aggregate_groups(table, spec, model.schema, p))
        values = rewards.tolist()
        fell_back = [float(r != ALL and parse_group_spec(s or {}) != r) for s, r in zip(specs, resolved)]
        return {"rewards": values, "scores": values, "extra_logs": {"pluralrm_unseen_group": fell_back},
                "warnings": notes + unseen,
                "unseen_policy": spec.fallback, "reward": "per-row groups" if groups is not None else spec.label}


__all__ = ["RlhfConfig", "add_openrlhf_route", "reward_request_model", "row_groups", "split_queries"]
