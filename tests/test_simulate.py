"""Tests of pluralrm.simulate: the planted truth is right, the draws follow it, files round-trip."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate
from scipy.special import expit

from pluralrm.cli import main
from pluralrm.data import GroupSchema, canonicalize
from pluralrm.errors import ConfigError
from pluralrm.simulate import (
    DEFAULT_SOCIETY,
    SimulationResult,
    SocietyConfig,
    default_society_path,
    expected_label,
    expected_preference,
    generate,
    load_default,
)
from pluralrm.simulate.choice_model import candidate_profiles, sample_without_replacement
from pluralrm.simulate.lexicon import LEXICONS
from pluralrm.simulate.result import FILES
from pluralrm.simulate.texts import value_phrase

SMALL = SocietyConfig(countries=3, languages=3, annotators_per_group=20, comparisons=3_000, seed=7)


def _first_probability(truth, p_rows: np.ndarray) -> np.ndarray:
    """Rows' P(chosen ≻ rejected) turned into P(first ≻ second) (orientation of the item)."""
    return np.where(truth.chosen_is_first, p_rows, 1.0 - p_rows)


def _assert_calibrated(p_first: np.ndarray, first_won: np.ndarray, bins: int, slack: float = 0.0) -> None:
    """Wins per probability bin lie within 4 sd of the Poisson-binomial mean (plus slack · n)."""
    edges = np.quantile(p_first, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p_first, side="right") - 1, 0, bins - 1)
    for b in range(bins):
        sel = which == b
        p, k = p_first[sel], first_won[sel].sum()
        sd = np.sqrt(np.sum(p * (1 - p)))
        assert abs(k - p.sum()) <= 4 * sd + slack * sel.sum() + 1, (b, k, p.sum(), sd)


# ----------------------------------------------------------------------------- the math
@pytest.mark.parametrize("tie_strength", [0.0, 0.8, 3.0])
def test_expected_preference_matches_adaptive_quadrature(tie_strength):
    mus = np.array([-25.0, -9.0, -2.0, 0.0, 0.3, 1.7, 6.0, 14.0])
    ss = np.array([0.0, 0.4, 1.2, 1.99, 2.0, 3.0, 7.0, 20.0])
    got = expected_preference(mus[:, None], ss[None, :], tie_strength)
    for i, mu in enumerate(mus):
        for j, s in enumerate(ss):
            if s == 0:
                want = expected_label(mu, tie_strength)
            else:
                f = lambda z: expected_label(mu + s * z, tie_strength) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
                want = integrate.quad(f, -40, 40, points=[-mu / s], epsabs=1e-13, limit=400)[0]
            assert got[i, j] == pytest.approx(want, abs=1e-9), (mu, s)


def test_davidson_reduces_to_bradley_terry_and_is_symmetric():
    d = np.linspace(-30, 30, 121)
    np.testing.assert_allclose(expected_label(d), expit(d), rtol=0, atol=1e-15)
    np.testing.assert_allclose(expected_label(-d, 1.3), 1 - expected_label(d, 1.3), atol=1e-15)


def test_sample_without_replacement_is_distinct_and_uniform():
    rng = np.random.default_rng(0)
    draws = sample_without_replacement(rng, 10, 4, 20_000)
    assert all(len(set(r)) == 4 for r in draws[:2000])
    counts = np.bincount(draws.reshape(-1), minlength=10)
    expected = 20_000 * 4 / 10
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    assert draws.min() >= 0 and draws.max() <= 9


def test_candidate_sampling_correlation_and_uniform_levels():
    rng = np.random.default_rng(1)
    levels = (-2, -1, 0, 1, 2)
    neg = candidate_profiles(rng, 20_000, 3, levels, -0.7).astype(float)
    ind = candidate_profiles(rng, 20_000, 3, levels, 0.0).astype(float)
    for k in range(3):
        assert np.corrcoef(neg[:, 0, k], neg[:, 1, k])[0, 1] < -0.55
        assert abs(np.corrcoef(ind[:, 0, k], ind[:, 1, k])[0, 1]) < 0.03
    shares = np.bincount((neg[:, 1, 0] + 2).astype(int), minlength=5) / 20_000
    np.testing.assert_allclose(shares, 0.2, atol=0.015)


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate(SMALL).save(a)
    generate(SMALL).save(b)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = generate(SMALL.replace(seed=8))
    assert not c.truth.equals(SimulationResult.load(a).truth)
    assert c.data["chosen"][:50] != SimulationResult.load(a).data["chosen"][:50]


def test_save_load_round_trip(tmp_path):
    result = generate(SMALL.replace(value_labels=True, tie_strength=0.5))
    loaded = SimulationResult.load(result.save(tmp_path / "r"))
    assert loaded.equals(result)
    np.testing.assert_array_equal(loaded.truth.p_group, result.truth.p_group)


# ----------------------------------------------------------------------------- draws follow the truth
def test_choices_match_p_annotator_in_binomial_intervals():
    result = generate(SocietyConfig(comparisons=40_000, seed=3, tie_strength=0.0))
    t = result.truth
    _assert_calibrated(_first_probability(t, t.p_annotator), t.chosen_is_first, bins=10)


def test_group_choice_rates_match_population_p_group():
    config = SocietyConfig(countries=3, languages=3, annotators_per_group=300, comparisons=60_000,
                           annotators_per_item=6, within_noise=0.8, seed=4)
    t = generate(config).truth
    rows = np.arange(len(t.row_item))
    p_own = _first_probability(t, t.p_group[rows, t.row_group])
    for c in range(t.num_groups):
        sel = t.row_group == c
        _assert_calibrated(p_own[sel], t.chosen_is_first[sel], bins=8, slack=0.02)


def test_p_group_equals_monte_carlo_over_a_groups_population():
    config = SocietyConfig(countries=2, languages=2, comparisons=200, harm_rate=0.2, local_harm_rate=0.2,
                           within_noise=0.9, seed=5)
    t = generate(config).truth
    rng = np.random.default_rng(0)
    eps = rng.standard_normal((200_000, t.annotator_weights.shape[1]))
    harm = t.rejects()  # [I, 2, G']
    for c in range(t.num_groups):
        w = t.group_value_weights[c] + config.within_noise * eps  # a fresh population of the cell
        for i in range(0, len(t.profiles), 7):
            dv = (t.profiles[i, 0] - t.profiles[i, 1]).astype(float)
            d = config.scale * w @ dv - config.harm_penalty * (float(harm[i, 0, c]) - float(harm[i, 1, c]))
            assert expit(d).mean() == pytest.approx(t.p_first_group[i, c], abs=4e-3)


def test_utility_std_is_the_within_group_spread():
    t = generate(SocietyConfig(countries=2, languages=2, annotators_per_group=3000, comparisons=50,
                               within_noise=0.7, seed=6)).truth
    members = t.annotator_group == 0
    v = t.profiles[:10].reshape(20, -1).astype(float)
    spread = (t.scale * t.annotator_weights[members] @ v.T).std(axis=0)
    np.testing.assert_allclose(spread, t.utility_std()[:10].reshape(-1), rtol=0.06, atol=1e-9)
    mean = (t.scale * t.annotator_weights[members] @ v.T).mean(axis=0) - t.harm_penalty * t.rejects()[:10, :, 0].reshape(-1)
    se = t.utility_std()[:10].reshape(-1) / np.sqrt(members.sum())
    assert np.all(np.abs(mean - t.utility_mean()[:10, :, 0].reshape(-1)) <= 4 * se + 1e-12)


def test_ties_follow_the_davidson_tie_probability():
    result = generate(SocietyConfig(comparisons=30_000, tie_strength=1.0, seed=9))
    labels = np.asarray(result.data["label"])
    ties = labels == 0.5
    p_tie = result.truth.p_tie
    assert abs(ties.sum() - p_tie.sum()) < 4 * np.sqrt(np.sum(p_tie * (1 - p_tie)))
    assert set(np.unique(labels)) == {0.5, 1.0}
    assert np.all(result.truth.chosen_is_first[ties])


# ----------------------------------------------------------------------------- heterogeneity
def test_homogeneous_society_has_identical_groups():
    t = generate(SMALL.replace(heterogeneity=0.0, local_harm_rate=0.0)).truth
    assert np.all(t.p_group == t.p_group[:, :1])
    assert t.disagreement()["std"] == pytest.approx(0.0, abs=1e-12)
    assert np.all(t.bayes_accuracy_pooled() == t.bayes_accuracy_group())


def test_disagreement_rises_with_heterogeneity():
    base = SMALL.replace(local_harm_rate=0.0, countries=5, languages=2)
    std = [generate(base.replace(heterogeneity=h)).truth.disagreement()["std"] for h in (0.0, 0.2, 0.5, 1.0, 2.0)]
    assert std[0] == pytest.approx(0.0, abs=1e-12)
    assert all(a < b for a, b in zip(std, std[1:])), std


def test_group_aware_bayes_accuracy_beats_group_blind():
    t = load_default().truth
    assert np.all(t.bayes_accuracy_group() >= t.bayes_accuracy_pooled() - 1e-12)
    assert np.mean(t.bayes_accuracy_group() - t.bayes_accuracy_pooled()) > 0.05


# ----------------------------------------------------------------------------- harms
def test_local_harms_rejected_only_by_holders_and_global_by_all():
    config = SocietyConfig(countries=3, languages=3, comparisons=30_000, harm_rate=0.15, local_harm_rate=0.3,
                           local_harm_holders=(("US", "FR"),), harm_penalty=10.0, scale=0.25, seed=11)
    result = generate(config)
    t = result.truth
    assert t.countries == ("US", "MX", "FR")
    kinds = t.harm_type[t.row_item]  # [N, 2] (first, second candidate)
    country = np.asarray(result.data["country"])
    for kind in (1, 2):
        first_harmful = (kinds[:, 0] == kind) & (kinds[:, 1] == 0)
        second_harmful = (kinds[:, 1] == kind) & (kinds[:, 0] == 0)
        harmful_chosen = (first_harmful & t.chosen_is_first) | (second_harmful & ~t.chosen_is_first)
        for name in t.countries:
            sel = (first_harmful | second_harmful) & (country == name)
            rate = harmful_chosen[sel].mean()
            rejects = kind == 1 or name in ("US", "FR")
            assert (rate < 0.05) if rejects else (abs(rate - 0.5) < 0.06), (kind, name, rate, sel.sum())


def test_random_local_harm_holders_leave_holders_and_indifferent_countries():
    for seed in range(20):
        t = generate(SocietyConfig(countries=4, languages=2, comparisons=10, local_harm_categories=4,
                                   local_harm_share=0.5 if seed % 2 else 0.0, seed=seed)).truth
        assert np.all(t.local_harm_holders.any(axis=1))
        assert np.all(~t.local_harm_holders.all(axis=1))


# ----------------------------------------------------------------------------- groups and schema
def test_group_proportions_are_respected():
    config = SocietyConfig(countries=4, languages=2, group_proportions=(0.5, 0.3, 0.15, 0.05), annotators=200,
                           comparisons=40_000, seed=2)
    result = generate(config)
    t = result.truth
    np.testing.assert_array_equal(np.bincount(t.annotator_group), [100, 60, 30, 10])
    shares = np.bincount(t.row_group) / len(t.row_group)
    np.testing.assert_allclose(shares, [0.5, 0.3, 0.15, 0.05], atol=0.01)
    np.testing.assert_allclose(t.group_share, [0.5, 0.3, 0.15, 0.05])


def test_second_language_cells():
    config = SocietyConfig(countries=3, languages=2, annotators_per_group=20, second_language_rate=0.25,
                           language_effect=0.5, comparisons=2_000, seed=3)
    result = generate(config)
    t = result.truth
    assert t.num_groups == 6
    schema = GroupSchema.from_dataset(result.data)
    assert sorted(schema.group_labels()) == sorted(t.group_labels)
    np.testing.assert_allclose(t.group_share.sum(), 1.0)
    np.testing.assert_allclose(t.p_country().shape, (len(t.row_item), 3))
    assert t.bayes_accuracy_group().shape == (6,)


def test_dataset_is_a_comparison_dataset_with_items():
    result = generate(SMALL.replace(value_labels=True))
    ds, t = result.data, result.truth
    assert ds.column_names == ["prompt", "chosen", "rejected", "label", "annotator_id", "weight", "item_id",
                               "country", "language", "chosen_values", "rejected_values"]
    assert ds.features["label"].dtype == "float64" and ds.features["weight"].dtype == "float64"
    schema = GroupSchema.from_dataset(ds)
    assert schema.attributes == ("country", "language")
    units = canonicalize(ds["prompt"], ds["chosen"], ds["rejected"], ds["label"], ds["item_id"])
    assert units.num_units == SMALL.num_items
    assert all(c != r for c, r in zip(ds["chosen"], ds["rejected"]))
    np.testing.assert_array_equal(np.asarray(ds["chosen_values"]), t.profile("chosen"))
    assert len(set(ds["annotator_id"])) == len(t.annotator_group)
    hidden = generate(SMALL.replace(hide_groups=True)).data
    assert "country" not in hidden.column_names and "language" not in hidden.column_names


def test_texts_carry_profiles_and_harms():
    result = generate(SMALL.replace(harm_rate=0.2, local_harm_rate=0.2))
    t, ds = result.truth, result.data
    lang = t.item_language[t.row_item]
    profile, harm = t.profile("chosen"), t.row_harm_type("chosen")
    for n in range(0, len(t.row_item), 37):
        lex = LEXICONS[t.languages[lang[n]]]
        text = ds[n]["chosen"]
        for k, name in enumerate(t.value_names):
            for level in (-2, -1, 1, 2):
                assert (value_phrase(lex, name, level) in text) == (profile[n, k] == level), (text, name, level)
        has_global = any(h in text for h in lex.global_harms)
        has_local = any(h in text for h in lex.local_harms)
        assert (has_global, has_local) == (harm[n] == 1, harm[n] == 2), text


def test_lexicons_are_complete_and_distinct():
    for code, lex in LEXICONS.items():
        phrases = [p for v in lex.values.values() for p in v] + list(lex.global_harms) + list(lex.local_harms)
        assert len(set(phrases)) == len(phrases), code
        assert all(len(v) == 4 for v in lex.values.values()) and set(lex.values) == set(LEXICONS["en"].values)
        assert len(lex.topics) == len(LEXICONS["en"].topics) and lex.countries, code


def test_custom_value_names_use_templates():
    result = generate(SocietyConfig(value_names=("thrift", "loyalty"), value_levels=(-1, 0, 1), comparisons=200))
    assert any("thrift" in text for text in result.data["chosen"])
    assert result.truth.profiles.shape[-1] == 2


@pytest.mark.parametrize("changes", [
    {"languages": 7},
    {"annotators_per_item": 500},
    {"group_proportions": (0.5, 0.5)},
    {"value_levels": (-3, 0, 3)},
    {"local_harm_rate": 0.99},
    {"candidate_correlation": 0.2},
    {"local_harm_holders": (("XX",),)},
])
def test_invalid_configs_raise_config_errors(changes):
    with pytest.raises(ConfigError):
        generate(SMALL.replace(**changes))


# ----------------------------------------------------------------------------- CLI and bundle
def test_cli_round_trip(tmp_path, capsys):
    out = tmp_path / "society"
    argv = ["simulate", "--out", str(out), "--comparisons", "2000", "--groups", "3", "--languages", "2",
            "--heterogeneity", "1.5", "--candidate-sampling", "negatively_correlated", "--value-labels",
            "--seed", "3"]
    assert main(argv) == 0
    assert "wrote 2,000 comparisons" in capsys.readouterr().out
    loaded = SimulationResult.load(out)
    want = SocietyConfig(comparisons=2000, countries=3, languages=2, heterogeneity=1.5,
                         candidate_sampling="negatively_correlated", value_labels=True, seed=3)
    assert loaded.config == want and loaded.equals(generate(want))
    assert main(argv) == 1  # refuses a non-empty directory
    assert main(argv[:-1] + ["4", "--force", "--quiet"]) == 0
    assert SimulationResult.load(out).config.seed == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["society"]  # no temporary leftovers


def test_cli_preset_with_overrides(tmp_path):
    out = tmp_path / "s"
    assert main(["simulate", "--preset", "default", "--comparisons", "500", "--out", str(out), "--quiet"]) == 0
    assert SimulationResult.load(out).config == DEFAULT_SOCIETY.replace(comparisons=500)


def test_bundled_default_society_equals_a_fresh_generation(tmp_path):
    shipped = default_society_path()
    assert sorted(p.name for p in shipped.iterdir()) == sorted(FILES)
    assert sum(p.stat().st_size for p in shipped.iterdir()) < 4 << 20
    fresh = generate(DEFAULT_SOCIETY)
    assert load_default().equals(fresh)
    fresh.save(tmp_path / "d")
    for name in FILES:
        if name != "data.parquet":  # parquet bytes carry the writer's version; its content is compared above
            assert (tmp_path / "d" / name).read_bytes() == (shipped / name).read_bytes(), name


def test_default_society_shape():
    result = load_default()
    t = result.truth
    assert len(t.countries) == 6 and len(t.languages) == 4 and 20_000 <= len(t.row_item) <= 30_000
    shares = dict(zip(t.countries, t.group_share))
    assert sorted(shares.values())[:2] == pytest.approx([0.04, 0.06])
    assert result.summary()["disagreement_std"] > 0.15
    assert dataclasses.asdict(result.config) == dataclasses.asdict(DEFAULT_SOCIETY)
    assert Path(default_society_path()).is_dir()
