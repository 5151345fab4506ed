"""pluralrm.data.readers: formats, and the row numbers errors report (lines for JSONL/CSV)."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pluralrm.data.io import load
from pluralrm.data.readers import format_from_suffix, read_source
from pluralrm.errors import ConfigError, DataError

GOOD = {"prompt": "p", "chosen": "a", "rejected": "b"}


def _error(path, **kwargs) -> DataError:
    with pytest.raises(DataError) as e:
        load(path, **kwargs)
    return e.value


def test_format_from_suffix(tmp_path):
    assert format_from_suffix(tmp_path / "a.JSONL.gz") == "jsonl"
    assert format_from_suffix(tmp_path / "a.ndjson") == "jsonl"
    assert format_from_suffix(tmp_path / "a.pq") == "parquet"
    assert format_from_suffix(tmp_path / "a.txt") is None


def test_jsonl_rows_are_physical_lines_with_blank_lines(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), "", "   ", json.dumps(GOOD), json.dumps({**GOOD, "label": 2})]))
    e = _error(path)
    assert (e.file, e.row, e.field, e.value) == (str(path), 5, "label", 2.0)


def test_jsonl_line_that_is_not_json(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "n.jsonl", [GOOD, GOOD, GOOD], raw_lines={1: '{"prompt": "p", oops}'})
    e = _error(path)
    assert (e.row, e.field) == (2, None) and "not valid JSON" in str(e)


def test_jsonl_line_that_is_not_an_object(tmp_path, write_jsonl):
    e = _error(write_jsonl(tmp_path / "a.jsonl", [GOOD, [1, 2]]))
    assert e.row == 2 and "must be a JSON object" in str(e)


def test_jsonl_type_change_between_rows_names_the_row(tmp_path, write_jsonl):
    rows = [{**GOOD, "label": 1}, {**GOOD, "label": 0.5}, {**GOOD, "label": "high"}]
    e = _error(write_jsonl(tmp_path / "t.jsonl", rows))
    assert (e.row, e.field, e.value) == (3, "label", "high")


def test_jsonl_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n{"prompt": "\xff\xfe", "chosen": "a", "rejected": "b"}\n')
    e = _error(path)
    assert e.row == 2 and e.file == str(path)


def test_csv_rows_count_the_header_as_line_one(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("prompt,chosen,rejected,label\np,a,b,1\np,a,b,0.5\np,a,b,1.5\n")
    e = _error(path)
    assert (e.row, e.field, e.value) == (4, "label", "1.5")


def test_csv_rows_after_a_multiline_field_start_later(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('prompt,chosen,rejected,label\n"two\nlines",a,b,1\n\np,a,b,x\n')
    e = _error(path)
    assert (e.row, e.field, e.value) == (5, "label", "x")
    assert "not a number" in str(e)


def test_csv_ragged_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("prompt,chosen,rejected\np,a,b\np,a\n")
    e = _error(path)
    assert e.row == 3 and "2 fields" in str(e)


def test_csv_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "g.csv"
    path.write_bytes(b"prompt,chosen,rejected\np,a,b\np,\xff\xfe,b\n")
    e = _error(path)
    assert e.row == 3 and "UTF-8" in str(e)


def test_csv_numbers_are_parsed_and_texts_stay_text(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("prompt,chosen,rejected,label,weight,age\n1,2,3, 0.5 ,2e0,30\n")
    row = load(path)[0]
    assert (row["prompt"], row["chosen"], row["label"], row["weight"], row["age"]) == ("1", "2", 0.5, 2.0, "30")


def test_csv_header_problems(tmp_path):
    (tmp_path / "dup.csv").write_text("prompt,chosen,chosen,rejected\np,a,b,c\n")
    e = _error(tmp_path / "dup.csv")
    assert (e.row, e.field) == (1, "chosen")
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in str(_error(tmp_path / "empty.csv"))


def test_json_that_is_not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"prompt": "p",\n "chosen": }]')
    e = _error(path)
    assert e.file == str(path) and "line 2" in str(e)


def test_json_array_rows_are_record_indices(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([GOOD, GOOD, "text"]))
    e = _error(path)
    assert e.row == 3 and "JSON object" in str(e)
    (tmp_path / "scalar.json").write_text("42")
    assert "array of objects" in str(_error(tmp_path / "scalar.json"))


def test_parquet_that_is_text(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_text("prompt,chosen,rejected\n")
    e = _error(path)
    assert e.file == str(path) and "Parquet" in str(e)


def test_parquet_rows_are_record_indices(tmp_path):
    pq.write_table(pa.table({"prompt": ["p", "p"], "chosen": ["a", "a"], "rejected": ["b", 7 and "b"],
                             "weight": [1.0, -1.0]}), tmp_path / "w.parquet")
    e = _error(tmp_path / "w.parquet")
    assert (e.row, e.field, e.value) == (2, "weight", -1.0)


def test_paths_that_cannot_be_read(tmp_path):
    e = _error(tmp_path / "missing.jsonl")
    assert e.file == str(tmp_path / "missing.jsonl") and "no such file" in str(e)
    (tmp_path / "notes.txt").write_text(json.dumps(GOOD))
    assert "format" in str(_error(tmp_path / "notes.txt"))
    assert load(tmp_path / "notes.txt", format="jsonl").num_rows == 1
    (tmp_path / "dir").mkdir()
    assert "saved dataset" in str(_error(tmp_path / "dir"))
    (tmp_path / "x.jsonl.gz").write_text("not gzip")
    assert _error(tmp_path / "x.jsonl.gz").file == str(tmp_path / "x.jsonl.gz")


def test_empty_sources_have_no_rows(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    assert "no rows" in str(_error(tmp_path / "e.jsonl"))
    assert "no rows" in str(_error([]))


def test_read_source_rejects_split_and_format_where_they_do_not_apply(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps(GOOD))
    with pytest.raises(ConfigError):
        read_source(tmp_path / "d.jsonl", split="train")
    with pytest.raises(ConfigError):
        read_source(tmp_path / "d.jsonl", format="xml")
    with pytest.raises(DataError, match="cannot load"):
        read_source(42)


# Regressions found by tests/test_fuzz.py
@pytest.mark.parametrize("first", ["null", "  null", "[1]", "1"])
def test_a_line_that_is_not_an_object_is_named_not_a_crash(tmp_path, first):
    # pyarrow 26's JSON reader segfaults on a first line of `null`; a later `null` it reads as
    # an all-null record. Such lines take the per-line parser.
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + first + "\n")
    e = _error(path)
    assert e.row == 2 and "JSON object" in e.reason
    path.write_text(first + "\n" + json.dumps(GOOD) + "\n")
    assert _error(path).row == 1


def test_a_corrupted_gzip_stream_is_a_data_error(tmp_path):
    import gzip

    data = bytearray(gzip.compress((json.dumps(GOOD) + "\n").encode() * 50))
    data[10] ^= 0xFF  # inside the deflate stream: zlib.error, not OSError
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(bytes(data))
    assert _error(path).file == str(path)


def test_a_parquet_file_with_a_damaged_column_name_is_a_data_error(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]}), path)
    path.write_bytes(path.read_bytes().replace(b"rejected", b"\x80ejected"))
    assert "Parquet" in _error(path).reason
