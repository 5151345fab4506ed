"""Pointwise ratings to pairwise comparisons, and per-group empirical preference rates.

Many datasets with annotator demographics rate single texts (POPQUORN: offensiveness 1-5;
DICES: safe / unsafe; PRISM: a 1-100 slider per response). :func:`ratings_to_pairs` turns
them into comparisons *by the same annotator*, which is what a Bradley-Terry reward model and
the agreement statistics need; :func:`preference_rates` counts, per comparison unit and group,
how many votes went which way.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pluralrm.data.badrows import BadRows, RowProblem, check_policy, resolve
from pluralrm.data.columns import arrow_column, value_codes
from pluralrm.data.pairs import CanonicalPairs, canonicalize_dataset
from pluralrm.data.readers import RawTable, read_source
from pluralrm.data.validate import parse_numbers, string_column, text_column
from pluralrm.errors import ConfigError, DataError

DEFAULT_PROMPT = "Which response is better?"


def ratings_to_pairs(
    table: Any,
    item: str,
    response: str,
    annotator: str,
    score: str,
    prompt: str | None = None,
    groups: Sequence[str] = (),
    pair_across_items: bool = False,
    max_pairs_per_annotator: int | None = None,
    seed: int = 0,
    tie_tolerance: float = 0.0,
    fixed_prompt: str = DEFAULT_PROMPT,
    context: str | None = None,
    score_map: Mapping[str, float] | None = None,
    higher_is_better: bool = True,
    on_bad_row: str = "error",
):
    """Pairs the ratings each annotator gave into comparisons.

    Two ways to pair:

    - within items (default): every two different responses to the same item rated by the
      same annotator. The prompt is the ``prompt`` column (or ``fixed_prompt``), ``item_id``
      the item.
    - across items (``pair_across_items=True``), for data where each annotator rates many
      different texts once each (POPQUORN, DICES): every two texts of different items rated
      by the same annotator, with ``fixed_prompt`` as the prompt and ``item_id = "a|b"``, the
      two item ids in sorted order, so that the same unordered pair judged by different
      annotators shares an item id (and a unit in :func:`~pluralrm.data.pairs.canonicalize`).

    The preferred (higher-scoring, or lower with ``higher_is_better=False``) text is
    ``chosen`` with label 1.0; scores within ``tie_tolerance`` of each other give label 0.5
    (``chosen`` is then the earlier row). ``max_pairs_per_annotator`` keeps, per annotator,
    the pairs with the smallest seeded hash of the pair's texts, so the choice is
    deterministic and *coordinated*: a pair kept for one annotator is kept for every other
    annotator who rated both texts and has room, which keeps pairs shared across annotators
    (and groups) for agreement statistics.

    Args:
      table: the ratings: a path or anything :func:`pluralrm.data.io.load` accepts.
      item, response, annotator, score: column names: the item id, the rated text, who
        rated it, and the rating (a number, or a category mapped by ``score_map``).
      prompt: column with each item's prompt (within-item pairing only).
      groups: annotator attribute columns carried to every pair (as strings).
      pair_across_items: pair different items (see above).
      max_pairs_per_annotator: cap per annotator (None: all pairs).
      seed: seeds the pair hash used by the cap.
      tie_tolerance: |score difference| at or below which a pair is a tie.
      fixed_prompt: the prompt of every pair when ``prompt`` is None.
      context: column of per-item context (e.g. the conversation before the rated reply),
        put before each response text with a blank line between.
      score_map: ``{category: number}`` for categorical ratings (keys compared as strings);
        any other value is a bad row.
      higher_is_better: False when a higher score means *less* preferred (e.g. offensiveness).
      on_bad_row: ``"error"`` or ``"skip"`` for ratings with a missing or malformed field.

    Returns:
      A ComparisonDataset with ``item_id`` and the ``groups`` columns.
    """
    check_policy(on_bad_row)
    if tie_tolerance < 0:
        raise ConfigError(f"tie_tolerance must be >= 0, got {tie_tolerance}")
    if pair_across_items and prompt is not None:
        raise ConfigError("pairs across items share one prompt: pass fixed_prompt=, not prompt= "
                          "(put per-item context before the text with context=)")
    raw = table if isinstance(table, RawTable) else read_source(table)
    ratings = validated_ratings(raw, item, response, annotator, score, prompt=prompt, context=context,
                                groups=groups, score_map=score_map, on_bad_row=on_bad_row)
    if not higher_is_better:
        ratings["score"] = -ratings["score"]
    left, right = rating_pairs(ratings, pair_across_items, max_pairs_per_annotator, seed, raw.source)
    columns = pair_columns(ratings, left, right, pair_across_items, tie_tolerance, fixed_prompt, groups)
    return columns_to_dataset(columns)


def validated_ratings(
    raw: RawTable,
    item: str,
    response: str,
    annotator: str,
    score: str,
    prompt: str | None = None,
    context: str | None = None,
    groups: Sequence[str] = (),
    score_map: Mapping[str, float] | None = None,
    carry: Sequence[str] = (),
    on_bad_row: str = "error",
) -> dict[str, np.ndarray]:
    """Checks a ratings table and returns the kept ratings as numpy columns.

    Returns:
      ``item, annotator, response`` (context first when given) and ``prompt`` as object arrays
      of str, ``score`` float64, ``group:<name>`` per group (str), ``carry:<name>`` per carried
      column (Python values, unchecked), ``item_code`` and ``annotator_code`` int64, all
      ``[R]`` for the R kept ratings.
    """
    t = raw.table
    needed = [item, response, annotator, score, prompt, context, *groups, *carry]
    for name in filter(None, needed):
        if name not in t.column_names:
            raise DataError(f"the ratings have no column {name!r} (columns: {t.column_names})",
                            file=raw.source, field=name)
    bad = BadRows(t.num_rows)
    bad.add_known(raw.problems)
    out: dict[str, Any] = {}
    for key, name in (("item", item), ("annotator", annotator), *((f"group:{g}", g) for g in groups)):
        strings, missing, nested = string_column(t.column(name))
        required = missing if key in ("item", "annotator") else np.zeros_like(missing)
        bad.add(required | nested, lambda i, name=name: RowProblem(
            name, "must be a single value (string or number)", t.column(name)[i].as_py()))
        out[key] = strings
    for key, name in (("context", context), ("response", response), ("prompt", prompt)):
        if name:
            out[key] = text_column(name, t.column(name), bad)
    values = _scores(t.column(score), score, score_map, bad)
    for name in carry:
        out[f"carry:{name}"] = t.column(name)
    keep, _ = resolve(bad, on_bad_row, raw.source, raw.locate)
    mask = pa.array(keep)
    kept = {k: v.filter(mask) for k, v in out.items() if v is not None}
    ratings = {k: np.asarray(v.to_pylist(), dtype=object) for k, v in kept.items()}
    ratings["item_code"] = value_codes(kept["item"])[1]
    ratings["annotator_code"] = value_codes(kept["annotator"])[1]
    if "context" in ratings:
        ratings["response"] = ratings.pop("context") + "\n\n" + ratings["response"]
    ratings["score"] = values[keep]
    return ratings


def _scores(col: pa.ChunkedArray, name: str, score_map: Mapping[str, float] | None, bad: BadRows) -> np.ndarray:
    if score_map is None:
        values, missing, not_number = parse_numbers(col, text=True)
        with np.errstate(invalid="ignore"):
            bad.add(missing | not_number | ~np.isfinite(values),
                    lambda i: RowProblem(name, "must be a finite number", col[i].as_py()))
        return values
    strings, missing, nested = string_column(col)
    keys = np.asarray(strings.to_pylist() if strings is not None else [""] * len(col), dtype=object)
    lookup = {str(k): float(v) for k, v in score_map.items()}
    known = np.fromiter((k in lookup for k in keys), dtype=bool, count=len(keys))
    bad.add(~known | missing | nested, lambda i: RowProblem(
        name, f"must be one of {sorted(lookup)}", col[i].as_py()))
    return np.array([lookup.get(k, np.nan) for k in keys], dtype=np.float64)


def rating_pairs(ratings: dict[str, np.ndarray], across: bool, max_pairs_per_annotator: int | None,
                 seed: int, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ratings to compare, ``(left [P], right [P])`` row indices (see ratings_to_pairs)."""
    if max_pairs_per_annotator is not None and max_pairs_per_annotator < 1:
        raise ConfigError(f"max_pairs_per_annotator must be >= 1 or None, got {max_pairs_per_annotator}")
    left, right = _pairs(ratings, across)
    if max_pairs_per_annotator is not None:
        keep = _coordinated_sample(ratings, left, right, across, max_pairs_per_annotator, seed)
        left, right = left[keep], right[keep]
    if len(left) == 0:
        hint = "" if across else (" (for data where each annotator rates different texts once "
                                  "each, pass pair_across_items=True)")
        raise DataError(f"no annotator rated two texts that could be paired{hint}", file=source)
    return left, right


def _pairs(ratings: dict[str, np.ndarray], across: bool) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of rows ``(left [P], right [P])`` by the same annotator (and item, unless across)."""
    annotator, item = ratings["annotator_code"], ratings["item_code"]
    rows = np.arange(len(annotator))
    key = annotator if across else annotator * (item.max() + 1) + item
    order = np.lexsort((rows, key))
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    left, right = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for s in np.unique(sizes[sizes >= 2]):
        j, k = np.triu_indices(s, 1)
        first = starts[sizes == s][:, None]
        left.append(order[(first + j).ravel()])
        right.append(order[(first + k).ravel()])
    left, right = np.concatenate(left), np.concatenate(right)
    differ = item[left] != item[right] if across else ratings["response"][left] != ratings["response"][right]
    left, right = left[differ], right[differ]
    order = np.lexsort((right, left))  # pairs in the order of their rows
    return left[order], right[order]


def _coordinated_sample(ratings: dict[str, np.ndarray], left: np.ndarray, right: np.ndarray,
                        across: bool, k: int, seed: int) -> np.ndarray:
    """``[P]`` bool: per annotator, the k pairs with the smallest seeded hash of the pair."""
    texts = ratings["item"] if across else ratings["item"] + "\x1f" + ratings["response"]
    uniq, inverse = np.unique(texts, return_inverse=True)
    row_hash = np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
                         for s in uniq], dtype=np.uint64)[inverse]
    a, b = row_hash[left], row_hash[right]
    priority = _mix(np.minimum(a, b) ^ _mix(np.maximum(a, b) + np.uint64(seed % 2**64)))
    annotator = ratings["annotator_code"][left]
    order = np.lexsort((priority, annotator))
    sorted_ann = annotator[order]
    starts = np.flatnonzero(np.r_[True, sorted_ann[1:] != sorted_ann[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = np.zeros(len(left), dtype=bool)
    keep[order[rank < k]] = True
    return keep


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 (Steele, Lea & Flood 2014)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def pair_columns(ratings: dict[str, np.ndarray], left: np.ndarray, right: np.ndarray, across: bool,
                 tie_tolerance: float, fixed_prompt: str, groups: Sequence[str]) -> dict[str, np.ndarray]:
    """ComparisonDataset columns ``[P]`` for the pairs ``(left, right)`` (see ratings_to_pairs)."""
    diff = ratings["score"][left] - ratings["score"][right]
    tie = np.abs(diff) <= tie_tolerance
    swap = (diff < 0) & ~tie
    chosen, rejected = np.where(swap, right, left), np.where(swap, left, right)
    items = ratings["item"]
    if across:
        lo, hi = np.minimum(items[left], items[right]), np.maximum(items[left], items[right])
        item_id = lo + "|" + hi
    else:
        item_id = items[left]
    prompt = ratings["prompt"][left] if "prompt" in ratings else np.full(len(left), fixed_prompt, object)
    columns = {
        "prompt": prompt,
        "chosen": ratings["response"][chosen],
        "rejected": ratings["response"][rejected],
        "label": np.where(tie, 0.5, 1.0),
        "annotator_id": ratings["annotator"][left],
        "weight": np.ones(len(left)),
        "item_id": item_id,
    }
    columns.update({g: ratings[f"group:{g}"][left] for g in groups})
    return columns


def columns_to_dataset(columns: Mapping[str, np.ndarray]):
    """numpy columns (object arrays hold strings) to a ``datasets.Dataset``."""
    from pluralrm.data.io import to_dataset

    return to_dataset(pa.table({k: pa.array(v, type=pa.string() if v.dtype == object else None)
                                for k, v in columns.items()}))


def preference_rates(dataset, by: Sequence[str] = (), pairs: CanonicalPairs | None = None) -> dict[str, np.ndarray]:
    """Per comparison unit and group: votes ``n``, their sum ``k`` and the rate ``k / n``.

    Units come from :func:`pluralrm.data.pairs.canonicalize_dataset`: one prompt (or item id)
    and one unordered pair of responses. A row's vote is its label turned to P(unit's first
    response ≻ second), so ties count 0.5 and soft labels their probability.

    Args:
      dataset: a ComparisonDataset.
      by: group attributes; one output row per (unit, value combination) seen. ``()``: one
        row per unit (the pooled rate). The unknown value ``""`` is a value like any other.
      pairs: ``canonicalize_dataset(dataset)`` when the caller has it already.

    Returns:
      A dict of numpy arrays, R rows each, sorted by unit then values: ``unit`` int64 (the
      unit id of ``canonicalize_dataset``), one object array of str per attribute in ``by``,
      ``n`` int64 votes, ``k`` float64 sum of votes, ``rate`` float64 = k / n, the empirical
      P(first ≻ second) of that group on that unit.
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [a for a in by if a not in dataset.column_names]
    if missing:
        raise DataError(f"preference_rates: no column {missing[0]!r} (columns: {dataset.column_names})",
                        field=missing[0])
    pairs = canonicalize_dataset(dataset) if pairs is None else pairs
    values, codes = zip(*(value_codes(arrow_column(dataset, a)) for a in by)) if by else ((), ())
    keys = np.stack([pairs.unit, *codes], axis=1).reshape(len(pairs.unit), 1 + len(by))
    uniq_keys, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n = np.bincount(inverse, minlength=len(uniq_keys))
    k = np.bincount(inverse, weights=pairs.vote, minlength=len(uniq_keys))
    out: dict[str, np.ndarray] = {"unit": uniq_keys[:, 0].astype(np.int64)}
    for j, a in enumerate(by):
        out[a] = values[j][uniq_keys[:, 1 + j]].astype(object)
    out.update(n=n.astype(np.int64), k=k, rate=k / n)
    return out
