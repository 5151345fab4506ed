"""Simulated societies for the studies: one per seed, fresh probe items for the same society,
and a model's held-out predictions read against the truth."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments import common
from pluralrm.errors import ConfigError
from pluralrm.simulate import SocietyConfig, generate


def make_society(study: common.StudyConfig, seed: int, **changes: Any):
    """The study's society for one seed (``society.seed + seed``), with knobs changed."""
    config = SocietyConfig.from_dict(study.society, source="study config 'society'")
    return generate(config.replace(seed=config.seed + seed, **changes))


def probe_set(results: Sequence[Any], items: int, **changes: Any):
    """Fresh items judged by the *same* society: a fixed set on which models trained on
    different data from that society are compared with the truth.

    The society (value weights, annotators, harm holders) is drawn from streams that depend
    only on the seed and the society knobs, so changing ``comparisons`` and
    ``annotators_per_item`` (and item knobs in ``changes``: candidate sampling, harm rates)
    draws new items for the same people; that is checked. Probe items equal to an item of any
    of ``results`` (same profiles and harms) are dropped, so no model is scored on an item it
    was trained on.

    Args:
      results: SimulationResults of one society (the training data of the models compared).
      items: number of probe items to draw (one row each).
      changes: item knobs for the probe.

    Returns:
      ``(probe SimulationResult, rows [P])``: the probe and the indices of its rows to use.
    """
    base = results[0]
    probe = generate(base.config.replace(comparisons=items, annotators_per_item=1, **changes))
    for result in results:
        same = all(np.array_equal(getattr(result.truth, k), getattr(probe.truth, k))
                   for k in ("group_value_weights", "annotator_weights", "local_harm_holders"))
        if not same:
            raise ConfigError("probe_set: the probe's society differs from the study's; only item knobs may change")
    seen = set().union(*(_item_keys(r.truth) for r in results))
    rows = np.flatnonzero([k not in seen for k in _item_keys(probe.truth)])
    return probe, rows


def _item_keys(truth) -> list[bytes]:
    """One key per item, the same for both orders of its candidates."""
    side = [np.concatenate([truth.profiles[:, j].astype(np.int8), truth.harm_type[:, j, None],
                            truth.harm_category[:, j, None]], axis=1) for j in (0, 1)]
    return [min(a.tobytes(), b.tobytes()) + max(a.tobytes(), b.tobytes()) for a, b in zip(*side)]


def heldout_predictions(model, data, truth, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model's predictions on held-out rows of a simulated society, from one pass per item.

    Rows of one item share the prompt and the two responses (in either order), so the model
    scores each item once under every group and each row reads its own group's column,
    flipped when its chosen response is the other candidate.

    Args:
      model: a RewardModel.  data: the society's dataset.  truth: its Truth.
      rows: ``[n]`` held-out row indices.

    Returns:
      ``(prob_own [n], prob_items [I, G'], item_rows [I])``: each row's P(chosen ≻ rejected)
      under its own group; every group's P on one representative row per item; those rows.
    """
    rows = np.asarray(rows, np.int64)
    _, first = np.unique(truth.row_item[rows], return_index=True)
    item_rows = rows[first]
    prob_items = common.group_probabilities(model, data.select(item_rows), truth.group_labels)
    which = np.searchsorted(truth.row_item[item_rows], truth.row_item[rows])
    p = prob_items[which, truth.row_group[rows]]
    same = truth.chosen_is_first[rows] == truth.chosen_is_first[item_rows[which]]
    return np.where(same, p, 1.0 - p), prob_items, item_rows
