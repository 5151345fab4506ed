"""pluralrm.data.io: round trips through every format, defaults, groups, column mapping, policies."""
import gzip
import json
import warnings

import datasets
import pyarrow as pa
import pytest

from pluralrm.data.io import DataWarning, load, load_with_report, save
from pluralrm.data.schema import CORE_COLUMNS, group_attributes
from pluralrm.errors import ConfigError, DataError


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.csv", "d.tsv", "d.parquet", "saved"])
def test_round_trip_every_format(tmp_path, dataset, name):
    path = save(dataset, tmp_path / name)
    back = load(path)
    assert back.column_names == dataset.column_names
    assert back.features == dataset.features
    assert back.to_list() == dataset.to_list()


def test_round_trip_value_lists(tmp_path, rows):
    for r in rows:
        r["chosen_values"], r["rejected_values"] = [0.1, 1.0], [0.5, 0.0]
    ds = load(rows)
    assert ds.features["chosen_values"] == datasets.List(datasets.Value("float64"))
    for name in ("v.jsonl", "v.parquet", "v.json"):
        assert load(save(ds, tmp_path / name)).to_list() == ds.to_list()
    with pytest.raises(DataError, match="CSV cannot hold") as e:
        save(ds, tmp_path / "v.csv")
    assert e.value.field == "chosen_values"


def test_gzip_and_json_variants(tmp_path, rows):
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    (tmp_path / "hf.json").write_text(json.dumps({"data": rows}))
    (tmp_path / "lines.json").write_text("\n".join(json.dumps(r) for r in rows))
    expected = load(rows).to_list()
    for name in ("d.jsonl.gz", "hf.json", "lines.json"):
        assert load(tmp_path / name).to_list() == expected


def test_dataset_dict_directory_needs_a_split(tmp_path, dataset):
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(str(tmp_path / "dd"))
    assert load(tmp_path / "dd", split="test").to_list() == dataset.select([0]).to_list()
    with pytest.raises(DataError, match="pick a split") as e:
        load(tmp_path / "dd")
    assert e.value.file == str(tmp_path / "dd") and "train" in str(e.value)


def test_in_memory_sources_agree(rows):
    expected = load(rows).to_list()
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    assert load(columns).to_list() == expected
    assert load(pa.Table.from_pylist(rows)).to_list() == expected
    assert load(datasets.Dataset.from_list(rows)).to_list() == expected


def test_defaults_for_missing_optional_columns():
    ds = load([{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert ds.column_names == list(CORE_COLUMNS)
    assert ds[0] == {"prompt": "p", "chosen": "a", "rejected": "b", "label": 1.0, "annotator_id": "",
                     "weight": 1.0}
    assert ds.features["label"] == datasets.Value("float64")


def test_group_values_become_strings_and_missing_is_unknown():
    ds = load([{"prompt": "p", "chosen": "a", "rejected": "b", "age": 30, "annotator_id": 7},
               {"prompt": "p", "chosen": "a", "rejected": "b", "age": None, "annotator_id": None}])
    assert ds["age"] == ["30", ""] and ds["annotator_id"] == ["7", ""]
    assert ds.features["age"] == datasets.Value("string")


def test_groups_select_order_and_check(rows):
    ds = load(rows, groups=["language", "country"])
    assert group_attributes(ds) == ["language", "country"]
    with pytest.raises(DataError, match="undeclared group attribute 'language'") as e:
        load(rows, groups=["country"])
    assert e.value.field == "language"
    with pytest.raises(DataError, match="not a field") as e:
        load(rows, groups=["country", "religion"])
    assert e.value.field == "religion"
    with pytest.raises(ConfigError, match="reserved"):
        load(rows, groups=["label"])


def test_extra_ignore_drops_and_says_so(rows):
    with pytest.warns(DataWarning, match="language"):
        ds, report = load_with_report(rows, groups=["country"], extra="ignore")
    assert group_attributes(ds) == ["country"]
    assert report.dropped_columns == ("language",)


def test_column_mapping(rows):
    theirs = [{"question": r["prompt"], "response_a": r["chosen"], "response_b": r["rejected"],
               "Country": r["country"]} for r in rows]
    ds = load(theirs, columns={"prompt": "question", "chosen": "response_a", "rejected": "response_b",
                               "country": "Country"})
    assert ds["chosen"] == [r["chosen"] for r in rows] and ds["country"] == [r["country"] for r in rows]
    with pytest.raises(DataError, match="no such column") as e:
        load(theirs, columns={"chosen": "response_c"})
    assert e.value.field == "response_c"


def test_errors_name_the_source_column_after_mapping(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "m.jsonl", [{"q": "p", "a": "x", "b": "y", "pref": 3}])
    with pytest.raises(DataError) as e:
        load(path, columns={"prompt": "q", "chosen": "a", "rejected": "b", "label": "pref"})
    assert (e.value.file, e.value.row, e.value.field, e.value.value) == (str(path), 1, "pref", 3.0)


def test_conversational_columns_are_flattened():
    user = {"role": "user", "content": "Hi"}
    implicit = {"chosen": [user, {"role": "assistant", "content": "Hello!"}],
                "rejected": [user, {"role": "assistant", "content": "Go away."}]}
    explicit = {"prompt": [{"role": "system", "content": "Be kind."}, user],
                "chosen": [{"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "assistant", "content": "Go away."}]}
    assert load([implicit])[0]["prompt"] == "user: Hi"
    row = load([explicit])[0]
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("system: Be kind.\n\nuser: Hi", "Hello!", "Go away.")


def test_skip_reports_count_and_first_reasons(tmp_path, rows, write_jsonl):
    rows[1]["label"] = 7
    rows[3]["chosen"] = "   "
    path = write_jsonl(tmp_path / "s.jsonl", rows, raw_lines={4: "{not json"})
    with pytest.warns(DataWarning, match="skipped 3") as record:
        ds, report = load_with_report(path, on_bad_row="skip")
    assert ds.num_rows == 2 and report.rows_read == 5 and report.rows_skipped == 3
    assert [(e.row, e.field) for e in report.problems] == [(2, "label"), (4, "chosen"), (5, None)]
    assert "row 2" in str(record[0].message)
    assert load(rows[:1] + rows[2:3]).to_list() == ds.to_list()


def test_load_skip_warns_even_without_report(tmp_path, rows):
    rows[0]["weight"] = -1
    with pytest.warns(DataWarning, match="weight"):
        assert load(rows, on_bad_row="skip").num_rows == 4


def test_clean_load_does_not_warn(dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, report = load_with_report(dataset)
    assert report.rows_skipped == 0 and report.problems == ()


def test_policy_arguments_are_checked(rows):
    with pytest.raises(ConfigError, match="on_bad_row"):
        load(rows, on_bad_row="ignore")
    with pytest.raises(ConfigError, match="extra"):
        load(rows, groups=["country"], extra="keep")
    with pytest.raises(ConfigError, match="format"):
        load(rows, format="csv")


def test_works_offline(tmp_path, dataset, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load(save(dataset, tmp_path / "offline")).num_rows == dataset.num_rows
