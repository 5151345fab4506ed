"""The calibration module on the simulator, where the truth is known."""
import numpy as np
import pytest

from pluralrm.calibration import analyze
from pluralrm.simulate import SocietyConfig, generate


def society(heterogeneity: float):
    # every item judged by 16 annotators so that each country has several votes per unit;
    # the same seed keeps every draw but the planted differences (see simulate.generate)
    return generate(SocietyConfig(countries=3, languages=1, heterogeneity=heterogeneity, comparisons=9_600,
                                  annotators_per_item=16, annotators=90, harm_rate=0.0, local_harm_rate=0.0,
                                  seed=11))


@pytest.mark.slow
def test_data_level_divergence_rises_with_heterogeneity():
    gaps, jsd = [], []
    for h in (0.0, 0.5, 1.0, 2.0):
        report = analyze(society(h).data, by="country", bootstrap=0, permutations=0)
        g = report.preference_gap.values
        d = report.divergence.values
        off = ~np.eye(len(g), dtype=bool)
        gaps.append(float(np.nanmean(g[off])))
        jsd.append(float(np.nanmean(d[off])))
    assert all(a < b for a, b in zip(gaps, gaps[1:])), gaps
    assert all(a < b for a, b in zip(jsd, jsd[1:])), jsd
    assert gaps[0] < 0.05  # homogeneous: the noise-corrected gap is close to zero


@pytest.mark.slow
def test_truth_retains_and_pooled_truth_washes_out():
    """The simulator's own group probabilities keep the disagreement (retention ≈ 1); the
    population's pooled probability applied to every group keeps none (exactly 0)."""
    result = society(1.5)
    truth, data = result.truth, result.data
    labels = list(truth.group_labels)
    labels = [",".join(kv for kv in label.split(",") if kv.startswith("country=")) for label in labels]
    true_report = analyze(data, by="country", group_predictions=truth.p_group, group_labels=labels,
                          bootstrap=200, permutations=0)
    pooled = np.repeat(truth.p_pooled[:, None], len(labels), axis=1)
    pooled_report = analyze(data, by="country", group_predictions=pooled, group_labels=labels,
                            bootstrap=0, permutations=0)
    overall = {r["group"]: r for r in true_report.fidelity.rows()}["all"]
    assert 0.8 < overall["retention"] < 1.25, overall
    assert overall["retention_low"] < 1.0 < overall["retention_high"]
    assert {r["group"]: r for r in pooled_report.fidelity.rows()}["all"]["retention"] == pytest.approx(0.0, abs=1e-12)
