"""pluralrm.data.convert: ratings -> pairs on hand-made tables, and per-group preference rates."""
from collections import defaultdict
from itertools import combinations

import numpy as np
import pytest

from pluralrm.data.badrows import DataWarning
from pluralrm.data.convert import preference_rates, ratings_to_pairs
from pluralrm.data.io import load
from pluralrm.data.pairs import canonicalize_dataset
from pluralrm.errors import ConfigError, DataError

RATINGS = [
    {"item": "q1", "text": "a", "user": "u1", "score": 5, "country": "NG", "prompt": "Q1?"},
    {"item": "q1", "text": "b", "user": "u1", "score": 3, "country": "NG", "prompt": "Q1?"},
    {"item": "q1", "text": "c", "user": "u1", "score": 3, "country": "NG", "prompt": "Q1?"},
    {"item": "q1", "text": "a", "user": "u2", "score": 1, "country": "US", "prompt": "Q1?"},
    {"item": "q1", "text": "b", "user": "u2", "score": 2, "country": "US", "prompt": "Q1?"},
    {"item": "q2", "text": "d", "user": "u2", "score": 4, "country": "US", "prompt": "Q2?"},
]
COLUMNS = dict(item="item", response="text", annotator="user", score="score")


def _triples(ds):
    return [(r["annotator_id"], r["chosen"], r["rejected"], r["label"]) for r in ds]


def test_within_items_closed_form():
    ds = ratings_to_pairs(RATINGS, **COLUMNS, prompt="prompt", groups=["country"])
    assert _triples(ds) == [("u1", "a", "b", 1.0), ("u1", "a", "c", 1.0), ("u1", "b", "c", 0.5), ("u2", "b", "a", 1.0)]
    assert ds["prompt"] == ["Q1?"] * 4 and ds["item_id"] == ["q1"] * 4
    assert ds["country"] == ["NG", "NG", "NG", "US"] and ds["weight"] == [1.0] * 4


def test_tie_tolerance_and_direction():
    ds = ratings_to_pairs(RATINGS, **COLUMNS, tie_tolerance=1.0)
    assert [r["label"] for r in ds] == [1.0, 1.0, 0.5, 0.5]  # |5-3| > 1; |3-3|, |2-1| <= 1
    ds = ratings_to_pairs(RATINGS, **COLUMNS, higher_is_better=False)
    assert _triples(ds)[:2] == [("u1", "b", "a", 1.0), ("u1", "c", "a", 1.0)]
    assert set(ds["prompt"]) == {"Which response is better?"}


def _across_table(n_users=5, n_items=6, seed=0):
    rng = np.random.default_rng(seed)
    return [{"item": f"i{j}", "text": f"text {j}", "user": f"u{u}", "score": int(rng.integers(1, 6)),
             "g": "A" if u % 2 else "B"} for u in range(n_users) for j in range(n_items)]


def test_across_items_pairs_every_two_items_per_annotator():
    table = _across_table()
    ds = ratings_to_pairs(table, **COLUMNS, groups=["g"], pair_across_items=True, fixed_prompt="Which?")
    assert ds.num_rows == 5 * 15
    by_pair = defaultdict(set)
    for r in ds:
        a, b = r["item_id"].split("|")
        assert a < b and {r["chosen"], r["rejected"]} == {f"text {a[1:]}", f"text {b[1:]}"}
        by_pair[r["item_id"]].add(r["annotator_id"])
    assert all(len(users) == 5 for users in by_pair.values())
    scores = {(t["user"], t["text"]): t["score"] for t in table}
    for r in ds:
        s_c, s_r = scores[(r["annotator_id"], r["chosen"])], scores[(r["annotator_id"], r["rejected"])]
        assert (r["label"] == 0.5) == (s_c == s_r) and s_c >= s_r
    assert canonicalize_dataset(ds).num_units == 15


def test_capped_pairs_are_seeded_and_coordinated():
    table = _across_table(n_users=4, n_items=8)
    a = ratings_to_pairs(table, **COLUMNS, pair_across_items=True, max_pairs_per_annotator=5, seed=3)
    b = ratings_to_pairs(table, **COLUMNS, pair_across_items=True, max_pairs_per_annotator=5, seed=3)
    c = ratings_to_pairs(table, **COLUMNS, pair_across_items=True, max_pairs_per_annotator=5, seed=4)
    assert a.to_list() == b.to_list()
    kept = defaultdict(set)
    for r in a:
        kept[r["annotator_id"]].add(r["item_id"])
    assert all(len(pairs) == 5 for pairs in kept.values())
    assert len({frozenset(p) for p in kept.values()}) == 1  # same items rated -> same pairs kept
    assert {r["item_id"] for r in c} != {r["item_id"] for r in a}


def test_capped_pairs_prefer_pairs_others_share():
    table = _across_table(n_users=2, n_items=6)
    table = [t for t in table if not (t["user"] == "u1" and t["item"] == "i0")]
    ds = ratings_to_pairs(table, **COLUMNS, pair_across_items=True, max_pairs_per_annotator=4)
    kept = defaultdict(set)
    for r in ds:
        kept[r["annotator_id"]].add(r["item_id"])
    shared_candidates = {f"i{a}|i{b}" for a, b in combinations(range(1, 6), 2)}
    common = kept["u0"] & shared_candidates
    assert common <= kept["u1"]


def test_score_map_and_context():
    table = [{"item": i, "context": f"ctx {i}", "text": f"reply {i}", "user": "r1", "q": q}
             for i, q in enumerate(["No", "Yes", "Unsure"])]
    ds = ratings_to_pairs(table, item="item", response="text", annotator="user", score="q", context="context",
                          pair_across_items=True, score_map={"No": 1.0, "Unsure": 0.5, "Yes": 0.0})
    assert _triples(ds) == [("r1", "ctx 0\n\nreply 0", "ctx 1\n\nreply 1", 1.0),
                            ("r1", "ctx 0\n\nreply 0", "ctx 2\n\nreply 2", 1.0),
                            ("r1", "ctx 2\n\nreply 2", "ctx 1\n\nreply 1", 1.0)]
    table[1]["q"] = "Maybe"
    with pytest.raises(DataError, match="must be one of") as e:
        ratings_to_pairs(table, item="item", response="text", annotator="user", score="q",
                         pair_across_items=True, score_map={"No": 1.0, "Unsure": 0.5, "Yes": 0.0})
    assert (e.value.row, e.value.field, e.value.value) == (2, "q", "Maybe")


def test_bad_ratings_name_line_and_field(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("item,text,user,score\nq1,a,u1,5\nq1,b,u1,\nq1,,u1,2\nq1,c,u1,high\n")
    with pytest.raises(DataError) as e:
        ratings_to_pairs(path, **COLUMNS)
    assert (e.value.file, e.value.row, e.value.field) == (str(path), 3, "score")
    path.write_text("item,text,user,score\nq1,a,u1,5\nq1,b,u1,\nq1,,u1,2\nq1,c,u1,high\nq1,d,u1,1\n")
    with pytest.warns(DataWarning, match="skipped 3"):
        ds = ratings_to_pairs(path, **COLUMNS, on_bad_row="skip")
    assert _triples(ds) == [("u1", "a", "d", 1.0)]


def test_argument_errors():
    with pytest.raises(DataError, match="no column 'rating'") as e:
        ratings_to_pairs(RATINGS, item="item", response="text", annotator="user", score="rating")
    assert e.value.field == "rating"
    with pytest.raises(DataError, match="pair_across_items=True"):
        ratings_to_pairs([r for r in RATINGS if r["text"] != "a"][:1] + RATINGS[5:], **COLUMNS)
    with pytest.raises(ConfigError):
        ratings_to_pairs(RATINGS, **COLUMNS, prompt="prompt", pair_across_items=True)
    with pytest.raises(ConfigError):
        ratings_to_pairs(RATINGS, **COLUMNS, tie_tolerance=-1)
    with pytest.raises(ConfigError):
        ratings_to_pairs(RATINGS, **COLUMNS, max_pairs_per_annotator=0)


def _brute_force_rates(rows, attribute):
    """{(prompt, frozenset(pair), value): [n, k]} by direct counting."""
    out = defaultdict(lambda: [0, 0.0])
    for r in rows:
        first = min(r["chosen"], r["rejected"])
        vote = r["label"] if r["chosen"] == first else 1 - r["label"]
        key = (r["prompt"], frozenset((r["chosen"], r["rejected"])), r[attribute])
        out[key][0] += 1
        out[key][1] += vote
    return out


def test_preference_rates_match_brute_force():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):
        a, b = rng.choice(["x", "y", "z"], size=2, replace=False)
        rows.append({"prompt": str(rng.choice(["p", "q"])), "chosen": str(a), "rejected": str(b),
                     "label": float(rng.choice([1.0, 0.5, 0.8])), "country": str(rng.choice(["NG", "US", ""]))})
    ds = load(rows)
    rates = preference_rates(ds, by=["country"])
    pairs = canonicalize_dataset(ds)
    expected = _brute_force_rates(rows, "country")
    assert len(rates["unit"]) == len(expected) and rates["n"].sum() == 60
    for u, value, n, k, rate in zip(rates["unit"], rates["country"], rates["n"], rates["k"], rates["rate"]):
        first = rows[pairs.unit_row[u]]
        key = (first["prompt"], frozenset((first["chosen"], first["rejected"])), value)
        assert expected[key][0] == n and expected[key][1] == pytest.approx(k) and rate == pytest.approx(k / n)
    pooled = preference_rates(ds)
    assert pooled["n"].tolist() == np.bincount(pairs.unit).tolist()


def test_preference_rates_unknown_attribute(dataset):
    with pytest.raises(DataError) as e:
        preference_rates(dataset, by=["religion"])
    assert e.value.field == "religion"
