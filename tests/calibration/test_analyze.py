"""analyze(): sections, JSON, predictions handling."""
import json

import numpy as np
import pytest

from pluralrm.calibration import analyze
from pluralrm.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def report(society):
    return analyze(society.dataset, predictions=society.true_predictions(), by="country", bootstrap=200,
                   unit="annotator", permutations=99, group_predictions=society.true_group_predictions(),
                   group_labels=[f"country={g}" for g in society.groups])


def test_data_only_report_has_no_model_sections(society):
    r = analyze(society.dataset, by="country", bootstrap=0, permutations=0)
    assert r.calibration is None and r.fidelity is None and r.alignment is None
    assert set(r.sections()) == {"groups", "agreement", "agreement_normalized", "divergence", "divergence_units",
                                 "preference_gap", "group_tests", "contested"}
    assert np.isnan(r.groups.columns["gai_p"]).all()
    assert r.settings["groups"] == ["country=IN", "country=NG", "country=US"]


def test_full_report_sections_and_values(report, society):
    assert report.calibration.num_rows == 4 and report.calibration.columns["group"][-1] == "all"
    cal = report.calibration.to_pandas()
    assert (cal["accuracy_low"] <= cal["accuracy"]).all() and (cal["accuracy"] <= cal["accuracy_high"]).all()
    assert (cal["rows"][:3] == society.dataset.num_rows // 3).all()
    assert report.reliability.num_rows == 4 * 10
    fidelity = report.fidelity.to_pandas().set_index("group")
    assert 0.5 < fidelity.loc["all", "retention"] < 1.6                 # true probabilities
    assert (report.groups.columns["gai_p"] == 0.01).all()               # planted group structure
    assert (report.group_tests.columns["p_holm"] >= report.group_tests.columns["p"]).all()
    alignment = report.alignment.values
    assert (np.argmax(alignment, axis=0) == np.arange(3)).all()
    frames = report.tables()
    assert set(frames) == set(report.sections()) and frames["agreement"].shape == (3, 3)


def test_json_holds_every_number_and_no_nan(report):
    text = report.to_json()
    data = json.loads(text)
    assert "NaN" not in text
    assert data["settings"]["bootstrap_unit"] == "annotator"
    assert data["agreement"]["values"][0][0] == pytest.approx(report.agreement.values[0, 0])
    assert len(data["calibration"]["columns"]["ece_high"]) == 4


def test_pooled_predictions_retain_nothing(society):
    pooled = society.truth.mean(1)[society.row_unit]
    predictions = np.where(society.first_is_chosen, pooled, 1 - pooled)
    r = analyze(society.dataset, predictions=predictions, by="country", bootstrap=50, unit="item", permutations=0)
    np.testing.assert_allclose(r.fidelity.columns["retention"], 0.0, atol=1e-12)


def test_predictions_are_checked(society):
    n = society.dataset.num_rows
    with pytest.raises(DataError, match="predictions must be"):
        analyze(society.dataset, predictions=np.full(n - 1, 0.5), by="country", bootstrap=0, permutations=0)
    bad = np.full(n, 0.5)
    bad[6] = 1.2
    with pytest.raises(DataError, match="row 7"):
        analyze(society.dataset, predictions=bad, by="country", bootstrap=0, permutations=0)
    with pytest.raises(DataError, match="country=US"):
        analyze(society.dataset, by="country", group_predictions=np.full((n, 2), 0.5),
                group_labels=["country=NG", "country=IN"], bootstrap=0, permutations=0)
    with pytest.raises(ConfigError):
        analyze(society.dataset, by="country", unit="rater")


def test_rows_of_unknown_group_are_kept_out_of_groups(society_factory):
    s = society_factory(num_units=40, missing_group_rate=0.2, seed=5)
    r = analyze(s.dataset, predictions=s.true_predictions(), by="country", bootstrap=20, permutations=0)
    missing = int(np.sum(np.asarray(s.dataset["country"][:]) == ""))
    assert r.settings["rows_without_group"] == missing > 0
    assert r.calibration.columns["rows"][-1] == s.dataset.num_rows          # "all" keeps them
    assert r.groups.columns["rows"].sum() == s.dataset.num_rows - missing


def test_min_votes_adapts_to_the_votes_per_group_and_says_so(society_factory):
    for votes, expected in ((4, 3), (2, 2), (1, 1)):
        s = society_factory(num_units=60, votes_per_group=votes, seed=votes)
        r = analyze(s.dataset, by="country", bootstrap=0, permutations=0)
        assert r.settings["min_votes"] == expected
        assert any(n.startswith(f"min_votes {expected} (chosen for this data") for n in r.settings["notes"])
        assert r.divergence_units.values[0, 1] == 60  # every unit is shared: the heatmap is filled
    given = analyze(s.dataset, by="country", bootstrap=0, permutations=0, min_votes=3)
    assert given.settings["min_votes"] == 3 and given.divergence_units.values[0, 1] == 0
    assert "divergence" in given.settings["unavailable"]


def test_sections_that_cannot_be_computed_say_why_in_the_report(society_factory, tmp_path):
    from pluralrm.calibration import write_report

    s = society_factory(num_units=40, votes_per_group=1, seed=5)  # one vote per group and unit
    r = analyze(s.dataset, predictions=s.true_predictions(), by="country", bootstrap=0, permutations=0)
    assert "fidelity" in r.settings["unavailable"] and "divergence" not in r.settings["unavailable"]
    assert "more votes per group" in r.settings["unavailable"]["fidelity"]
    paths = write_report(r, tmp_path / "report")
    markdown = paths["markdown"].read_text()
    assert "Not computed: disagreement retention needs" in markdown
    assert not (tmp_path / "report" / "figures" / "retention.png").exists()  # no empty figure


def test_unseen_groups_get_their_own_calibration_row(society):
    r = analyze(society.dataset, predictions=society.true_predictions(), by="country", bootstrap=0,
                permutations=0, unseen_groups=["country=IN", "country=XX"])
    assert r.settings["unseen_groups"] == ["country=IN"]
    cal = r.calibration.to_pandas().set_index("group")
    assert cal.loc["unseen groups (shared reward)", "rows"] == cal.loc["country=IN", "rows"]
    assert cal.loc["unseen groups (shared reward)", "nll"] == pytest.approx(cal.loc["country=IN", "nll"])
    assert any("never saw: country=IN" in n for n in r.settings["notes"])
