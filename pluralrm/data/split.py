"""Train/validation/test splits that do not leak what they hold out.

A split draws *units* and sends every row of a unit to the same side:

- ``by="random"``: the unit is the row;
- ``by="annotator"``: the annotator (``annotator_id``; all rows with ``""`` form one unit), so
  no annotator is in two splits — the test measures generalisation to new people;
- ``by="item"``: ``item_id`` when the dataset has it, else the prompt, so no item is in two
  splits — the test measures generalisation to new prompts;
- ``by=<group attribute>``: the attribute's values. ``holdout="NG"`` (or a list of values)
  puts exactly those values in the test split — the test measures generalisation to an unseen
  group; without ``holdout``, a ``test_size`` fraction of the known values is drawn. Rows
  whose value is unknown (``""``) stay in training unless ``""`` is held out by name.

Fractions count units, not rows, and are rounded to at least one unit per requested split.
Units are sorted before a ``numpy.random.default_rng(seed)`` permutation, so a split depends
only on the data's content, the seed and the sizes, not on row order or the machine.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pluralrm.data.columns import arrow_column, value_codes
from pluralrm.data.schema import group_attributes
from pluralrm.errors import ConfigError, DataError

SPLIT_MODES: tuple[str, ...] = ("random", "annotator", "item")
TRAIN, VAL, TEST = 0, 1, 2


def split(dataset, by: str = "random", test_size: float = 0.1, seed: int = 0,
          holdout: str | Sequence[str] | None = None):
    """Splits a ComparisonDataset in two (module docstring).

    Args:
      dataset: a ComparisonDataset.
      by: ``"random"``, ``"annotator"``, ``"item"`` or a group attribute.
      test_size: fraction of units in the test split, in (0, 1).
      seed: the permutation seed.
      holdout: with a group attribute, the value(s) to hold out as the test split.

    Returns:
      ``(train, test)`` datasets, rows in their original order.
    """
    assignment = split_assignment(dataset, by, 0.0, test_size, seed, holdout)
    return _select(dataset, assignment, TRAIN), _select(dataset, assignment, TEST)


def train_val_test(dataset, by: str = "random", val_size: float = 0.1, test_size: float = 0.1,
                   seed: int = 0, holdout: str | Sequence[str] | None = None):
    """Splits in three; like :func:`split`, with ``val_size`` of the units for validation.

    With ``holdout``, the held-out values are the test split and the validation units are
    drawn from the other values.

    Returns:
      ``(train, val, test)`` datasets.
    """
    if not 0 < val_size < 1:
        raise ConfigError(f"val_size must be in (0, 1), got {val_size}")
    assignment = split_assignment(dataset, by, val_size, test_size, seed, holdout)
    return tuple(_select(dataset, assignment, part) for part in (TRAIN, VAL, TEST))


def split_assignment(dataset, by: str, val_size: float, test_size: float, seed: int,
                     holdout: str | Sequence[str] | None = None) -> np.ndarray:
    """Which split each row goes to.

    Args:
      dataset, by, seed, holdout: as in :func:`split`.
      val_size: fraction of units for validation (0: none).
      test_size: fraction of units for test (ignored with ``holdout``).

    Returns:
      ``[N]`` int8: ``TRAIN`` (0), ``VAL`` (1) or ``TEST`` (2).
    """
    if holdout is None and not 0 < test_size < 1:
        raise ConfigError(f"test_size must be in (0, 1), got {test_size}")
    if val_size + (0 if holdout is not None else test_size) >= 1:
        raise ConfigError(f"val_size + test_size must be < 1, got {val_size} + {test_size}")
    units, unit_of_row = _units(dataset, by)
    unit_split = np.full(len(units), TRAIN, dtype=np.int8)
    # unknown-group rows ("") stay in training unless held out by name
    drawable = np.ones(len(units), dtype=bool) if by in SPLIT_MODES else units != ""
    if holdout is not None:
        if by in SPLIT_MODES:
            raise ConfigError(f"holdout= applies to a group attribute, not by={by!r}")
        held = [holdout] if isinstance(holdout, str) else list(holdout)
        absent = [h for h in held if h not in set(units)]
        if absent:
            raise DataError(f"holdout value {absent[0]!r} does not occur (values: {list(units)})",
                            field=by, value=absent[0])
        unit_split[np.isin(units, held)] = TEST
        drawable &= ~np.isin(units, held)
        test_size = 0.0
    candidates = np.flatnonzero(drawable)
    sizes = [(TEST, test_size), (VAL, val_size)]
    wanted = [(part, frac) for part, frac in sizes if frac > 0]
    if len(candidates) < len(wanted) + 1:
        raise DataError(f"cannot split {len(candidates)} {_unit_name(by)} into {len(wanted) + 1} "
                        "non-empty parts: a split would be empty", field=None if by == "random" else by)
    order = candidates[np.random.default_rng(seed).permutation(len(candidates))]
    start = 0
    for i, (part, frac) in enumerate(wanted):
        room = len(candidates) - start - (len(wanted) - i)  # leave one unit per later part + train
        count = int(min(max(1, round(frac * len(candidates))), room))
        unit_split[order[start:start + count]] = part
        start += count
    return unit_split[unit_of_row]


def _units(dataset, by: str) -> tuple[np.ndarray, np.ndarray]:
    """``(units [U] sorted, unit of each row [N])``."""
    columns = dataset.column_names
    if by == "random":
        return np.arange(dataset.num_rows), np.arange(dataset.num_rows)
    if by == "annotator":
        name = "annotator_id"
    elif by == "item":
        name = "item_id" if "item_id" in columns else "prompt"
    elif by in group_attributes(dataset):
        name = by
    else:
        raise DataError(f"cannot split by {by!r}: use one of {list(SPLIT_MODES)} or a group "
                        f"attribute {group_attributes(dataset)}", field=by)
    if name not in columns:
        raise DataError(f"cannot split by {by!r}: the dataset has no {name!r} column", field=name)
    return value_codes(arrow_column(dataset, name))


def _unit_name(by: str) -> str:
    return {"random": "rows", "annotator": "annotators", "item": "items"}.get(by, f"values of {by!r}")


def _select(dataset, assignment: np.ndarray, part: int):
    return dataset.select(np.flatnonzero(assignment == part))
