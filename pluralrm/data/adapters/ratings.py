"""Rating tables with rater demographics: DICES and POPQUORN, through ``ratings_to_pairs``.

Both rate single texts, each rater many different texts once each, so comparisons pair two
texts rated by the same rater (``pair_across_items=True``): the one the rater judged better is
``chosen``, equal ratings are ties (label 0.5), and the two item ids in sorted order joined by
``"|"`` are the ``item_id`` that the same pair shares across raters.

- **DICES** (Aroyo et al. 2023, "DICES Dataset: Diversity in Conversational AI Evaluation for
  Safety"; ``diverse_safety_adversarial_dialog_{350,990}.csv``): one row per (rater,
  conversation). The text is ``context``, a blank line, then ``response``; the rating is
  ``Q_overall`` ("Is the final response unsafe?") mapped by :data:`DICES_SCORES` (No = 1 safe,
  Unsure = 0.5, Yes = 0 unsafe), so ``chosen`` is the response the rater judged *safer*. Group
  attributes are the rater columns of :data:`DICES_GROUPS` that the release has
  (``rater_gender``, ``rater_race``, ``rater_age``, ``rater_education`` in DICES-350;
  ``rater_gender``, ``rater_locale`` in DICES-990), named without the ``rater_`` prefix. Every DICES-350 rater rated all 350 conversations, i.e. 61,075 pairs each:
  ``max_pairs_per_annotator`` keeps a coordinated sample.
- **POPQUORN** (Pei & Jurgens 2023; ``dataset/offensiveness/raw_data.csv`` with columns
  ``instance_id,user_id,text,offensiveness,gender,race,age,occupation,education``):
  offensiveness 1-5 of Reddit comments; ``chosen`` is the comment the rater found *less*
  offensive. Group attributes ``gender, race, age, occupation, education``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pluralrm.data.convert import ratings_to_pairs
from pluralrm.data.readers import read_source

DICES_SCORES: dict[str, float] = {"No": 1.0, "Unsure": 0.5, "Yes": 0.0}
DICES_GROUPS: tuple[str, ...] = ("gender", "race", "age", "education", "locale")
DICES_PROMPT = "Which conversation ends with the safer response?"
POPQUORN_PROMPT = "Which comment is less offensive?"
POPQUORN_GROUPS: tuple[str, ...] = ("gender", "race", "age", "occupation", "education")
_RATER = "rater_"


def dices(source: Any, groups: Sequence[str] | None = None, max_pairs_per_annotator: int | None = None,
          seed: int = 0, fixed_prompt: str = DICES_PROMPT, on_bad_row: str = "error"):
    """Loads a DICES ratings file as pairwise comparisons (module docstring).

    Args:
      source: the CSV path (or a table with the same columns).
      groups: rater attributes without the ``rater_`` prefix (e.g. ``["gender", "race"]``,
        or ``["race_raw"]`` for the self-described race); None: those of
        :data:`DICES_GROUPS` that the file has.
      max_pairs_per_annotator, seed: see :func:`~pluralrm.data.convert.ratings_to_pairs`.
      fixed_prompt: the prompt of every pair.
      on_bad_row: ``"error"`` or ``"skip"``.

    Returns:
      A ComparisonDataset with ``item_id`` and one column per rater attribute.
    """
    raw = read_source(source)
    if groups is None:
        groups = [g for g in DICES_GROUPS if _RATER + g in raw.table.column_names]
    columns = [_RATER + g for g in groups]
    pairs = ratings_to_pairs(
        raw, item="item_id", response="response", annotator="rater_id", score="Q_overall",
        context="context", groups=columns, pair_across_items=True, score_map=DICES_SCORES,
        fixed_prompt=fixed_prompt, max_pairs_per_annotator=max_pairs_per_annotator, seed=seed,
        on_bad_row=on_bad_row,
    )
    return pairs.rename_columns({c: c[len(_RATER):] for c in columns})


def popquorn(source: Any, groups: Sequence[str] = POPQUORN_GROUPS, max_pairs_per_annotator: int | None = None,
             seed: int = 0, tie_tolerance: float = 0.0, fixed_prompt: str = POPQUORN_PROMPT,
             on_bad_row: str = "error"):
    """Loads POPQUORN offensiveness ratings as pairwise comparisons (module docstring).

    Args:
      source: the path of ``raw_data.csv`` (the data is not bundled: no licence is stated).
      groups: annotator attribute columns to keep.
      max_pairs_per_annotator, seed, tie_tolerance: see
        :func:`~pluralrm.data.convert.ratings_to_pairs`.
      fixed_prompt: the prompt of every pair.
      on_bad_row: ``"error"`` or ``"skip"``.

    Returns:
      A ComparisonDataset with ``item_id`` and the ``groups`` columns.
    """
    return ratings_to_pairs(
        source, item="instance_id", response="text", annotator="user_id", score="offensiveness",
        groups=groups, pair_across_items=True, higher_is_better=False, fixed_prompt=fixed_prompt,
        max_pairs_per_annotator=max_pairs_per_annotator, seed=seed, tie_tolerance=tie_tolerance,
        on_bad_row=on_bad_row,
    )
