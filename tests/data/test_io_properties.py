"""Property tests: malformed input of any shape gives a DataError (never another exception), and
the vectorised validation keeps exactly the rows a plain per-row oracle accepts."""
import json
import math

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from pluralrm.data.badrows import DataWarning
from pluralrm.data.io import load, load_with_report
from pluralrm.errors import DataError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ("prompt", "chosen", "rejected", "label", "weight", "annotator_id", "country")

texts = st.text(alphabet="ab √ü\t\n", max_size=4)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), texts,
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 0.5, 0.0, 1.0, 2.5, -1]))
values = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2))
good_rows = st.fixed_dictionaries({"prompt": st.sampled_from(["p", "q"]), "chosen": st.just("a"), "rejected": st.just("b")})
rows = st.one_of(good_rows, st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS)),
                 good_rows.flatmap(lambda r: st.dictionaries(st.sampled_from(KEYS), values, max_size=2).map(
                     lambda extra: {**r, **extra})))
tables = st.lists(rows, min_size=1, max_size=6)


def oracle(row: dict) -> bool:
    """The validation rules, one row at a time in plain Python."""
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            return False
    for key, high in (("label", 1.0), ("weight", math.inf)):
        v = row.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        v = float(v) if abs(v) < 1e308 else math.inf
        if not (math.isfinite(v) and 0 <= v <= high):
            return False
    return not any(isinstance(row.get(k), (list, dict)) for k in ("annotator_id", "country"))


def _expected_labels(table):
    return [1.0 if r.get("label") is None else float(r["label"]) for r in table if oracle(r)]


def _check(source, table):
    ok = [oracle(r) for r in table]
    if all(ok):
        assert load(source)["label"] == _expected_labels(table)
        return
    with pytest.raises(DataError):
        load(source)
    if not any(ok):
        with pytest.raises(DataError):
            load(source, on_bad_row="skip")
        return
    with pytest.warns(DataWarning):
        ds, report = load_with_report(source, on_bad_row="skip")
    assert ds["label"] == _expected_labels(table)
    assert report.rows_skipped == ok.count(False)


@SETTINGS
@given(table=tables)
def test_in_memory_rows_match_the_oracle(table):
    _check(table, table)


@SETTINGS
@given(table=tables)
def test_jsonl_rows_match_the_oracle(tmp_path_factory, table):
    path = tmp_path_factory.mktemp("p") / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in table) + "\n")
    _check(path, table)


@SETTINGS
@given(table=tables)
def test_json_rows_match_the_oracle(tmp_path_factory, table):
    path = tmp_path_factory.mktemp("p") / "rows.json"
    path.write_text(json.dumps(table))
    _check(path, table)


@SETTINGS
@given(suffix=st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".parquet", ".jsonl.gz"]),
       head=st.sampled_from([b"", b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n', b"prompt,chosen,rejected\np,a,b\n"]),
       garbage=st.binary(max_size=40))
def test_garbage_bytes_give_a_data_error(tmp_path_factory, suffix, head, garbage):
    path = tmp_path_factory.mktemp("g") / f"file{suffix}"
    path.write_bytes(head + garbage)
    try:
        load(path, on_bad_row="skip")
    except DataError:
        pass
    except DataWarning:  # warnings are errors under pytest: skipping rows is reported
        pass


@SETTINGS
@given(cells=st.lists(st.lists(st.text(max_size=4), min_size=1, max_size=5), min_size=1, max_size=4))
def test_csv_cells_give_rows_or_a_data_error(tmp_path_factory, cells):
    path = tmp_path_factory.mktemp("c") / "cells.csv"
    lines = ["prompt,chosen,rejected,label"] + [",".join(c.replace("\x00", "") for c in row) for row in cells]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        load(path)
    except DataError:
        pass
