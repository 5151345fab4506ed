"""Surface texts of prompts and responses, written from discrete codes with Arrow kernels.

Every text is a join of a few phrases, each looked up in a small per-language table by an
integer code (language, level, filler choice). The tables hold a few hundred strings and the
per-row work is Arrow ``take`` + ``binary_join_element_wise`` in C++, so a million responses
cost no per-row Python string work.

A response reads ``[opener] [phrase(value_1, level_1)] ... [phrase(value_K, level_K)]
[harm phrase] closer`` in the item's language; level 0 and "no harm" write nothing. The value
phrases carry the profile, the harm phrase the harm, and the opener/closer are filler.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluralrm.simulate.lexicon import LEVEL_ORDER, LEXICONS, Lexicon


def _table(rows: Sequence[Sequence[str | None]]) -> tuple[pa.Array, int]:
    """Flattens per-language option lists (padded with None to one width) to one string array."""
    width = max(len(r) for r in rows)
    flat = [x for r in rows for x in list(r) + [None] * (width - len(r))]
    return pa.array(flat, type=pa.string()), width


def _pick(rows: Sequence[Sequence[str | None]], language: np.ndarray, choice: np.ndarray) -> pa.Array:
    table, width = _table(rows)
    return table.take(pa.array(language.astype(np.int64) * width + choice))


def _counts(rows: Sequence[Sequence[str | None]], language: np.ndarray) -> np.ndarray:
    return np.array([len(r) for r in rows], dtype=np.int64)[language]


def draw_choice(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """One uniform index in ``range(counts[i])`` per entry. Returns ``[n]`` int64."""
    return np.floor(rng.random(counts.shape) * counts).astype(np.int64)


def value_phrase(lexicon: Lexicon, value: str, level: int) -> str | None:
    """The phrase of (value, level) in one language (None for level 0)."""
    if level == 0:
        return None
    j = LEVEL_ORDER.index(level)
    phrase = lexicon.values[value][j] if value in lexicon.values else lexicon.custom[j].format(name=value)
    return phrase + lexicon.stop


class TextWriter:
    """Writes prompts and responses for one society's languages, values and levels.

    Args:
      languages: L language codes (index = language id used by the codes below).
      value_names: the K value dimensions.
      value_levels: the allowed levels (a profile entry is one of them).
      num_local_harms: H local-harm categories.
    """

    def __init__(self, languages: Sequence[str], value_names: Sequence[str], value_levels: Sequence[int],
                 num_local_harms: int) -> None:
        self.lexicons = [LEXICONS[code] for code in languages]
        self.value_names = tuple(value_names)
        self.levels = tuple(value_levels)
        self.num_local_harms = num_local_harms

    # ------------------------------------------------------------------ option counts
    def topic_counts(self, language: np.ndarray) -> np.ndarray:
        return _counts([lex.topics for lex in self.lexicons], language)

    def prefix_counts(self, language: np.ndarray) -> np.ndarray:
        """Prefixes plus one "no prefix" option."""
        return _counts([lex.prefixes for lex in self.lexicons], language) + 1

    def opener_counts(self, language: np.ndarray) -> np.ndarray:
        """Openers plus one "no opener" option."""
        return _counts([lex.openers for lex in self.lexicons], language) + 1

    def closer_counts(self, language: np.ndarray) -> np.ndarray:
        return _counts([lex.closers for lex in self.lexicons], language)

    def global_harm_counts(self, language: np.ndarray) -> np.ndarray:
        return _counts([lex.global_harms for lex in self.lexicons], language)

    # ------------------------------------------------------------------ texts
    def prompts(self, language: np.ndarray, topic: np.ndarray, prefix: np.ndarray) -> pa.Array:
        """Prompt texts ``[n]`` from language ids, topic indices and prefix indices."""
        prefix_rows = [list(lex.prefixes) + [None] for lex in self.lexicons]
        parts = [
            _pick(prefix_rows, language, prefix),
            _pick([lex.topics for lex in self.lexicons], language, topic),
        ]
        return _join(parts, len(language))

    def responses(
        self,
        language: np.ndarray,
        profile: np.ndarray,
        harm_type: np.ndarray,
        harm_index: np.ndarray,
        opener: np.ndarray,
        closer: np.ndarray,
    ) -> pa.Array:
        """Response texts ``[n]``.

        Args:
          language: ``[n]`` language ids.
          profile: ``[n, K]`` value levels (entries of ``value_levels``).
          harm_type: ``[n]`` 0 none, 1 global, 2 local.
          harm_index: ``[n]`` global-harm variant (type 1) or local-harm category (type 2).
          opener: ``[n]`` opener index (the last option = none); closer: ``[n]`` closer index.
        """
        n = len(language)
        level_index = np.full(5, -1, dtype=np.int64)  # level value + 2 -> position in self.levels
        level_index[np.asarray(self.levels) + 2] = np.arange(len(self.levels))
        parts = [_pick([list(lex.openers) + [None] for lex in self.lexicons], language, opener)]
        for k, name in enumerate(self.value_names):
            rows = [[value_phrase(lex, name, lvl) for lvl in self.levels] for lex in self.lexicons]
            parts.append(_pick(rows, language, level_index[profile[:, k].astype(np.int64) + 2]))
        harm_rows = [
            [None]
            + [h + lex.stop for h in lex.global_harms]
            + [h + lex.stop for h in lex.local_harms[: self.num_local_harms]]
            for lex in self.lexicons
        ]
        n_global = self.global_harm_counts(language)
        slot = np.where(harm_type == 0, 0, np.where(harm_type == 1, 1 + harm_index, 1 + n_global + harm_index))
        parts.append(_pick(harm_rows, language, slot))
        parts.append(_pick([lex.closers for lex in self.lexicons], language, closer))
        return _join(parts, n)


def _join(parts: list[pa.Array], n: int) -> pa.Array:
    """Space-joins phrase columns, skipping nulls. The last column must have no nulls: Arrow 26
    drops rows whose inputs are all null instead of returning an empty string."""
    if parts[-1].null_count:
        raise RuntimeError("the last text part must never be null")
    out = pc.binary_join_element_wise(*parts, " ", null_handling="skip")
    if len(out) != n:
        raise RuntimeError(f"text join returned {len(out)} rows for {n}")
    return out
