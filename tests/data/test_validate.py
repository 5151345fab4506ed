"""pluralrm.data.validate: every rule, each error naming file, row, field and value."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pluralrm.data.io import load
from pluralrm.data.validate import parse_numbers, string_column
from pluralrm.errors import DataError

GOOD = {"prompt": "p", "chosen": "a", "rejected": "b"}


def _jsonl_error(tmp_path, bad_row: dict, position: int = 2) -> DataError:
    """Loads GOOD rows with ``bad_row`` on line ``position`` and returns the DataError."""
    rows = [GOOD] * 3
    rows[position - 1] = bad_row
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as e:
        load(path)
    assert e.value.file == str(path) and e.value.row == position
    assert str(path) in str(e.value) and f"row {position}" in str(e.value)
    return e.value


@pytest.mark.parametrize(
    ("bad_row", "field", "value", "words"),
    [
        ({"prompt": "p", "chosen": "a"}, "rejected", None, "missing required field"),
        ({**GOOD, "chosen": None}, "chosen", None, "missing required field"),
        ({**GOOD, "prompt": ""}, "prompt", "", "empty"),
        ({**GOOD, "rejected": " \t\n"}, "rejected", " \t\n", "empty"),
        ({**GOOD, "chosen": 42}, "chosen", 42, "must be a string"),
        ({**GOOD, "prompt": {"text": "p"}}, "prompt", {"text": "p"}, "must be a string"),
        ({**GOOD, "label": "0.5"}, "label", "0.5", "not a number"),
        ({**GOOD, "label": True}, "label", True, "not a number"),
        ({**GOOD, "label": 1.5}, "label", 1.5, "[0, 1]"),
        ({**GOOD, "label": -0.1}, "label", -0.1, "[0, 1]"),
        ({**GOOD, "weight": -2}, "weight", -2.0, ">= 0"),
        ({**GOOD, "weight": "heavy"}, "weight", "heavy", "not a number"),
        ({**GOOD, "country": ["NG", "GH"]}, "country", ["NG", "GH"], "single value"),
        ({**GOOD, "chosen_values": "high"}, "chosen_values", "high", "list of numbers"),
    ],
)
def test_bad_field_is_named(tmp_path, bad_row, field, value, words):
    e = _jsonl_error(tmp_path, bad_row)
    assert (e.field, e.value) == (field, value)
    assert words in str(e) and repr(field) in str(e)


def test_non_finite_numbers(tmp_path):
    path = tmp_path / "nan.jsonl"
    path.write_text(json.dumps(GOOD) + '\n{"prompt": "p", "chosen": "a", "rejected": "b", "weight": Infinity}\n')
    with pytest.raises(DataError, match="finite") as e:
        load(path)
    assert (e.value.row, e.value.field) == (2, "weight")
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        load([{**GOOD, "label": float("nan")}])


def test_missing_label_or_weight_defaults_per_row(tmp_path):
    ds = load([{**GOOD, "label": 0.5, "weight": 2.0}, GOOD, {**GOOD, "label": None, "weight": None}])
    assert ds["label"] == [0.5, 1.0, 1.0] and ds["weight"] == [2.0, 1.0, 1.0]
    (tmp_path / "e.csv").write_text("prompt,chosen,rejected,label\np,a,b,\np,a,b,0\n")
    assert load(tmp_path / "e.csv")["label"] == [1.0, 0.0]


def test_columns_absent_from_the_file(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("prompt,response_a,rejected\np,a,b\n")
    with pytest.raises(DataError, match="missing required field 'chosen'") as e:
        load(path)
    assert (e.value.file, e.value.row, e.value.field) == (str(path), 2, "chosen")


def test_parquet_column_of_the_wrong_type(tmp_path):
    pq.write_table(pa.table({"prompt": ["p", "q"], "chosen": [1, 2], "rejected": ["b", "c"]}), tmp_path / "t.parquet")
    with pytest.raises(DataError, match="must be a string") as e:
        load(tmp_path / "t.parquet")
    assert (e.value.row, e.value.field, e.value.value) == (1, "chosen", 1)


@pytest.mark.parametrize(
    ("chosen", "rejected", "field", "words"),
    [
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": 5}],
         [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}], "chosen", "string 'role' and 'content'"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
         [{"role": "user", "content": "other"}, {"role": "assistant", "content": "b"}], "chosen", "differ before"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "b", "rejected", "list of"),
    ],
)
def test_bad_conversations(chosen, rejected, field, words):
    good = {"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}
    with pytest.raises(DataError) as e:
        load([good, {"chosen": chosen, "rejected": rejected}])
    assert (e.value.row, e.value.field) == (2, field) and words in str(e.value)


def test_error_mode_stops_at_the_first_bad_row_and_says_how_to_skip(tmp_path):
    e = _jsonl_error(tmp_path, {**GOOD, "label": 3}, position=3)
    assert "on_bad_row='skip'" in str(e)


def test_parse_numbers_closed_forms():
    values, missing, not_number = parse_numbers(pa.array([" 1.5", "x", "", None, "1e-3", "-2", "nan", "7."]), text=True)
    assert missing.tolist() == [False, False, True, True, False, False, False, False]
    assert not_number.tolist() == [False, True, False, False, False, False, True, False]
    np.testing.assert_array_equal(values[[0, 4, 5, 7]], [1.5, 1e-3, -2.0, 7.0])
    _, _, strict = parse_numbers(pa.array(["1"]), text=False)
    assert strict.tolist() == [True]


def test_string_column_casts_scalars_and_flags_nested():
    strings, missing, nested = string_column(pa.array([1, None, 3]))
    assert strings.to_pylist() == ["1", "", "3"] and missing.tolist() == [False, True, False]
    assert not nested.any()
    strings, _, nested = string_column(pa.array([[1], None]))
    assert strings is None and nested.tolist() == [True, False]
