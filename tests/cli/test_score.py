"""``pluralrm score``: round trips through files, bad rows, atomic output."""
import sys
from pathlib import Path

import numpy as np
import pytest

from pluralrm.cli import COMMANDS, build_parser, main
from pluralrm.models import RewardModel
from pluralrm.score import select

sys.path.insert(0, str(Path(__file__).parents[1] / "score"))
from score_helpers import candidate_rows, read_rows, saved_model, write_rows  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return saved_model(tmp_path_factory.mktemp("model"))


def bad_file(path: Path) -> Path:
    rows = candidate_rows(4, 3, groups=("NG", "US"))
    write_rows(path, rows)
    lines = path.read_text().splitlines()
    lines.insert(4, '{"prompt": "p", "answer": "no response field"}')  # line 5
    lines.insert(8, '{"prompt": "p", "response": "r"')  # line 9
    path.write_text("\n".join(lines) + "\n")
    return path


def test_score_and_serve_are_registered():
    assert "score" in COMMANDS and "serve" in COMMANDS
    help_text = build_parser().format_help()
    assert "score" in help_text and "serve" in help_text


def test_a_bad_row_stops_the_run_naming_file_line_and_field(model_dir, tmp_path, capsys):
    src = bad_file(tmp_path / "c.jsonl")
    rc = main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(tmp_path / "s.parquet"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"pluralrm score: error: {src}, row 5, field 'response': required field is missing" in err
    assert not (tmp_path / "s.parquet").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


def test_skipped_rows_are_counted_and_the_output_equals_the_python_api(model_dir, tmp_path, capsys):
    src = bad_file(tmp_path / "c.jsonl")
    dst = tmp_path / "s.csv"
    rc = main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(dst), "--all-groups",
               "--aggregate", "quantile", "--q", "0.5", "--normalize", "center", "--on-bad-row", "skip",
               "--chunk-size", "4", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "skipped 2 bad row(s)" in captured.out
    assert f"{src}, row 5, field 'response'" in captured.err and f"{src}, row 9: invalid JSON" in captured.err
    out = read_rows(dst)
    rows = candidate_rows(4, 3, groups=("NG", "US"))
    assert len(out) == 12 and [int(o["row"]) for o in out] == [1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14]
    model = RewardModel.load(model_dir)
    table, labels = model.score_all_groups([r["prompt"] for r in rows], [r["response"] for r in rows])
    for i in range(4):
        s = select(table[3 * i: 3 * i + 3], "quantile", group_labels=labels, normalize="center", q=0.5)
        block = out[3 * i: 3 * i + 3]
        np.testing.assert_allclose([float(o["aggregate"]) for o in block], s.scores, rtol=1e-5, atol=1e-6)
        assert [o["best"] == "True" for o in block] == [k == s.index for k in range(3)]


def test_one_group_and_unseen_values(model_dir, tmp_path, capsys):
    src = write_rows(tmp_path / "c.parquet", candidate_rows(3, 2))
    dst = tmp_path / "s.jsonl"
    assert main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(dst),
                 "--groups", "country=NG,language=yo", "--no-progress"]) == 0
    rows = candidate_rows(3, 2)
    model = RewardModel.load(model_dir)
    expected = model.score([r["prompt"] for r in rows], [r["response"] for r in rows], groups="country=NG,language=yo")
    np.testing.assert_allclose([o["score"] for o in read_rows(dst)], expected, rtol=1e-6, atol=1e-6)
    # per-row groups: FR is unseen; pooled with one warning naming it, or an error naming the row
    assert main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(dst), "--no-progress"]) == 0
    assert capsys.readouterr().err.count("warning: group value country='FR' is not in the model's schema") == 1
    assert main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(dst), "--no-progress",
                 "--unseen", "error"]) == 1
    assert f"{src}, row 4, field 'country'" in capsys.readouterr().err
    assert main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(dst), "--no-progress",
                 "--groups", "religion=x"]) == 1
    assert "unknown group attribute 'religion'" in capsys.readouterr().err


def test_progress_bar_runs(model_dir, tmp_path, capsys):
    src = write_rows(tmp_path / "c.jsonl", candidate_rows(3, 2, groups=("NG",)))
    assert main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(tmp_path / "s.jsonl"),
                 "--all-groups", "--aggregate", "weighted", "--weights", "population"]) == 0
    assert "scored 6 rows" in capsys.readouterr().out


def test_missing_or_empty_input_is_an_error_found_before_the_model_loads(tmp_path, capsys, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model must not load for a bad input")

    monkeypatch.setattr(RewardModel, "load", no_load)
    out = tmp_path / "s.parquet"
    for name, text in (("missing.jsonl", None), ("empty.jsonl", ""), ("blank.jsonl", "\n  \n"),
                       ("header.csv", "prompt,response\n")):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        rc = main(["score", "--checkpoint", "nowhere", "--input", str(path), "--output", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 1 and name in err and ("no such file" in err or "no rows to score" in err), err
        assert not out.exists()


def test_every_row_skipped_is_an_error_and_writes_nothing(model_dir, tmp_path, capsys):
    src = tmp_path / "c.jsonl"
    src.write_text('{"prompt": "p", "answer": "no response field"}\n')
    out = tmp_path / "s.parquet"
    rc = main(["score", "--checkpoint", str(model_dir), "--input", str(src), "--output", str(out),
               "--on-bad-row", "skip", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "no rows to score" in err and not out.exists()
