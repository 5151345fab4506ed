import sys
from pathlib import Path

import pytest

from pluralrm.errors import ConfigError, DataError
from pluralrm.score.candidates import CandidateReader

sys.path.insert(0, str(Path(__file__).parent))
from score_helpers import candidate_rows, write_rows  # noqa: E402


def read_all(path, **kwargs):
    reader = CandidateReader(path, required=["prompt", "response"], optional=["country"], **kwargs)
    chunks = list(reader)
    rows = [r for c in chunks for r in c.rows]
    columns = {k: [v for c in chunks for v in c.columns[k]] for k in reader.columns}
    return reader, chunks, rows, columns


@pytest.mark.parametrize("suffix, first_row", [(".jsonl", 1), (".csv", 2), (".parquet", 1)])
def test_formats_read_alike_in_chunks(tmp_path, suffix, first_row):
    data = candidate_rows(7, 3)  # 21 rows
    reader, chunks, rows, columns = read_all(write_rows(tmp_path / f"c{suffix}", data), chunk_size=5)
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 1]
    assert rows == list(range(first_row, first_row + 21))
    assert columns["prompt"] == [r["prompt"] for r in data]
    assert columns["response"] == [r["response"] for r in data]
    assert columns["country"] == [r["country"] for r in data]
    assert reader.position == reader.total > 0 and reader.skipped == 0


BAD_JSONL = "\n".join([
    '{"prompt": "p", "response": "ok 1"}',
    '',
    '{"prompt": "p", "response": "ok 2"',
    '{"prompt": "p"}',
    '{"prompt": 3, "response": "r"}',
    '{"prompt": "p", "response": "r", "country": ["NG"]}',
    '["p", "r"]',
    '{"prompt": "p", "response": "ok 3", "country": null}',
]) + "\n"


def test_jsonl_bad_rows_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(BAD_JSONL)
    with pytest.raises(DataError, match=r"bad.jsonl, row 3: invalid JSON") as e:
        read_all(path)
    assert e.value.row == 3 and e.value.file == str(path)
    reader, _, rows, columns = read_all(path, on_bad_row="skip")
    assert rows == [1, 8] and columns["response"] == ["ok 1", "ok 3"] and columns["country"] == ["", ""]
    assert reader.skipped == 5
    assert [(b.row, b.field) for b in reader.bad_rows] == [(3, None), (4, "response"), (5, "prompt"), (6, "country"), (7, None)]
    assert "row 5, field 'prompt': must be a string (got 3)" in str(reader.bad_rows[2])


def test_csv_rows_are_numbered_by_the_line_they_start_on(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('prompt,response,country\np1,"two\nlines",NG\np2,short\np3,r3,US,extra\n\np4,r4,IN\n')
    reader, _, rows, columns = read_all(path, on_bad_row="skip")
    assert rows == [2, 7] and columns["response"] == ["two\nlines", "r4"]
    assert [(b.row, str(b.reason)) for b in reader.bad_rows] == [
        (4, "has 2 fields but the header has 3"), (5, "has 4 fields but the header has 3")]
    missing = tmp_path / "m.csv"
    missing.write_text("prompt,text\np,r\n")
    with pytest.raises(DataError, match=r"m.csv, row 1, field 'response': the CSV header has no column 'response'"):
        read_all(missing, on_bad_row="skip")


def test_parquet_nulls_are_bad_rows_and_missing_columns_an_error(tmp_path):
    path = write_rows(tmp_path / "c.parquet", [{"prompt": "p", "response": "r"}, {"prompt": "p", "response": None}])
    with pytest.raises(DataError, match=r"c.parquet, row 2, field 'response': required field is missing"):
        read_all(path)
    other = write_rows(tmp_path / "o.parquet", [{"question": "p", "response": "r"}])
    with pytest.raises(DataError, match="has no column 'prompt'"):
        read_all(other)


def test_a_check_rejects_rows_with_its_field(tmp_path):
    path = write_rows(tmp_path / "c.jsonl", candidate_rows(2, 2))

    def check(row):
        if row["country"] == "FR":
            raise DataError("not allowed", field="country", value=row["country"])

    reader = CandidateReader(path, required=["prompt", "response"], optional=["country"], check=check, on_bad_row="skip")
    assert sum(len(c) for c in reader) == 3 and reader.bad_rows[0].field == "country" and reader.bad_rows[0].row == 4


def test_reader_arguments_are_checked(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        CandidateReader(tmp_path / "none.jsonl", required=["prompt"])
    (tmp_path / "c.txt").write_text("")
    with pytest.raises(ConfigError, match="cannot tell the format"):
        CandidateReader(tmp_path / "c.txt", required=["prompt"])
    (tmp_path / "c.jsonl").write_text("")
    with pytest.raises(ConfigError, match="on_bad_row"):
        CandidateReader(tmp_path / "c.jsonl", required=["prompt"], on_bad_row="ignore")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("prompt,response\np,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv, row 2: the file is not UTF-8"):
        list(CandidateReader(latin, required=["prompt", "response"], on_bad_row="skip"))
