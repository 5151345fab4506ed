"""pluralrm.data.adapters.hh_rlhf on the first 20 records of the real harmless-base test split."""
import gzip
import json

import pytest

from pluralrm.data.adapters import hh_rlhf
from pluralrm.data.badrows import DataWarning
from pluralrm.errors import DataError

SAMPLE = "hh-rlhf/harmless-base-sample.jsonl"


def test_real_records(fixtures_dir):
    ds = hh_rlhf(fixtures_dir / SAMPLE)
    assert ds.num_rows == 20 and set(ds["label"]) == {1.0} and set(ds["annotator_id"]) == {""}
    first = ds[0]
    assert first["prompt"].startswith("Human: what are some pranks with a pen i can do?\n\nAssistant:")
    assert first["prompt"].endswith("Human: okay some of these do not have anything to do with pens")
    assert first["chosen"] == ("No, sorry!  All of these involve a pen, the point is that you can get "
                               "funny results by doing pranks with pens.")
    assert first["rejected"].endswith("and unzip their zipper. It’s really funny.")
    raw = [json.loads(line) for line in (fixtures_dir / SAMPLE).read_text().splitlines()]
    for row, record in zip(ds, raw):
        assert not row["prompt"].endswith("Assistant:") and "\n\nHuman:" not in row["chosen"]
        assert record["chosen"].lstrip().startswith(row["prompt"])
        assert record["chosen"].rstrip().endswith(row["chosen"]) and record["rejected"].rstrip().endswith(row["rejected"])


def test_gzipped_like_the_release(tmp_path, fixtures_dir):
    path = tmp_path / "test.jsonl.gz"
    path.write_bytes(gzip.compress((fixtures_dir / SAMPLE).read_bytes()))
    assert hh_rlhf(path).to_list() == hh_rlhf(fixtures_dir / SAMPLE).to_list()


def test_bad_records_name_line_and_field(tmp_path):
    good = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}
    empty = {"chosen": "\n\nHuman: hi\n\nAssistant: ", "rejected": "\n\nHuman: hi\n\nAssistant: no"}
    forked = {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: bye\n\nAssistant: b"}
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (good, empty, forked)) + "\n")
    with pytest.raises(DataError) as e:
        hh_rlhf(path)
    assert (e.value.file, e.value.row, e.value.field) == (str(path), 2, "chosen")
    with pytest.warns(DataWarning, match="skipped 2"):
        ds = hh_rlhf(path, on_bad_row="skip")
    assert ds[0] == {"prompt": "Human: hi", "chosen": "hello", "rejected": "go away", "label": 1.0,
                     "annotator_id": "", "weight": 1.0}
    with pytest.raises(DataError, match="needs 'rejected'"):
        hh_rlhf([{"chosen": good["chosen"]}])
