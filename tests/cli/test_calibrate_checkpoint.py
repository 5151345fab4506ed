"""`pluralrm calibrate --checkpoint`: predictions from a trained run, temperatures stored with it."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pluralrm.cli import main
from pluralrm.data import load, save
from pluralrm.models import RewardModel
from pluralrm.train import fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from tiny_run import make_dataset, tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib")
    train, test = make_dataset(600)
    fit(tiny_config(root / "run", 150, ["eval.every=150"]), train, test)
    save(test, root / "test.jsonl")
    return root


def test_report_from_a_checkpoint(trained, tmp_path):
    out = tmp_path / "report"
    assert main(["calibrate", "--checkpoint", str(trained / "run"), "--data", str(trained / "test.jsonl"),
                 "--out", str(out), "--bootstrap", "50", "--permutations", "20"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["groups"] == ["country=A", "country=B"]
    # the calibration section is the model's own predictions scored against the labels (oracle:
    # the predictions recomputed here), per group and overall
    calibration = report["calibration"]["columns"]
    assert calibration["group"] == ["country=A", "country=B", "all"]
    test = load(str(trained / "test.jsonl"), groups=["country"])
    p = RewardModel.load(trained / "run").predict(test)
    assert calibration["rows"] == [sum(c == "A" for c in test["country"]), sum(c == "B" for c in test["country"]), len(test)]
    assert calibration["accuracy"][-1] == pytest.approx(float(np.mean(p > 0.5)), abs=1e-9)
    assert calibration["nll"][-1] == pytest.approx(float(-np.mean(np.log(p))), rel=1e-4)
    # fidelity: per group and overall, a retention exactly where some unit has enough votes from
    # both sides (these one-vote-per-comparison data have none: no number is made up)
    fidelity = report["fidelity"]["columns"]
    assert fidelity["group"] == ["country=A", "country=B", "all"]
    for units, retention in zip(fidelity["units"], fidelity["retention"]):
        assert (units > 0) == (retention is not None and np.isfinite(retention)), fidelity
    assert (out / "report.html").read_text().count("data:image/png;base64") >= 3


def test_fit_temperatures_are_stored_and_applied(trained, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(trained / "run", run)
    data = str(trained / "test.jsonl")
    before = RewardModel.load(run)
    from pluralrm.data import load

    test = load(data)
    p_before = before.predict(test)
    assert main(["calibrate", "--checkpoint", str(run), "--data", data, "--fit-temperatures",
                 "--out", str(tmp_path / "r"), "--bootstrap", "0", "--permutations", "0"]) == 0
    stored = json.loads((run / "model.json").read_text())["temperatures"]
    assert set(stored) == {"country=A", "country=B"} and all(t > 0 for t in stored.values())
    after = RewardModel.load(run)
    assert after.temperatures == pytest.approx(stored)
    p_after = after.predict(test)
    assert not np.allclose(p_before, p_after)

    def nll(p):
        y = np.asarray(test["label"])
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    assert nll(p_after) <= nll(p_before) + 1e-9  # fitted on this data: never worse


def test_predictions_and_checkpoint_are_exclusive(trained, tmp_path, capsys):
    code = main(["calibrate", "--checkpoint", str(trained / "run"), "--predictions", "x.npy",
                 "--data", str(trained / "test.jsonl"), "--out", str(tmp_path)])
    assert code == 1 and "not both" in capsys.readouterr().err


def test_unseen_group_uses_the_shared_reward_and_is_reported_apart(trained, tmp_path, capsys):
    from pluralrm.data import load

    test = load(str(trained / "test.jsonl"))
    countries = test["country"]
    renamed = test.remove_columns("country").add_column(
        "country", ["Z" if i % 4 == 0 else c for i, c in enumerate(countries)])
    data = tmp_path / "with_unseen.jsonl"
    save(renamed, data)
    out = tmp_path / "report"
    args = ["calibrate", "--checkpoint", str(trained / "run"), "--data", str(data), "--out", str(out),
            "--bootstrap", "20", "--permutations", "0"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "never saw country=Z" in captured.err and "model overall: accuracy" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["unseen_groups"] == ["country=Z"]
    cal = report["calibration"]["columns"]
    row = cal["group"].index("unseen groups (shared reward)")
    assert cal["rows"][row] == cal["rows"][cal["group"].index("country=Z")] == (len(countries) + 3) // 4
    model = RewardModel.load(trained / "run")
    z = renamed.select(range(0, len(renamed), 4))
    shared = model.predict_preference(z["prompt"], z["chosen"], z["rejected"], groups=None)
    accuracy = float(np.mean((shared > 0.5) == (np.asarray(z["label"]) > 0.5)))
    assert cal["accuracy"][row] == pytest.approx(accuracy)  # the shared reward's predictions
    # an existing report is not overwritten unless --force
    assert main(args) == 1 and "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
