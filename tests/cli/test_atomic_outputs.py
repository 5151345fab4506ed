"""A command that fails midway leaves no partial output and keeps the previous one: every
output is written under a temporary name and renamed into place only when complete."""
import errno
import json

import numpy as np
import pytest

import pluralrm.cli as cli
from pluralrm.data.io import load, save


def _no_leftovers(directory):
    hidden = [p.name for p in directory.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]
    assert hidden == [], hidden


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def comparisons(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"prompt": f"q{u}", "chosen": f"a{u}", "rejected": f"b{u}", "annotator_id": f"{c}{r}", "country": c}
            for u in range(20) for c in ("NG", "US") for r in range(2)]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    np.save(tmp_path / "preds.npy", rng.uniform(0.2, 0.8, len(rows)))
    return path, tmp_path / "preds.npy"


def test_a_failed_calibrate_run_leaves_no_partial_report(comparisons, tmp_path, monkeypatch, capsys):
    data, preds = comparisons
    out = tmp_path / "report"
    argv = ["calibrate", "--data", str(data), "--predictions", str(preds), "--by", "country", "--out", str(out),
            "--bootstrap", "20", "--permutations", "9"]
    assert cli.main(argv) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {str(p) for p in before} >= {"report.md", "report.html", "report.json"}

    import pluralrm.calibration.report as report

    monkeypatch.setattr(report, "to_html", _disk_full)  # fails after the figures, JSON and Markdown were written
    assert cli.main(argv + ["--force"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the previous report, untouched
    _no_leftovers(tmp_path)

    fresh = tmp_path / "fresh"
    assert cli.main([str(fresh) if a == str(out) else a for a in argv]) == 1
    assert not any(fresh.rglob("*.md")) and not any(fresh.rglob("*.png"))
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".csv", ""])
def test_a_failed_save_leaves_nothing_and_keeps_the_previous_file(comparisons, tmp_path, monkeypatch, suffix):
    import datasets

    data = load(comparisons[0], groups=["country"])
    target = tmp_path / f"out{suffix}"
    save(data.select(range(3)), target)
    previous = load(target, groups=["country"])
    method = {".jsonl": "to_json", ".parquet": "to_parquet", ".csv": "to_csv", "": "save_to_disk"}[suffix]
    original = getattr(datasets.Dataset, method)

    def half_then_full(self, path, *args, **kwargs):
        original(self.select(range(1)), path, *args, **kwargs)  # something is on disk already...
        _disk_full()  # ...when the disk fills

    monkeypatch.setattr(datasets.Dataset, method, half_then_full)
    with pytest.raises(OSError, match="No space"):
        save(data, target)
    assert load(target, groups=["country"]).to_list() == previous.to_list()
    _no_leftovers(tmp_path)


def test_an_interrupted_model_save_keeps_the_previous_model(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    import orbax.checkpoint as ocp

    sys.path.insert(0, str(Path(__file__).parents[1] / "score"))
    from score_helpers import PROMPTS, RESPONSES, tiny_model

    from pluralrm.models import RewardModel

    path = tmp_path / "model"
    tiny_model(0).save(path)
    expected = RewardModel.load(path).score(PROMPTS, RESPONSES)
    monkeypatch.setattr(ocp.StandardCheckpointer, "save", _disk_full)
    with pytest.raises(OSError):
        tiny_model(1).save(path)
    np.testing.assert_array_equal(RewardModel.load(path).score(PROMPTS, RESPONSES), expected)
    _no_leftovers(tmp_path)
