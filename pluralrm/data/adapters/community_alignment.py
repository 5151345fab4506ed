"""Community Alignment (Zhang et al. 2025, "Cultivating Pluralism in Algorithmic Monoculture:
The Community Alignment Dataset"; Meta, ``facebook/community-alignment-dataset``, CC-BY-4.0).

The released table (``community_alignment.csv``; splits ``full`` and ``filtered``) has one row
per conversation of one annotator, up to four turns. Fields, as released:

- ``conversation_id``, ``annotator_id``, ``assigned_lang`` (the language the annotator was
  assigned: en, fr, it, pt, hi), ``wave`` (v1.1), ``is_pregenerated_first_prompt`` (False: the
  annotator wrote the opening prompt), ``in_balanced_subset``, ``in_balanced_subset_10``;
- demographics: ``annotator_country``, ``annotator_age``, ``annotator_gender``,
  ``annotator_education_level``, ``annotator_political``, ``annotator_ethnicity``;
- per turn ``T`` in ``first, second, third, fourth``: ``T_turn_prompt`` (the user message),
  ``T_turn_response_a`` .. ``T_turn_response_d`` (the candidates), ``T_turn_preferred_response``
  (the chosen one; its last character is the letter, e.g. ``response_b``), ``T_turn_feedback``
  (the annotator's free-text explanation, often empty).

Comparisons, per turn and annotator: the preferred candidate against each other non-empty,
different candidate (label 1.0; the annotator chose one of up to four, so pairs among the
others are unknown and left out). ``item_id`` is the same for a pair of texts under a prompt
whichever of the two was chosen, so agreement across annotators is measured on the same
pairs (orientation-free). The prompt is the conversation so far, rendered as
:func:`pluralrm.data.dialogue.render_messages` renders chat data: earlier user messages and
the responses preferred at those turns (the conversation continued with them), then this
turn's message; ``history=False`` keeps the turn's message alone. A conversation stops at
its first turn without a prompt (the ``full`` split may miss turns). ``annotator_id`` is the
annotator; group attributes come from :data:`CA_GROUPS`. The free-text feedback is not a
group attribute and is left out.
"""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pluralrm.data.adapters.group_fields import group_fields
from pluralrm.data.badrows import DataWarning
from pluralrm.data.dialogue import render_messages
from pluralrm.data.readers import RawTable, read_source
from pluralrm.errors import ConfigError, DataError

# our group attribute -> the dataset's field
CA_GROUPS: dict[str, str] = {
    "country": "annotator_country",
    "language": "assigned_lang",
    "age": "annotator_age",
    "gender": "annotator_gender",
    "education": "annotator_education_level",
    "political": "annotator_political",
    "ethnicity": "annotator_ethnicity",
}
TURNS = ("first", "second", "third", "fourth")
LETTERS = ("a", "b", "c", "d")


def community_alignment(
    source: Any,
    groups: Sequence[str] | Mapping[str, str] | None = None,
    history: bool = True,
    pregenerated_only: bool = False,
    on_bad_row: str = "error",
    format: str | None = None,
):
    """Loads Community Alignment conversations as a ComparisonDataset (module docstring).

    Args:
      source: ``community_alignment.csv`` (or a JSONL/Parquet export, or records) as released.
      groups: attribute names from :data:`CA_GROUPS`, or ``{our_name: field}``; None: all.
      history: prompts carry the conversation so far.
      pregenerated_only: keep only conversations that opened with a pregenerated prompt
        (``is_pregenerated_first_prompt``), as the dataset card suggests for filtering.
      on_bad_row: ``"error"`` (DataError naming the row and field) or ``"skip"`` (drop the
        conversation, with a warning counting them).
      format: as in :func:`pluralrm.data.load`.
    """
    from pluralrm.data.io import to_dataset
    from pluralrm.data.validate import to_comparisons

    if on_bad_row not in ("error", "skip"):
        raise ConfigError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
    fields = group_fields(groups, CA_GROUPS, "Community Alignment")
    raw = read_source(source, format=format)
    t = raw.table
    if t.num_rows == 0:
        raise DataError("has no rows", file=raw.source)
    required = ["annotator_id", "first_turn_prompt", "first_turn_preferred_response", *fields.values()]
    for name in required:
        if name not in t.column_names:
            raise DataError(f"Community Alignment rows need {name!r} (fields: {t.column_names})",
                            file=raw.source, row=raw.locate(0), field=name)
    columns = {name: t.column(name).to_pylist() for name in t.column_names}
    out: dict[str, list] = {k: [] for k in ("prompt", "chosen", "rejected", "label", "annotator_id", "weight",
                                            "item_id", *fields)}
    origin: list[int] = []
    skipped: dict[str, int] = {}
    for i in range(t.num_rows):
        if i in raw.problems:
            _bad(raw, i, raw.problems[i].field, raw.problems[i].reason, on_bad_row, skipped)
            continue
        if pregenerated_only and not _is_true(columns.get("is_pregenerated_first_prompt", [None] * (i + 1))[i]):
            continue
        try:
            pairs = _conversation_pairs(columns, i, history)
        except _RowError as e:
            _bad(raw, i, e.field, e.reason, on_bad_row, skipped)
            continue
        annotator = _text(columns["annotator_id"][i])
        values = {ours: _text(columns[field][i]) for ours, field in fields.items()}
        for prompt, chosen, rejected in pairs:
            out["prompt"].append(prompt)
            out["chosen"].append(chosen)
            out["rejected"].append(rejected)
            out["label"].append(1.0)
            out["annotator_id"].append(annotator)
            out["weight"].append(1.0)
            out["item_id"].append(pair_item_id(prompt, chosen, rejected))
            for ours, v in values.items():
                out[ours].append(v)
            origin.append(i)
    if skipped:
        reasons = "; ".join(f"{n} x {r}" for r, n in list(skipped.items())[:3])
        warnings.warn(f"{raw.source or 'community alignment'}: skipped {sum(skipped.values())} conversation(s) "
                      f"with bad rows ({reasons})", DataWarning, stacklevel=2)
    if not origin:
        raise DataError("has no comparisons (no conversation with a prompt, two candidates and a preferred one)",
                        file=raw.source)
    table = pa.table({k: pa.array(v, pa.float64() if k in ("label", "weight") else pa.string())
                      for k, v in out.items()})
    rows = RawTable(table, raw.source, lambda j: raw.locate(origin[j]))
    validated, _ = to_comparisons(rows, groups=list(fields), on_bad_row=on_bad_row)
    return to_dataset(validated)


def pair_item_id(prompt: str, a: str, b: str) -> str:
    """An id for (prompt, {a, b}) that does not depend on which of a, b was preferred."""
    x, y = sorted((a, b))
    return hashlib.sha1("\x1f".join((prompt, x, y)).encode("utf-8")).hexdigest()[:16]


class _RowError(Exception):
    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason


def _conversation_pairs(columns: dict[str, list], i: int, history: bool) -> list[tuple[str, str, str]]:
    messages: list[dict[str, str]] = []
    pairs = []
    for turn in TURNS:
        user = _text(columns.get(f"{turn}_turn_prompt", [None] * (i + 1))[i])
        if not user:
            break
        candidates = {c: _text(columns.get(f"{turn}_turn_response_{c}", [None] * (i + 1))[i]) for c in LETTERS}
        candidates = {c: v for c, v in candidates.items() if v}
        field = f"{turn}_turn_preferred_response"
        preferred = _text(columns.get(field, [None] * (i + 1))[i]).lower()
        if len(candidates) < 2:
            if turn == "first":
                raise _RowError(f"{turn}_turn_response_a", "a turn needs at least two candidate responses")
            break
        letter = preferred[-1:] if preferred else ""
        if letter not in candidates:
            raise _RowError(field, f"must name one of the turn's candidates {sorted(candidates)} "
                                   f"(e.g. 'response_a'), got {preferred!r}")
        prompt = render_messages(messages + [{"role": "user", "content": user}]) if history else user
        best = candidates[letter]
        pairs += [(prompt, best, other) for c, other in sorted(candidates.items()) if c != letter and other != best]
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": best}]
    return pairs


def _bad(raw: RawTable, i: int, field: str | None, reason: str, policy: str, skipped: dict[str, int]) -> None:
    if policy == "error":
        raise DataError(reason, file=raw.source, row=raw.locate(i), field=field)
    key = f"{field}: {reason}" if field else reason
    skipped[key] = skipped.get(key, 0) + 1


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip() if not isinstance(value, str) else value.strip()


def _is_true(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


__all__ = ["CA_GROUPS", "community_alignment", "pair_item_id"]
