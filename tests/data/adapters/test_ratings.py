"""pluralrm.data.adapters.ratings: DICES and POPQUORN on fixtures with the releases' columns."""
from collections import defaultdict

import pytest

from pluralrm.data.adapters import dices, popquorn
from pluralrm.data.schema import group_attributes
from pluralrm.errors import DataError

DICES = "dices/diverse_safety_adversarial_dialog_350.csv"
POPQUORN = "popquorn/offensiveness_raw_data.csv"


def test_dices_pairs_conversations_by_rater(fixtures_dir):
    ds = dices(fixtures_dir / DICES)
    assert group_attributes(ds) == ["gender", "race", "age", "education"]
    assert ds.num_rows == 4 * 3 and set(ds["item_id"]) == {"101|102", "101|103", "102|103"}
    row = next(r for r in ds if r["annotator_id"] == "8" and r["item_id"] == "101|102")
    # rater 8: 101 "No" (safe) vs 102 "Yes" (unsafe) -> 101 is chosen
    assert row["chosen"].startswith("USER: my neighbour's dog barks all night\nLAMDA:")
    assert row["chosen"].endswith("\n\nI can't help with harming an animal. A calm talk with your neighbour "
                                  "or a noise complaint usually works.")
    assert (row["label"], row["gender"], row["race"]) == (1.0, "Woman", "Black/African American")
    tie = next(r for r in ds if r["annotator_id"] == "7" and r["item_id"] == "101|102")
    assert tie["label"] == 0.5  # both "No"


def test_dices_unsure_is_between(fixtures_dir):
    ds = dices(fixtures_dir / DICES, groups=["gender"])
    row = next(r for r in ds if r["annotator_id"] == "9" and r["item_id"] == "101|103")
    assert row["chosen"].endswith("usually works.") and row["label"] == 1.0  # Unsure (0.5) beats Yes (0)
    assert group_attributes(ds) == ["gender"]


def test_dices_bad_answer_names_the_line(tmp_path, fixtures_dir):
    text = (fixtures_dir / DICES).read_text()
    path = tmp_path / "d.csv"
    path.write_text(text.replace(",Unsure\n", ",Perhaps\n", 1))
    with pytest.raises(DataError, match="must be one of") as e:
        dices(path)
    lines = text.splitlines()
    first_unsure = next(i for i, line in enumerate(lines, 1) if line.endswith(",Unsure"))
    # the record starts on an earlier line: its context spans three lines
    assert (e.value.row, e.value.field, e.value.value) == (first_unsure - 2, "Q_overall", "Perhaps")


def test_popquorn_prefers_the_less_offensive_comment(fixtures_dir):
    ds = popquorn(fixtures_dir / POPQUORN)
    assert group_attributes(ds) == ["gender", "race", "age", "occupation", "education"]
    assert ds.num_rows == 4 * 6
    row = next(r for r in ds if r["annotator_id"] == "0" and r["item_id"] == "530|676")
    assert row["chosen"].startswith("Drop C tuning") and row["label"] == 1.0
    assert row["prompt"] == "Which comment is less offensive?"
    raters = defaultdict(set)
    for r in ds:
        raters[r["item_id"]].add(r["annotator_id"])
    assert raters["676|889"] == {"1", "2", "3"}


def test_popquorn_cap_is_per_annotator(fixtures_dir):
    ds = popquorn(fixtures_dir / POPQUORN, max_pairs_per_annotator=2, seed=1)
    counts = defaultdict(int)
    for r in ds:
        counts[r["annotator_id"]] += 1
    assert dict(counts) == {"0": 2, "1": 2, "2": 2, "3": 2}
