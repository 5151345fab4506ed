"""Scoring across groups: reward tables, aggregation rules, best-of-n, file scoring.

A reward model conditioned on groups gives each response a reward *per group*: a table
``[N, G]`` (:func:`group_scores`, one backbone pass for all groups). This package turns such
tables into decisions:

- :func:`aggregate` — one score per candidate under a social-choice rule (utilitarian
  ``mean``/``weighted``, Rawlsian ``worst``, ``quantile``, ``softmin``; ranking rules
  ``borda`` and ``majority``), optionally after per-group standardisation
  (:func:`standardize`; why it matters: :mod:`pluralrm.score.normalize`).
- :func:`best_of_n` / :func:`select` — the best candidate and the group that decided it.
- :func:`score_file` — constant-memory scoring of JSONL/CSV/Parquet files (``pluralrm score``).

Example::

    rm = pluralrm.RewardModel.load("runs/x")
    result = best_of_n(rm, "How should I greet my elders?", candidates, rule="worst",
                       normalize="zscore")
    result.index, result.decisive_label
"""
from pluralrm.score.best_of_n import BestOfN, Selection, best_of_n, select
from pluralrm.score.files import ScoreFileConfig, ScoreFileReport, score_file
from pluralrm.score.normalize import NORMALIZATIONS, GroupStats, group_stats, standardize
from pluralrm.score.rules import RULES, Rule, aggregate
from pluralrm.score.table import group_scores, population_weights

__all__ = [
    "BestOfN",
    "GroupStats",
    "NORMALIZATIONS",
    "RULES",
    "Rule",
    "ScoreFileConfig",
    "ScoreFileReport",
    "Selection",
    "aggregate",
    "best_of_n",
    "group_scores",
    "group_stats",
    "population_weights",
    "score_file",
    "select",
    "standardize",
]
