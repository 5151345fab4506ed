"""The knobs of a simulated society (:class:`SocietyConfig`) and the named presets."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pluralrm.errors import ConfigError
from pluralrm.simulate.lexicon import LANGUAGES, MAX_LOCAL_HARMS

DEFAULT_VALUES: tuple[str, ...] = ("honesty", "care", "autonomy", "tradition", "safety", "humor")
CANDIDATE_SAMPLING: tuple[str, ...] = ("independent", "negatively_correlated")


@dataclass(frozen=True)
class SocietyConfig:
    """Every knob of the simulator (see :mod:`pluralrm.simulate` for the model).

    Society:
      value_names: the K value dimensions.
      value_levels: the discrete levels a response profile takes per dimension (integers in
        [-2, 2]; each non-zero level has its own phrase in every language).
      countries: G, the number of countries (cultures).
      languages: L, the number of languages (taken from ``language_names`` or the built-in
        lexicons en, es, fr, hi, yo, ar in that order).
      country_names / country_languages: optional explicit country codes and each country's
        primary language; by default country g speaks language ``g mod L``.
      language_names: optional explicit language codes (must have lexicons).
      second_language_rate: fraction of each country's annotators who judge in a second
        language (English, or for English-primary countries the second language listed).
      shared_weights: ``w_shared`` [K]; None = 0.5 for every value.
      heterogeneity: sd of the country deviations ``z_g`` (0 = a homogeneous society).
      language_effect: sd of a per-language shift of value weights (0 = none).
      within_noise: sd of an annotator's deviation from their cell's weights.
      group_proportions: population share of each country (None = equal); also the share of
        annotators and, in expectation, of comparisons.
      annotators_per_group: annotators per country when ``annotators`` is None and the
        proportions are equal; otherwise ``annotators`` defaults to this times G.
      annotators: optional total number of annotators, split by ``group_proportions``.
    Items and choices:
      comparisons: N, the number of rows (items × annotators_per_item, last item may be short).
      annotators_per_item: m distinct annotators judge each item, drawn from the whole pool.
      candidate_sampling: "independent" or "negatively_correlated" candidate profiles.
      candidate_correlation: latent correlation of the two candidates' profiles when
        negatively correlated (in (-1, 0)).
      scale: Bradley–Terry scale on ``w·(v_a - v_b)``.
      tie_strength: Davidson tie parameter ν >= 0 (0 = no ties).
      harm_rate / local_harm_rate: probability that a response carries a global / local harm.
      harm_penalty: utility (logits) a rejecting annotator subtracts for a harmful response.
      local_harm_categories: number of local-harm categories (each its own phrase and its own
        set of rejecting countries); ignored when ``local_harm_holders`` is given.
      local_harm_share: probability that a country rejects a given local-harm category.
      local_harm_holders: optional explicit rejecting countries per category (country codes).
    Output:
      value_labels: add ``chosen_values`` / ``rejected_values`` columns.
      hide_groups: drop the ``country`` / ``language`` columns (latent-group setting).
      seed: the random seed (everything is a function of the config).
    """

    value_names: tuple[str, ...] = DEFAULT_VALUES
    value_levels: tuple[int, ...] = (-2, -1, 0, 1, 2)
    countries: int = 4
    languages: int = 3
    country_names: tuple[str, ...] = ()
    country_languages: tuple[str, ...] = ()
    language_names: tuple[str, ...] = ()
    second_language_rate: float = 0.0
    shared_weights: tuple[float, ...] | None = None
    heterogeneity: float = 1.0
    language_effect: float = 0.0
    within_noise: float = 0.5
    group_proportions: tuple[float, ...] | None = None
    annotators_per_group: int = 25
    annotators: int | None = None
    comparisons: int = 10_000
    annotators_per_item: int = 5
    candidate_sampling: str = "independent"
    candidate_correlation: float = -0.7
    scale: float = 0.5
    tie_strength: float = 0.0
    harm_rate: float = 0.03
    local_harm_rate: float = 0.05
    harm_penalty: float = 6.0
    local_harm_categories: int = 2
    local_harm_share: float = 0.5
    local_harm_holders: tuple[tuple[str, ...], ...] | None = None
    value_labels: bool = False
    hide_groups: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ derived
    @property
    def num_values(self) -> int:
        return len(self.value_names)

    @property
    def num_items(self) -> int:
        """I = ceil(N / m): the last item has fewer annotators when m does not divide N."""
        return math.ceil(self.comparisons / self.annotators_per_item)

    @property
    def num_local_harms(self) -> int:
        if self.local_harm_holders is not None:
            return len(self.local_harm_holders)
        return self.local_harm_categories

    def replace(self, **changes: Any) -> "SocietyConfig":
        """A copy with some knobs changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d))  # tuples -> lists, a plain JSON value

    def fingerprint(self) -> str:
        """A short content hash of the config (the generated data are a function of it); the
        ``datasets`` fingerprint of a society's table, so caches keyed on it follow the config."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "society config") -> "SocietyConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown simulate option(s) {unknown}; known: {sorted(known)}")
        kwargs = {k: _tuplify(v) for k, v in d.items()}
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"{source}: {e}") from None


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def _fail(name: str, value: Any, want: str) -> None:
    raise ConfigError(f"simulate option {name!r} must be {want}, got {value!r}")


def _validate(c: SocietyConfig) -> None:
    def check(name: str, ok: bool, want: str) -> None:
        if not ok:
            _fail(name, getattr(c, name), want)

    check("value_names", len(c.value_names) >= 1 and len(set(c.value_names)) == len(c.value_names)
          and all(isinstance(v, str) and v.strip() for v in c.value_names),
          "a non-empty tuple of distinct non-empty names")
    check("value_levels", len(c.value_levels) >= 2 and len(set(c.value_levels)) == len(c.value_levels)
          and all(isinstance(v, int) and -2 <= v <= 2 for v in c.value_levels),
          "at least two distinct integers in [-2, 2]")
    check("countries", isinstance(c.countries, int) and c.countries >= 1, "an integer >= 1")
    check("languages", isinstance(c.languages, int) and 1 <= c.languages <= len(LANGUAGES),
          f"an integer in [1, {len(LANGUAGES)}] (languages with lexicons: {list(LANGUAGES)})")
    check("language_names", not c.language_names or (
        len(c.language_names) == c.languages and len(set(c.language_names)) == c.languages
        and all(n in LANGUAGES for n in c.language_names)),
        f"empty or {c.languages} distinct codes from {list(LANGUAGES)}")
    check("country_names", not c.country_names or (
        len(c.country_names) == c.countries and len(set(c.country_names)) == c.countries
        and all(isinstance(n, str) and n.strip() for n in c.country_names)),
        f"empty or {c.countries} distinct non-empty codes")
    langs = c.language_names or LANGUAGES[: c.languages]
    check("country_languages", not c.country_languages or (
        len(c.country_languages) == c.countries and all(n in langs for n in c.country_languages)),
        f"empty or one language per country from {list(langs)}")
    check("second_language_rate", 0.0 <= c.second_language_rate <= 1.0
          and (c.second_language_rate == 0.0 or c.languages >= 2),
          "in [0, 1] (and > 0 only with at least 2 languages)")
    check("shared_weights", c.shared_weights is None or (
        len(c.shared_weights) == len(c.value_names) and all(math.isfinite(w) for w in c.shared_weights)),
        f"None or {len(c.value_names)} finite numbers (one per value)")
    for name in ("heterogeneity", "language_effect", "within_noise", "tie_strength", "harm_penalty"):
        value = getattr(c, name)
        check(name, isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, "a finite number >= 0")
    check("scale", isinstance(c.scale, (int, float)) and math.isfinite(c.scale) and c.scale > 0, "a finite number > 0")
    check("group_proportions", c.group_proportions is None or (
        len(c.group_proportions) == c.countries and all(p > 0 for p in c.group_proportions)),
        f"None or {c.countries} positive numbers (one per country)")
    check("annotators_per_group", isinstance(c.annotators_per_group, int) and c.annotators_per_group >= 1,
          "an integer >= 1")
    check("annotators", c.annotators is None or (isinstance(c.annotators, int) and c.annotators >= c.countries),
          f"None or an integer >= countries ({c.countries}), so that every country has an annotator")
    check("comparisons", isinstance(c.comparisons, int) and c.comparisons >= 1, "an integer >= 1")
    total = c.annotators if c.annotators is not None else c.annotators_per_group * c.countries
    check("annotators_per_item", isinstance(c.annotators_per_item, int) and 1 <= c.annotators_per_item <= total,
          f"an integer in [1, number of annotators = {total}]")
    check("candidate_sampling", c.candidate_sampling in CANDIDATE_SAMPLING, f"one of {list(CANDIDATE_SAMPLING)}")
    check("candidate_correlation", -1.0 < c.candidate_correlation < 0.0, "in (-1, 0)")
    check("harm_rate", 0.0 <= c.harm_rate <= 1.0, "in [0, 1]")
    check("local_harm_rate", 0.0 <= c.local_harm_rate <= 1.0 - c.harm_rate, "in [0, 1 - harm_rate]")
    check("local_harm_categories", isinstance(c.local_harm_categories, int)
          and 1 <= c.local_harm_categories <= MAX_LOCAL_HARMS, f"an integer in [1, {MAX_LOCAL_HARMS}]")
    check("local_harm_share", 0.0 <= c.local_harm_share <= 1.0, "in [0, 1]")
    if c.local_harm_holders is not None:
        names = c.country_names or ()
        check("local_harm_holders", 1 <= len(c.local_harm_holders) <= MAX_LOCAL_HARMS
              and (not names or all(h in names for hs in c.local_harm_holders for h in hs)),
              f"1 to {MAX_LOCAL_HARMS} tuples of country codes"
              + (f" from {list(names)}" if names else ""))
    check("seed", isinstance(c.seed, int) and c.seed >= 0, "an integer >= 0")


# ---------------------------------------------------------------------------- presets
DEFAULT_SOCIETY = SocietyConfig(
    countries=6,
    languages=4,
    language_names=("en", "es", "yo", "ar"),
    # US, MX, NG, EG, GB, ES: NG and EG are the minority groups (with their own languages).
    group_proportions=(0.30, 0.22, 0.06, 0.04, 0.20, 0.18),
    heterogeneity=1.0,
    within_noise=0.5,
    annotators=240,
    comparisons=24_000,
    annotators_per_item=5,
    candidate_sampling="negatively_correlated",
    harm_rate=0.03,
    local_harm_rate=0.06,
    value_labels=True,
    seed=20261123,
)

PRESETS: dict[str, SocietyConfig] = {"default": DEFAULT_SOCIETY}


def preset(name: str) -> SocietyConfig:
    """A named preset config (``default``: the bundled society)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown simulate preset {name!r}; known: {sorted(PRESETS)}") from None
