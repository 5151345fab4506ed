r"""A synthetic society with planted group values: the ground truth pluralrm is tested against.

In the spirit of learning from simulated social interaction, Community Alignment's
negatively correlated candidates, and the Multilingual Alignment Prism's split between global
and local harms, the simulator plants *who prefers what and why*, writes comparison data a
reward model can learn from, and keeps every probability it used.

Model
-----
Society. K value dimensions (``value_names``; default honesty, care, autonomy, tradition,
safety, humor). G countries, L languages; country g has a primary language (by default
``g mod L``, so countries share languages when G > L); a fraction ``second_language_rate`` of
its annotators judge in a second language (English, or for English-primary countries the
next language). The schema groups are the (country, language) *cells* c that have annotators.

    w_g = w_shared + heterogeneity · z_g,        z_g ~ N(0, I_K)      (country values)
    w_c = w_g(c) + language_effect · u_l(c),      u_l ~ N(0, I_K)      (cell values)
    w_a = w_c(a) + within_noise · ε_a,            ε_a ~ N(0, I_K)      (annotator values)

Countries have population shares π_g (``group_proportions``; unequal shares make majority and
minority groups); annotators are split by them (largest remainder, at least one each).

Items. An item is a prompt (a topic in the item's language) and two candidate responses with
value profiles v ∈ levels^K (levels ⊂ {-2..2}). Each dimension of the pair is a bivariate
normal with correlation ρ (0 for ``"independent"``, ``candidate_correlation`` < 0 for
``"negatively_correlated"``), discretised to equally likely levels. A candidate carries a
*global* harm with probability ``harm_rate`` and a *local* harm (one of H categories) with
probability ``local_harm_rate``. Every country rejects global harms; each local category is
rejected only by its *holder* countries (``local_harm_holders``, or each country with
probability ``local_harm_share``, keeping ≥ 1 holder and ≥ 1 indifferent country). The item's
m = ``annotators_per_item`` judges are distinct annotators drawn uniformly from the whole pool
(so across groups, each group in proportion to its share); the item is written in its first
judge's language, and every judge reads it (a multilingual panel). N = ``comparisons`` rows;
I = ⌈N / m⌉ items.

Texts. Each (language, value, non-zero level) has its own phrase and each harm its own phrase
(:mod:`pluralrm.simulate.lexicon`); a response is ``[opener] phrases [harm] closer``, so the
text carries the profile and the harm for a bag-of-n-grams model, plus filler variety.

Choices. Annotator a's utility of candidate r, in logits, and the draw (Bradley–Terry, or
Davidson with ties when ν = ``tie_strength`` > 0):

    U_a(r) = scale · w_a·v_r − harm_penalty · R_a(r),   R_a(r) = 1 if a's country rejects r's harm
    d = U_a(first) − U_a(second)
    P(first ≻ second) = sigmoid(d)                                        (ν = 0)
    P(first ≻ second) = e^{d/2} / (e^{d/2} + e^{−d/2} + ν),  P(tie) = ν / (same)   (ν > 0)

The winner is ``chosen`` with label 1.0; a tie writes the first candidate as chosen with label
0.5.

Truth (:class:`Truth`). ``p_annotator`` [N]: the probability each row's draw used (with ties,
its expected label). ``p_group`` [N, G']: each cell's *population* probability, integrating
over its annotators' noise: with μ_c = U_c(first) − U_c(second) at the cell's mean weights and
s = within_noise · scale · ‖v_first − v_second‖ (the sd of w_a·Δv within the cell, times
scale),

    p_c = E_Z[sigmoid(μ_c + s·Z)],  Z ~ N(0, 1),

computed by 64-node Gauss–Hermite for s < 2 and, for larger s, as Φ(μ/s) plus Gauss–Legendre
quadrature of the remainder sigmoid − step (accurate to ~1e-10; see
:func:`expected_preference`). A cell's utility of a candidate is distributed N(U_c(r),
(within_noise · scale · ‖v_r‖)²) over its annotators (``Truth.utility_mean`` /
``utility_std``). Bayes accuracies are E[max(p, 1 − p)] over each cell's rows under the
annotator's, the cell's, and (for a group-blind model) the population's p.

Between-group disagreement (``SimulationResult.summary``): over rows, the population-weighted sd
of p_group across cells, sqrt(Σ_c π_c (p_c − p_pooled)²), and the weighted mean |p_c − p_pooled|,
where p_pooled = Σ_c π_c p_c.

Usage
-----
    from pluralrm.simulate import SimulationResult, SocietyConfig, generate, load_default
    result = generate(SocietyConfig(countries=4, heterogeneity=1.5, seed=1))
    result.data            # datasets.Dataset (a ComparisonDataset)
    result.truth.p_group   # [N, G']
    result.save("society/"); SimulationResult.load("society/")
    load_default()         # the bundled society (preset "default")

Scoring a model against the truth: :mod:`pluralrm.simulate.recovery` (expected accuracy per
group next to the Bayes accuracies, retention of between-group disagreement).

CLI: ``pluralrm simulate --out DIR [...]``; the bundled data are regenerated byte-identically
by ``pluralrm simulate --preset default --out pluralrm/resources/default_society --force``.
"""
from pluralrm.simulate.choice_model import expected_label, expected_preference, win_tie_probabilities
from pluralrm.simulate.config import DEFAULT_SOCIETY, PRESETS, SocietyConfig, preset
from pluralrm.simulate.generate import STAGES, generate
from pluralrm.simulate.recovery import (
    GroupRecovery,
    deviation_correlation,
    expected_accuracy,
    group_recovery,
    truth_retention,
)
from pluralrm.simulate.result import SimulationResult, default_society_path, load_default
from pluralrm.simulate.truth import HARM_TYPES, Truth

__all__ = [
    "DEFAULT_SOCIETY",
    "GroupRecovery",
    "HARM_TYPES",
    "PRESETS",
    "STAGES",
    "SimulationResult",
    "SocietyConfig",
    "Truth",
    "default_society_path",
    "deviation_correlation",
    "expected_accuracy",
    "expected_label",
    "expected_preference",
    "generate",
    "group_recovery",
    "load_default",
    "preset",
    "truth_retention",
    "win_tie_probabilities",
]
