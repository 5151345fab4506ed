"""``generate(config)``: draws a society, its items and every annotator's choice, vectorised."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluralrm.simulate.choice_model import (
    candidate_profiles,
    expected_label,
    expected_preference,
    sample_outcomes,
    sample_without_replacement,
    win_tie_probabilities,
)
from pluralrm.simulate.config import SocietyConfig
from pluralrm.simulate.population import Population, build_population
from pluralrm.simulate.result import SimulationResult, make_dataset
from pluralrm.simulate.texts import TextWriter, draw_choice
from pluralrm.simulate.truth import Truth, group_utilities, rejections

STAGES: tuple[str, ...] = ("society", "items", "choices", "truth", "texts")
_STREAMS = ("values", "annotators", "items", "choices", "texts")


def generate(config: SocietyConfig | None = None, *, progress: Callable[[str], None] | None = None) -> SimulationResult:
    """Simulates a society and its comparisons (the model is in :mod:`pluralrm.simulate`).

    Every random draw comes from one of five independent streams spawned from ``config.seed``
    (values, annotators, items, choices, texts), so e.g. changing ``comparisons`` keeps the
    society's weights and changing ``heterogeneity`` keeps every draw (only rescaling z_g).

    Args:
      config: the knobs (default ``SocietyConfig()``).
      progress: optional callback called with each stage name of :data:`STAGES` as it starts.

    Returns:
      SimulationResult(data, truth, config).
    """
    config = config or SocietyConfig()
    step = progress or (lambda stage: None)
    rng = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(5))))

    step("society")
    pop = build_population(config, rng["values"], rng["annotators"])
    writer = TextWriter(pop.languages, config.value_names, config.value_levels, config.num_local_harms)

    step("items")
    items = _draw_items(config, pop, rng["items"])
    N, m = config.comparisons, config.annotators_per_item
    row_item = np.arange(N, dtype=np.int64) // m
    row_annotator = items["judges"].reshape(-1)[:N]

    step("choices")
    rejects = rejections(items["harm_type"], items["harm_category"], pop.local_harm_holders[:, pop.cell_country])
    dv = (items["profiles"][:, 0] - items["profiles"][:, 1]).astype(np.float64)  # [I, K]
    row_cell = pop.annotator_cell[row_annotator]
    harm_gap = rejects[row_item, 0, row_cell].astype(np.float64) - rejects[row_item, 1, row_cell]
    d = config.scale * np.einsum("nk,nk->n", pop.annotator_weights[row_annotator], dv[row_item])
    d -= config.harm_penalty * harm_gap  # [N] U_a(first) − U_a(second), logits
    outcome = sample_outcomes(rng["choices"], d, config.tie_strength)
    chosen_is_first = outcome != 1
    g_first = expected_label(d, config.tie_strength)
    p_annotator = np.where(chosen_is_first, g_first, 1.0 - g_first)
    p_tie = win_tie_probabilities(d, config.tie_strength)[1]

    step("truth")
    utility = group_utilities(items["profiles"], pop.cell_weights, rejects, config.scale, config.harm_penalty)
    mu = utility[:, 0] - utility[:, 1]  # [I, G'] each cell's mean U(first) − U(second)
    s = config.within_noise * config.scale * np.linalg.norm(dv, axis=1)  # [I]
    p_first_group = expected_preference(mu, s[:, None], config.tie_strength)
    truth = Truth(
        value_names=tuple(config.value_names),
        countries=pop.countries,
        languages=pop.languages,
        group_labels=pop.cell_labels,
        scale=float(config.scale),
        within_noise=float(config.within_noise),
        harm_penalty=float(config.harm_penalty),
        tie_strength=float(config.tie_strength),
        cell_country=pop.cell_country,
        cell_language=pop.cell_language,
        group_share=pop.cell_share,
        country_value_weights=pop.country_weights,
        language_value_shift=pop.language_shift,
        group_value_weights=pop.cell_weights,
        annotator_weights=pop.annotator_weights,
        annotator_group=pop.annotator_cell,
        local_harm_holders=pop.local_harm_holders,
        profiles=items["profiles"],
        harm_type=items["harm_type"],
        harm_category=items["harm_category"],
        item_language=items["language"],
        p_first_group=p_first_group,
        row_item=row_item,
        row_annotator=row_annotator,
        chosen_is_first=chosen_is_first,
        p_annotator=p_annotator,
        p_tie=p_tie,
    )

    step("texts")
    columns = _text_columns(config, pop, writer, items, truth, rng["texts"])
    columns["label"] = pa.array(np.where(outcome == 2, 0.5, 1.0))
    data = make_dataset(columns, config, pop, truth, fingerprint=config.fingerprint())
    return SimulationResult(data=data, truth=truth, config=config)


def config_fingerprint(config: SocietyConfig) -> str:
    """``config.fingerprint()`` (kept for callers of the old name)."""
    return config.fingerprint()


def _draw_items(config: SocietyConfig, pop: Population, rng: np.random.Generator) -> dict:
    """Judges, language, candidate profiles and harms of every item."""
    I, A = config.num_items, len(pop.annotator_ids)
    judges = sample_without_replacement(rng, A, config.annotators_per_item, I)  # [I, m]
    language = pop.cell_language[pop.annotator_cell[judges[:, 0]]]  # written by its first judge
    correlation = 0.0 if config.candidate_sampling == "independent" else config.candidate_correlation
    profiles = candidate_profiles(rng, I, config.num_values, config.value_levels, correlation)
    u = rng.random((I, 2))
    harm_type = np.where(u < config.harm_rate, 1, np.where(u < config.harm_rate + config.local_harm_rate, 2, 0))
    category = rng.integers(0, config.num_local_harms, size=(I, 2))
    harm_category = np.where(harm_type == 2, category, -1)
    return {
        "judges": judges,
        "language": language,
        "profiles": profiles,
        "harm_type": harm_type.astype(np.int8),
        "harm_category": harm_category.astype(np.int8),
    }


def _text_columns(config: SocietyConfig, pop: Population, writer: TextWriter, items: dict, truth: Truth,
                  rng: np.random.Generator) -> dict[str, pa.Array]:
    """prompt / chosen / rejected / item_id columns ``[N]`` from the items' codes."""
    I = config.num_items
    lang = items["language"]
    prompts = writer.prompts(lang, draw_choice(rng, writer.topic_counts(lang)),
                             draw_choice(rng, writer.prefix_counts(lang)))
    lang2 = np.repeat(lang, 2)  # [2I]: response r = 2·item + side
    profiles = items["profiles"].reshape(2 * I, -1)
    harm_type = items["harm_type"].reshape(-1)
    global_variant = draw_choice(rng, writer.global_harm_counts(lang2))
    harm_index = np.where(harm_type == 1, global_variant, np.maximum(items["harm_category"].reshape(-1), 0))
    opener = draw_choice(rng, writer.opener_counts(lang2))
    closer = draw_choice(rng, writer.closer_counts(lang2)).reshape(I, 2)
    # the two candidates of an item must read differently even when profiles and harms coincide
    same = (items["profiles"][:, 0] == items["profiles"][:, 1]).all(axis=1) & (
        items["harm_type"][:, 0] == items["harm_type"][:, 1]) & (harm_index[0::2] == harm_index[1::2])
    closer[:, 1] = np.where(same & (closer[:, 0] == closer[:, 1]),
                            (closer[:, 1] + 1) % writer.closer_counts(lang), closer[:, 1])
    responses = writer.responses(lang2, profiles, harm_type, harm_index, opener, closer.reshape(-1))
    chosen_response = 2 * truth.row_item + truth.row_side
    width = len(str(max(I - 1, 0)))
    item_ids = pc.binary_join_element_wise(
        "item-", pc.utf8_lpad(pa.array(np.arange(I)).cast(pa.string()), width, padding="0"), "")
    return {
        "prompt": prompts.take(pa.array(truth.row_item)),
        "chosen": responses.take(pa.array(chosen_response)),
        "rejected": responses.take(pa.array(chosen_response + 1 - 2 * truth.row_side)),
        "item_id": item_ids.take(pa.array(truth.row_item)),
    }
