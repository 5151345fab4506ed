"""pluralrm.data.split: no leakage across splits, determinism, clear errors."""
import numpy as np
import pytest

from pluralrm.data.io import load
from pluralrm.data.split import split, split_assignment, train_val_test
from pluralrm.errors import ConfigError, DataError


@pytest.fixture
def society():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        rows.append({"prompt": f"prompt {rng.integers(40)}", "chosen": f"a{i}", "rejected": f"b{i}",
                     "annotator_id": f"ann{rng.integers(25)}", "item_id": f"item{rng.integers(30)}",
                     "country": str(rng.choice(["NG", "US", "IN", "BR", ""])), "language": str(rng.choice(["en", "yo"]))})
    return load(rows)


def _disjoint(parts, column):
    sets = [set(p[column]) for p in parts]
    return all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1:])


@pytest.mark.parametrize(("by", "column"), [("annotator", "annotator_id"), ("item", "item_id"), ("country", "country")])
def test_no_unit_in_two_splits(society, by, column):
    train, test = split(society, by=by, test_size=0.25, seed=1)
    assert train.num_rows + test.num_rows == society.num_rows
    assert _disjoint([train, test], column) and test.num_rows > 0
    train, val, test = train_val_test(society, by=by, val_size=0.2, test_size=0.2, seed=1)
    assert _disjoint([train, val, test], column) and min(train.num_rows, val.num_rows, test.num_rows) > 0


def test_item_falls_back_to_prompt(society):
    ds = society.remove_columns("item_id")
    train, test = split(ds, by="item", seed=0)
    assert _disjoint([train, test], "prompt")


def test_fractions_count_units(society):
    _, test = split(society, by="annotator", test_size=0.2, seed=0)
    assert len(set(test["annotator_id"])) == round(0.2 * len(set(society["annotator_id"])))
    _, test = split(society, by="random", test_size=0.1, seed=0)
    assert test.num_rows == 30


def test_deterministic_and_independent_of_row_order(society):
    a = split_assignment(society, "annotator", 0.1, 0.2, seed=5)
    assert np.array_equal(a, split_assignment(society, "annotator", 0.1, 0.2, seed=5))
    assert not np.array_equal(a, split_assignment(society, "annotator", 0.1, 0.2, seed=6))
    order = np.random.default_rng(1).permutation(society.num_rows)
    shuffled = split_assignment(society.select(order), "annotator", 0.1, 0.2, seed=5)
    assert np.array_equal(shuffled, a[order])


def test_rows_keep_their_order(society):
    train, test = split(society, by="random", seed=0)
    index = {c: i for i, c in enumerate(society["chosen"])}
    assert [index[c] for c in train["chosen"]] == sorted(index[c] for c in train["chosen"])


def test_holdout_a_group_value(society):
    train, test = split(society, by="country", holdout="NG")
    assert set(test["country"]) == {"NG"} and "NG" not in set(train["country"])
    train, val, test = train_val_test(society, by="country", holdout=["NG", "US"], val_size=0.3)
    assert set(test["country"]) == {"NG", "US"} and len(set(val["country"])) == 1
    assert _disjoint([train, val, test], "country")


def test_unknown_group_value_stays_in_training(society):
    for seed in range(5):
        train, test = split(society, by="country", test_size=0.5, seed=seed)
        assert "" not in set(test["country"]) and "" in set(train["country"])
        train, val, test = train_val_test(society, by="country", holdout="NG", val_size=0.5, seed=seed)
        assert "" not in set(val["country"]) | set(test["country"])


def test_errors(society):
    with pytest.raises(DataError, match="cannot split by 'religion'") as e:
        split(society, by="religion")
    assert e.value.field == "religion"
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="test_size"):
            split(society, test_size=bad)
    with pytest.raises(ConfigError, match="val_size"):
        train_val_test(society, val_size=0.6, test_size=0.5)
    with pytest.raises(DataError, match="does not occur") as e:
        split(society, by="country", holdout="FR")
    assert e.value.value == "FR"
    with pytest.raises(ConfigError, match="holdout"):
        split(society, by="annotator", holdout="ann1")
    one_annotator = society.map(lambda r: {"annotator_id": "solo"})
    with pytest.raises(DataError, match="would be empty"):
        split(one_annotator, by="annotator")
    with pytest.raises(DataError, match="would be empty"):
        train_val_test(society, by="language", holdout="en")
