"""PRISM (Kirk et al. 2024, "The PRISM Alignment Project"; HannahRoseKirk/prism-alignment).

``utterances.jsonl`` has one row per scored model response: ``utterance_id, interaction_id,
conversation_id, user_id, turn, within_turn_id, conversation_type, user_prompt,
model_response, model_name, model_provider, score`` (1-100 slider), ``if_chosen`` (the
highest-rated response of the turn; random among tied scores) and
``included_in_balanced_subset``. An *interaction* is one human message and the 2-4 responses
the participant scored. ``survey.jsonl`` has one row per participant (``user_id``) with
demographics, some nested: ``location`` (``birth_country``, ``reside_country``,
``birth_subregion``...), ``religion`` and ``ethnicity`` (``self_described``, ``categorised``,
``simplified``). Nested fields are addressed flattened with ``_`` as in the PRISM code book
(``location_reside_country``).

Comparisons are made within an interaction, by its participant:

- ``pairs="chosen"``: the chosen response against each other response of the turn;
  ``pairs="all"``: every two responses of the turn.
- ``labels="hard"``: the higher score is ``chosen``, label 1.0; equal scores give 0.5.
  ``labels="score"``: label = 0.5 + 0.5 · |score difference| / 99, a soft label that is 1.0
  only for 100 vs 1 and 0.5 for equal scores.
- The prompt is the turn's ``user_prompt``; with ``history=True`` it is the conversation so
  far: earlier user messages and the responses chosen at those turns (the ones the
  conversation continued with) then this turn's message, rendered ``"user: ..."`` /
  ``"assistant: ..."`` (:func:`pluralrm.data.dialogue.render_messages`).
- ``item_id`` is the ``interaction_id``, ``annotator_id`` the ``user_id``; group attributes come
  from the survey (:data:`PRISM_GROUPS`). Responses that PRISM stores as the literal
  ``"EMPTY STRING"`` are kept verbatim.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pluralrm.data.adapters.group_fields import group_fields
from pluralrm.data.badrows import DataWarning, RowProblem
from pluralrm.data.convert import columns_to_dataset, pair_columns, rating_pairs, validated_ratings
from pluralrm.data.dialogue import render_messages
from pluralrm.data.readers import RawTable, read_source
from pluralrm.data.validate import parse_numbers, string_column
from pluralrm.errors import ConfigError, DataError

# our group attribute -> survey field (nested fields flattened with "_")
PRISM_GROUPS: dict[str, str] = {
    "country": "location_reside_country",
    "birth_country": "location_birth_country",
    "region": "location_reside_subregion",
    "age": "age",
    "gender": "gender",
    "education": "education",
    "religion": "religion_simplified",
    "ethnicity": "ethnicity_simplified",
    "english_proficiency": "english_proficiency",
}
UTTERANCE_FIELDS = ("interaction_id", "conversation_id", "user_id", "turn", "user_prompt",
                    "model_response", "score", "if_chosen")


def prism(
    utterances: Any,
    survey: Any = None,
    groups: Sequence[str] | Mapping[str, str] | None = None,
    pairs: str = "chosen",
    labels: str = "hard",
    history: bool = False,
    on_bad_row: str = "error",
):
    """Loads PRISM per-turn choices as a ComparisonDataset (module docstring).

    Args:
      utterances: path of ``utterances.jsonl`` (or records with its fields).
      survey: path of ``survey.jsonl``; None: no group attributes.
      groups: attribute names from :data:`PRISM_GROUPS`, or ``{our_name: survey_field}``;
        None: all of :data:`PRISM_GROUPS` when a survey is given.
      pairs: ``"chosen"`` or ``"all"``.
      labels: ``"hard"`` or ``"score"``.
      history: prompts carry the conversation so far.
      on_bad_row: ``"error"`` or ``"skip"``.

    Returns:
      A ComparisonDataset with ``item_id`` and one column per group attribute.
    """
    if pairs not in ("chosen", "all"):
        raise ConfigError(f"pairs must be 'chosen' or 'all', got {pairs!r}")
    if labels not in ("hard", "score"):
        raise ConfigError(f"labels must be 'hard' or 'score', got {labels!r}")
    fields = _group_fields(survey, groups)
    raw = read_source(utterances)
    if raw.table.num_rows == 0:
        raise DataError("has no rows", file=raw.source)
    for name in UTTERANCE_FIELDS:
        if name not in raw.table.column_names:
            raise DataError(f"PRISM utterances need {name!r} (fields: {raw.table.column_names})",
                            file=raw.source, row=raw.locate(0), field=name)
    if fields:
        raw = _join_survey(raw, survey, fields)
    raw = _check_turns(raw)
    ratings = validated_ratings(raw, item="interaction_id", response="model_response", annotator="user_id",
                                score="score", prompt="user_prompt", groups=list(fields),
                                carry=("if_chosen", "turn", "conversation_id"), on_bad_row=on_bad_row)
    if history:
        ratings["prompt"] = _prompts_with_history(ratings)
    left, right = rating_pairs(ratings, False, None, 0, raw.source)
    if pairs == "chosen":
        chosen = _chosen_responses(ratings)
        keep = chosen[left] | chosen[right]
        left, right = left[keep], right[keep]
    columns = pair_columns(ratings, left, right, False, 0.0, "", list(fields))
    if labels == "score":
        gap = np.abs(ratings["score"][left] - ratings["score"][right])
        columns["label"] = np.clip(0.5 + 0.5 * gap / 99.0, 0.5, 1.0)
    return columns_to_dataset(columns)


def _group_fields(survey: Any, groups: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    if survey is None:
        if groups:
            raise ConfigError("PRISM group attributes come from the survey: pass survey=")
        return {}
    return group_fields(groups, PRISM_GROUPS, "PRISM", "survey_field")


def _join_survey(raw: RawTable, survey: Any, fields: dict[str, str]) -> RawTable:
    """Adds one column per group attribute to the utterances, from the participant's survey row."""
    s = read_source(survey)
    used = {c for c in s.table.column_names
            if c == "user_id" or any(f == c or f.startswith(c + "_") for f in fields.values())}
    for row, problem in sorted(s.problems.items()):
        if problem.field is None or problem.field in used:
            raise DataError(problem.reason, file=s.source, row=s.locate(row), field=problem.field,
                            value=problem.value)
    t = s.table.flatten()
    t = t.rename_columns([c.replace(".", "_") for c in t.column_names])
    for field in ("user_id", *fields.values()):
        if field not in t.column_names:
            raise DataError(f"the survey has no field {field!r} (fields: {t.column_names})",
                            file=s.source, field=field)
    ids = string_column(t.column("user_id"))[0].to_pylist()
    index: dict[str, int] = {}
    for i, uid in enumerate(ids):
        if uid in index:
            raise DataError("user_id appears twice in the survey", file=s.source, row=s.locate(i),
                            field="user_id", value=uid)
        index[uid] = i
    users = string_column(raw.table.column("user_id"))[0].to_pylist()
    survey_row = np.array([index.get(u, -1) for u in users], dtype=np.int64)
    if (survey_row < 0).any():
        absent = sorted({u for u, r in zip(users, survey_row) if r < 0})
        warnings.warn(f"{raw.source or 'utterances'}: {len(absent)} participant(s) have no survey row "
                      f"(their group attributes are unknown): {absent[:5]}", DataWarning, stacklevel=3)
    table = raw.table
    for ours, field in fields.items():
        if ours in table.column_names:
            raise ConfigError(f"group attribute {ours!r} clashes with an utterances field; name it otherwise")
        values, _, nested = string_column(t.column(field))
        if values is None or nested.any():
            raise DataError("must be a single value per participant", file=s.source,
                            row=s.locate(int(np.argmax(nested))), field=field)
        values = np.asarray(values.to_pylist() + [""], dtype=object)  # index -1 -> ""
        table = table.append_column(ours, pa.array(values[survey_row], pa.string()))
    return dataclasses.replace(raw, table=table)


def _check_turns(raw: RawTable) -> RawTable:
    """Flags rows whose ``turn`` is not a whole number >= 0."""
    col = raw.table.column("turn")
    values, missing, not_number = parse_numbers(col, text=True)
    with np.errstate(invalid="ignore"):
        bad = missing | not_number | ~(values >= 0) | (values != np.floor(values))
    problems = {int(i): RowProblem("turn", "must be a whole number >= 0", col[int(i)].as_py())
                for i in np.flatnonzero(bad) if int(i) not in raw.problems}
    return dataclasses.replace(raw, problems={**raw.problems, **problems}) if problems else raw


def _is_true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _chosen_responses(ratings: dict[str, np.ndarray]) -> np.ndarray:
    """``[R]`` bool: the response chosen in its interaction (``if_chosen``; else the top score)."""
    flagged = np.array([_is_true(v) for v in ratings["carry:if_chosen"]], dtype=bool)
    item = ratings["item_code"]
    has_flag = np.bincount(item, weights=flagged) > 0
    top = np.full(item.max() + 1, -np.inf)
    np.maximum.at(top, item, ratings["score"])
    return flagged | (~has_flag[item] & (ratings["score"] == top[item]))


def _prompts_with_history(ratings: dict[str, np.ndarray]) -> np.ndarray:
    """Each rating's prompt with the conversation before it (module docstring)."""
    turns: dict[tuple[str, int], tuple[str, str | None]] = {}
    conversation = [str(c) for c in ratings["carry:conversation_id"]]
    turn = [int(float(t)) for t in ratings["carry:turn"]]
    for key, prompt, response, chosen in zip(zip(conversation, turn), ratings["prompt"], ratings["response"],
                                             ratings["carry:if_chosen"]):
        reply = turns.get(key, (prompt, None))[1]
        turns[key] = (prompt, response if _is_true(chosen) else reply)
    out = []
    for conv, now, prompt in zip(conversation, turn, ratings["prompt"]):
        messages = []
        for t in range(now):
            user, reply = turns.get((conv, t), (None, None))
            messages += [{"role": "user", "content": user}] if user is not None else []
            messages += [{"role": "assistant", "content": reply}] if reply is not None else []
        out.append(render_messages(messages + [{"role": "user", "content": prompt}]))
    return np.asarray(out, dtype=object)
