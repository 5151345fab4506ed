"""Who is in the society: countries, languages, (country, language) cells, their value weights,
the annotators, and which countries hold each local harm."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralrm.errors import ConfigError
from pluralrm.simulate.config import SocietyConfig
from pluralrm.simulate.lexicon import LANGUAGES, LEXICONS

DEFAULT_SHARED_WEIGHT = 0.5


@dataclass(frozen=True)
class Population:
    """The planted society (see :mod:`pluralrm.simulate` for the equations).

    Attributes:
      countries: G country codes.  languages: L language codes.
      country_language: ``[G]`` primary language index of each country.
      cell_country, cell_language: ``[G']`` the (country, language) cells that have annotators.
      cell_share: ``[G']`` population share of each cell (sums to 1).
      country_weights: ``[G, K]`` w_g = w_shared + heterogeneity · z_g.
      language_shift: ``[L, K]`` language_effect · u_l.
      cell_weights: ``[G', K]`` w_c = w_g + language_shift_l.
      annotator_cell: ``[A]`` cell index of each annotator.
      annotator_weights: ``[A, K]`` w_a = w_c + within_noise · ε_a.
      annotator_ids: A ids, ``"<country>-<nnnn>"``.
      local_harm_holders: ``[H, G]`` bool, country g rejects local-harm category h.
    """

    countries: tuple[str, ...]
    languages: tuple[str, ...]
    country_language: np.ndarray
    cell_country: np.ndarray
    cell_language: np.ndarray
    cell_share: np.ndarray
    country_weights: np.ndarray
    language_shift: np.ndarray
    cell_weights: np.ndarray
    annotator_cell: np.ndarray
    annotator_weights: np.ndarray
    annotator_ids: tuple[str, ...]
    local_harm_holders: np.ndarray

    @property
    def cell_labels(self) -> tuple[str, ...]:
        return tuple(
            f"country={self.countries[g]},language={self.languages[l]}"
            for g, l in zip(self.cell_country, self.cell_language)
        )


def build_population(
    config: SocietyConfig, values_rng: np.random.Generator, annotators_rng: np.random.Generator
) -> Population:
    """Draws the society's value weights and annotators (see :class:`Population`)."""
    languages = config.language_names or LANGUAGES[: config.languages]
    primary = _primary_languages(config, languages)
    countries = config.country_names or _country_codes(primary, languages)
    G, L, K = config.countries, len(languages), config.num_values

    z = values_rng.standard_normal((G, K))
    u = values_rng.standard_normal((L, K))
    holder_draws = values_rng.random((config.num_local_harms, G))
    shared = np.asarray(
        config.shared_weights if config.shared_weights is not None else [DEFAULT_SHARED_WEIGHT] * K,
        dtype=np.float64,
    )
    country_weights = shared + config.heterogeneity * z
    language_shift = config.language_effect * u

    share = np.asarray(config.group_proportions or [1.0] * G, dtype=np.float64)
    share = share / share.sum()
    total = config.annotators if config.annotators is not None else config.annotators_per_group * G
    per_country = _allocate(total, share)
    second = _second_languages(primary, languages)

    cells: list[tuple[int, int, int]] = []  # (country, language, annotators)
    for g in range(G):
        n2 = min(int(round(per_country[g] * config.second_language_rate)), per_country[g] - 1)
        cells.append((g, int(primary[g]), per_country[g] - n2))
        if n2 > 0:
            cells.append((g, int(second[g]), n2))
    cell_country = np.array([c[0] for c in cells], dtype=np.int64)
    cell_language = np.array([c[1] for c in cells], dtype=np.int64)
    cell_count = np.array([c[2] for c in cells], dtype=np.int64)
    cell_share = share[cell_country] * cell_count / per_country[cell_country]
    cell_weights = country_weights[cell_country] + language_shift[cell_language]

    annotator_cell = np.repeat(np.arange(len(cells)), cell_count)
    eps = annotators_rng.standard_normal((total, K))
    annotator_weights = cell_weights[annotator_cell] + config.within_noise * eps
    # a country's cells are adjacent, so annotators are ordered by country: number them within it
    within = np.concatenate([np.arange(n) for n in per_country])
    ids = [f"{countries[g]}-{j:04d}" for g, j in zip(cell_country[annotator_cell], within)]

    return Population(
        countries=tuple(countries),
        languages=tuple(languages),
        country_language=primary,
        cell_country=cell_country,
        cell_language=cell_language,
        cell_share=cell_share,
        country_weights=country_weights,
        language_shift=language_shift,
        cell_weights=cell_weights,
        annotator_cell=annotator_cell,
        annotator_weights=annotator_weights,
        annotator_ids=tuple(ids),
        local_harm_holders=_local_harm_holders(config, countries, holder_draws),
    )


def _primary_languages(config: SocietyConfig, languages: tuple[str, ...]) -> np.ndarray:
    if config.country_languages:
        return np.array([languages.index(l) for l in config.country_languages], dtype=np.int64)
    return np.arange(config.countries, dtype=np.int64) % len(languages)


def _second_languages(primary: np.ndarray, languages: tuple[str, ...]) -> np.ndarray:
    """English (else the first language) as the lingua franca; its own speakers use the next one."""
    lingua = languages.index("en") if "en" in languages else 0
    other = (lingua + 1) % len(languages)
    return np.where(primary == lingua, other, lingua)


def _country_codes(primary: np.ndarray, languages: tuple[str, ...]) -> tuple[str, ...]:
    """Country g is the j-th country of its language's list (a numbered code past the list)."""
    used = {l: 0 for l in range(len(languages))}
    codes = []
    for l in primary:
        names = LEXICONS[languages[l]].countries
        j = used[int(l)]
        used[int(l)] += 1
        codes.append(names[j] if j < len(names) else f"{names[0]}{j + 1}")
    return tuple(codes)


def _allocate(total: int, share: np.ndarray) -> np.ndarray:
    """Largest-remainder split of ``total`` by ``share``; an entry left at 0 takes one from the
    largest (every country has an annotator)."""
    exact = share * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    for g in np.flatnonzero(counts == 0):
        counts[np.argmax(counts)] -= 1
        counts[g] = 1
    return counts


def _local_harm_holders(config: SocietyConfig, countries: tuple[str, ...], draws: np.ndarray) -> np.ndarray:
    """``[H, G]`` bool: explicit holders, or each country with probability local_harm_share,
    keeping at least one holder and (with G >= 2) at least one indifferent country."""
    G = len(countries)
    if config.local_harm_holders is not None:
        holders = np.zeros((len(config.local_harm_holders), G), dtype=bool)
        for h, names in enumerate(config.local_harm_holders):
            for name in names:
                if name not in countries:
                    raise ConfigError(
                        f"simulate option 'local_harm_holders' names country {name!r} in category "
                        f"{h + 1}, but the countries are {list(countries)}"
                    )
                holders[h, countries.index(name)] = True
        return holders
    holders = draws < config.local_harm_share
    rows = np.arange(draws.shape[0])
    none = ~holders.any(axis=1)
    holders[rows[none], draws[none].argmin(axis=1)] = True
    if G >= 2:
        every = holders.all(axis=1)
        holders[rows[every], draws[every].argmax(axis=1)] = False
    return holders
