"""pluralrm.data.adapters.prism on a fixture with PRISM's field names and nesting."""
import json

import pytest

from pluralrm.data.adapters import PRISM_GROUPS, prism
from pluralrm.data.badrows import DataWarning
from pluralrm.data.schema import group_attributes
from pluralrm.errors import ConfigError, DataError


@pytest.fixture
def files(fixtures_dir):
    return fixtures_dir / "prism" / "utterances.jsonl", fixtures_dir / "prism" / "survey.jsonl"


def test_chosen_against_each_other_response(files):
    ds = prism(*files, groups=["country", "birth_country", "gender", "religion"])
    assert group_attributes(ds) == ["country", "birth_country", "gender", "religion"]
    # 4 + 2 + 4 + 3 responses per turn -> 3 + 1 + 3 + 2 pairs with the chosen one
    assert ds.num_rows == 9
    int0 = [r for r in ds if r["item_id"] == "int0"]
    assert {r["chosen"] for r in int0} == {"Small kind lies can protect feelings, but honesty usually builds more trust."}
    assert sorted(r["label"] for r in int0) == [0.5, 1.0, 1.0]  # one response tied at 80
    user1 = next(r for r in ds if r["annotator_id"] == "user1")
    assert (user1["country"], user1["birth_country"], user1["gender"], user1["religion"]) == (
        "United Kingdom", "Nigeria", "Male", "Muslim")
    assert "EMPTY STRING" in ds["rejected"]


def test_all_pairs_and_soft_labels(files):
    ds = prism(*files, pairs="all", labels="score")
    assert ds.num_rows == 6 + 1 + 6 + 3
    assert group_attributes(ds) == list(PRISM_GROUPS)
    labels = {(r["chosen"], r["rejected"]): r["label"] for r in ds}
    assert labels[("Small kind lies can protect feelings, but honesty usually builds more trust.",
                   "No. Lying is always wrong.")] == pytest.approx(0.5 + 0.5 * 45 / 99)
    assert labels[("Yes, elders know best.", "Families differ; there is no single rule.")] == 0.5  # 70 vs 70


def test_history_prompts(files):
    ds = prism(files[0], history=True)
    second_turn = next(r for r in ds if r["item_id"] == "int1")
    assert second_turn["prompt"] == (
        "user: Is it ever acceptable to tell a white lie to a friend?\n\n"
        "assistant: Small kind lies can protect feelings, but honesty usually builds more trust.\n\n"
        "user: What if the friend asks me directly for my honest opinion?")
    assert group_attributes(ds) == []


def test_participant_without_survey_row_is_unknown_and_reported(tmp_path, files):
    survey = tmp_path / "survey.jsonl"
    survey.write_text("\n".join(files[1].read_text().splitlines()[1:]) + "\n")
    with pytest.warns(DataWarning, match="user0"):
        ds = prism(files[0], survey, groups=["country"])
    assert {r["country"] for r in ds if r["annotator_id"] == "user0"} == {""}


def test_errors(tmp_path, files):
    with pytest.raises(DataError, match="survey has no field 'location_home'") as e:
        prism(*files, groups={"home": "location_home"})
    assert e.value.field == "location_home"
    with pytest.raises(ConfigError):
        prism(files[0], groups=["country"])
    with pytest.raises(ConfigError):
        prism(*files, groups=["shoe_size"])
    lines = files[0].read_text().splitlines()
    record = json.loads(lines[4])
    record["score"] = "great"
    lines[4] = json.dumps(record)
    bad = tmp_path / "u.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        prism(bad)
    assert (e.value.file, e.value.row, e.value.field, e.value.value) == (str(bad), 5, "score", "great")
    record = json.loads(lines[0])
    del record["if_chosen"]
    with pytest.raises(DataError, match="if_chosen"):
        prism([record])


def test_survey_lines_that_cannot_be_read(tmp_path, files):
    survey = tmp_path / "survey.jsonl"
    lines = files[1].read_text().splitlines()
    unused = json.loads(lines[2])
    unused["lm_usecases"] = "several"  # a field no group attribute uses: ignored
    survey.write_text("\n".join(lines[:2] + [json.dumps(unused)]) + "\n")
    assert prism(files[0], survey, groups=["country"]).num_rows == 9
    survey.write_text("\n".join(lines[:2] + ["{broken"]) + "\n")
    with pytest.raises(DataError, match="not valid JSON") as e:
        prism(files[0], survey, groups=["country"])
    assert (e.value.file, e.value.row) == (str(survey), 3)
