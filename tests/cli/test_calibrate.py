"""``pluralrm calibrate`` and its predictions reader."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pluralrm.cli as cli
from pluralrm.cli.calibrate import load_predictions
from pluralrm.errors import DataError


@pytest.fixture(autouse=True)
def only_calibrate_command(monkeypatch):
    """Builds the parser from the calibrate subcommand alone (others may live on other branches)."""
    monkeypatch.setattr(cli, "COMMANDS", {"calibrate": cli.COMMANDS["calibrate"]})


@pytest.fixture
def comparisons(tmp_path):
    """30 units x 2 countries x 3 votes, and the planted P(chosen ≻ rejected) of each row."""
    rng = np.random.default_rng(0)
    rows, truth = [], []
    for u in range(30):
        p = {"NG": rng.uniform(0.1, 0.9), "US": rng.uniform(0.1, 0.9)}
        for country in ("NG", "US"):
            for r in range(3):
                first_wins = rng.random() < p[country]
                chosen, rejected = ("a", "b") if first_wins else ("b", "a")
                rows.append({"prompt": f"q{u}", "chosen": f"{chosen}{u}", "rejected": f"{rejected}{u}",
                             "annotator_id": f"{country}{r}", "country": country})
                truth.append(p[country] if first_wins else 1 - p[country])
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path, np.array(truth)


def test_reads_every_predictions_format(tmp_path):
    p = np.array([0.2, 0.7, 0.9])
    np.save(tmp_path / "p.npy", p)
    np.testing.assert_allclose(load_predictions(tmp_path / "p.npy", 3)[0], p)
    np.savez(tmp_path / "p.npz", group_predictions=np.stack([p, 1 - p], 1), group_labels=np.array(["c=a", "c=b"]))
    predictions, group_predictions, labels = load_predictions(tmp_path / "p.npz", 3)
    assert predictions is None and labels == ["c=a", "c=b"] and group_predictions.shape == (3, 2)
    pq.write_table(pa.table({"prediction": p, "country=NG": p, "country=US": 1 - p}), tmp_path / "p.parquet")
    predictions, group_predictions, labels = load_predictions(tmp_path / "p.parquet", 3)
    np.testing.assert_allclose(predictions, p)
    assert labels == ["country=NG", "country=US"]
    (tmp_path / "p.csv").write_text("prediction\n0.2\n0.7\n0.9\n")
    np.testing.assert_allclose(load_predictions(tmp_path / "p.csv", 3)[0], p)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prediction": x}) + "\n" for x in p))
    np.testing.assert_allclose(load_predictions(tmp_path / "p.jsonl", 3)[0], p)


def test_predictions_errors_name_the_file(tmp_path):
    np.save(tmp_path / "p.npy", np.zeros(4))
    with pytest.raises(DataError, match=r"p\.npy.*4 rows but the data has 3"):
        load_predictions(tmp_path / "p.npy", 3)
    with pytest.raises(DataError, match="unknown predictions format"):
        load_predictions(tmp_path / "p.txt", 3)
    with pytest.raises(DataError, match="not found"):
        load_predictions(tmp_path / "missing.npy", 3)
    (tmp_path / "q.csv").write_text("score\n0.1\n")
    with pytest.raises(DataError, match="no predictions found"):
        load_predictions(tmp_path / "q.csv", 1)
    np.savez(tmp_path / "g.npz", group_predictions=np.zeros((1, 2)))
    with pytest.raises(DataError, match="group_labels"):
        load_predictions(tmp_path / "g.npz", 1)


def test_calibrate_writes_the_report(comparisons, tmp_path, capsys):
    data, truth = comparisons
    np.save(tmp_path / "preds.npy", truth)
    out = tmp_path / "report"
    code = cli.main(["calibrate", "--data", str(data), "--predictions", str(tmp_path / "preds.npy"), "--by", "country",
                     "--out", str(out), "--bootstrap", "50", "--permutations", "19"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["groups"] == ["country=NG", "country=US"]
    assert report["calibration"]["columns"]["rows"] == [90, 90, 180]
    assert (out / "report.html").stat().st_size > 10_000 and (out / "figures" / "agreement.png").exists()


def test_calibrate_reports_bad_predictions_as_one_line(comparisons, tmp_path, capsys):
    data, _ = comparisons
    np.save(tmp_path / "preds.npy", np.zeros(5))
    assert cli.main(["calibrate", "--data", str(data), "--predictions", str(tmp_path / "preds.npy"),
                     "--out", str(tmp_path / "r")]) == 1
    assert "5 rows but the data has 180" in capsys.readouterr().err
