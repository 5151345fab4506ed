"""Community Alignment adapter on a fixture in the released CSV schema (41 fields)."""
import csv
import warnings

import pytest

from pluralrm.cli import main
from pluralrm.data.adapters import ADAPTERS, CA_GROUPS, community_alignment
from pluralrm.data.adapters.community_alignment import pair_item_id
from pluralrm.data.badrows import DataWarning
from pluralrm.errors import ConfigError, DataError

P1 = "What should I do when my neighbours play loud music at night?"
R1 = ["Talk to them calmly and explain how it affects your sleep.",
      "Call the police right away; noise at night is illegal.",
      "Leave a polite note so nobody feels confronted.", "Ask the building manager to handle it for you."]


@pytest.fixture
def ca_file(fixtures_dir):
    return fixtures_dir / "community-alignment" / "community_alignment.csv"


def test_every_candidate_set_becomes_preferred_vs_each_other_pair_with_groups(ca_file):
    ds = community_alignment(ca_file)
    assert ADAPTERS["community-alignment"] is community_alignment
    assert ds.num_rows == 4 + 3 + 4 + 3  # c1: 3 + 1, c2: 3, c3: 2 + 2 (third turn empty), c4: 3
    rows = ds.to_list()
    assert set(ds.column_names) >= {"prompt", "chosen", "rejected", "label", "annotator_id", "weight", "item_id",
                                    *CA_GROUPS}
    first = rows[:3]
    assert {r["prompt"] for r in first} == {f"user: {P1}"}
    assert [r["chosen"] for r in first] == [R1[0]] * 3 and [r["rejected"] for r in first] == R1[1:]
    assert all(r["label"] == 1.0 and r["weight"] == 1.0 for r in rows)
    assert first[0]["annotator_id"] == "ann_101"
    assert {k: first[0][k] for k in CA_GROUPS} == {
        "country": "United States", "language": "en", "age": "25-34", "gender": "Female",
        "education": "Bachelor's degree", "political": "Centre", "ethnicity": "White"}
    # the second turn's prompt is the conversation so far, continued with the preferred response
    assert rows[3]["prompt"] == f"user: {P1}\n\nassistant: {R1[0]}\n\nuser: They ignored me. What now?"
    assert (rows[3]["chosen"], rows[3]["rejected"]) == ("Write to your landlord with dates and times.",
                                                        "Play your own music back at them.")
    # orientation-free items: annotators 101 (a over b) and 202 (b over a) share the pair's id
    c1 = next(r for r in rows if r["annotator_id"] == "ann_101" and r["rejected"] == R1[1])
    c2 = next(r for r in rows if r["annotator_id"] == "ann_202" and r["rejected"] == R1[0])
    assert c2["chosen"] == R1[1] and c1["item_id"] == c2["item_id"] == pair_item_id(f"user: {P1}", R1[1], R1[0])
    french = [r for r in rows if r["annotator_id"] == "ann_303"]
    assert len(french) == 4 and french[0]["language"] == "fr" and french[0]["country"] == "France"
    assert french[0]["chosen"] == "Ne réponds pas."


def test_options_groups_history_and_pregenerated_only(ca_file):
    ds = community_alignment(ca_file, groups=["country", "language"], history=False, pregenerated_only=True)
    assert [c for c in ds.column_names if c in CA_GROUPS] == ["country", "language"]
    assert ds.num_rows == 4 + 3 + 3  # the user-initiated French conversation is left out
    assert ds[3]["prompt"] == "They ignored me. What now?"
    with pytest.raises(ConfigError, match="unknown Community Alignment group attribute 'religion'"):
        community_alignment(ca_file, groups=["religion"])


def _rewrite(src, dst, row, field, value):
    with open(src, newline="") as f:
        records = list(csv.DictReader(f))
    records[row][field] = value
    with open(dst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    return dst


def test_bad_rows_name_the_row_and_field_or_are_skipped(ca_file, tmp_path):
    bad = _rewrite(ca_file, tmp_path / "bad.csv", 1, "first_turn_preferred_response", "response_e")
    with pytest.raises(DataError) as e:
        community_alignment(bad)
    assert e.value.field == "first_turn_preferred_response" and "response_e" in str(e.value)
    assert "bad.csv" in str(e.value) and e.value.row == 3  # the file's line: header is line 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = community_alignment(bad, on_bad_row="skip")
    assert ds.num_rows == 14 - 3
    assert any(issubclass(w.category, DataWarning) and "skipped 1 conversation" in str(w.message) for w in caught)
    missing = tmp_path / "missing.csv"
    missing.write_text("conversation_id,annotator_id\nc1,a\n")
    with pytest.raises(DataError, match="need 'first_turn_prompt'"):
        community_alignment(missing)


def test_data_summary_shows_its_groups(ca_file, capsys):
    assert main(["data", "summary", str(ca_file), "--adapter", "community-alignment",
                 "--groups", "country,language"]) == 0
    out = capsys.readouterr().out
    assert "14" in out and "country" in out and "United States" in out and "India" in out and "language" in out
