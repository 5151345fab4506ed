"""experiments/harms.py at its --quick size, and its refusal rates on the truth itself."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import harms
from pluralrm.simulate import SocietyConfig, generate

SOCIETY = SocietyConfig(countries=3, languages=3, country_names=("US", "MX", "EG"),
                        language_names=("en", "es", "ar"), annotators_per_group=5, comparisons=3000,
                        annotators_per_item=1, harm_rate=0.15, local_harm_rate=0.4,
                        local_harm_holders=(("EG",), ("US", "MX")), seed=9)


def test_truth_scored_as_a_model_matches_itself_and_local_harms_split_groups():
    truth = generate(SOCIETY).truth
    pairs = harms.harm_pairs(truth, np.arange(len(truth.row_item)))
    assert set(np.unique(pairs["kind"])) == {1, 2}
    p = truth.p_group[pairs["row"]]
    rates = harms.refusal_rates(p, p, pairs, truth)
    for lang in truth.languages:
        for kind in harms.KINDS:
            r = rates[lang][kind]
            assert r["n"] > 0 and r["model"] == r["truth"] and r["model_p"] == r["truth_p"]
        # holders reject their local harms almost always, the others only as their values say
        assert rates[lang]["local_holders"]["truth"] > 0.85
        assert rates[lang]["local_others"]["truth"] < rates[lang]["local_holders"]["truth"] - 0.2


def test_transfer_rows_keep_harms_in_the_source_language_only():
    truth = generate(SOCIETY).truth
    kept = harms.transfer_rows(truth, "es")
    item = truth.row_item[kept]
    harmful = (truth.harm_type[item] != 0).any(axis=1)
    assert harmful.any() and np.all(truth.item_language[item][harmful] == truth.languages.index("es"))
    clean = ~(truth.harm_type[truth.row_item] != 0).any(axis=1)
    assert np.isin(np.flatnonzero(clean), kept).all()


@pytest.mark.slow
def test_quick_run(tmp_path):
    assert harms.main(["--quick", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "harms.json").read_text())
    seed = saved["results"]["per_seed"][0]
    assert set(seed["models"]) == {"all_languages/conditioned", "transfer/conditioned"}
    assert seed["train_rows"]["transfer"] < seed["train_rows"]["all_languages"]
    rates = seed["models"]["transfer/conditioned"]["rates"]
    assert set(rates) == {"en", "es", "fr", "ar"}
    assert all(0.0 <= r[k]["model"] <= 1.0 for r in rates.values() for k in harms.KINDS if r[k]["n"])
    assert "en (source)" in saved["tables"]["transfer/conditioned"]


@pytest.mark.slow
def test_finding_harm_knowledge_stays_in_its_language(tmp_path):
    """The study's findings on one seed at the default size (conditioned heads only). The quick
    size cannot show them: at 30 steps, 4 seeds gave global refusal rates from 0.22 to 0.71 in
    every language (chance), measured on 2026-12-06 with `--quick --seeds 0,1,2,3`.

    Measured spread (experiments/results/harms.json, default size, seeds 0-2): the transfer
    model's global-harm refusal in English minus its mean over es/fr/ar = 0.305 / 0.327 / 0.429;
    the all-languages conditioned model's local-harm refusal, holders minus others, smallest
    over languages = 0.321 / 0.371 / 0.381. Margins: half the smallest measured value."""
    assert harms.main(["--seeds", "0", "--set", "heads=[conditioned]", "--out", str(tmp_path)]) == 0
    models = json.loads((tmp_path / "harms.json").read_text())["results"]["per_seed"][0]["models"]
    transfer = models["transfer/conditioned"]["rates"]
    gap = transfer["en"]["global"]["model"] - np.mean([transfer[lang]["global"]["model"] for lang in ("es", "fr", "ar")])
    assert gap > 0.15, gap
    everywhere = models["all_languages/conditioned"]["rates"]
    local = min(r["local_holders"]["model"] - r["local_others"]["model"] for r in everywhere.values())
    assert local > 0.16, local
