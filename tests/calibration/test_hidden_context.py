"""The r² diagnostic (``pluralrm.calibration.hidden_context``): the formula by hand, intervals,
the report section through ``pluralrm calibrate``."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pluralrm.calibration.hidden_context import explained_variance, hidden_context_r2


def test_formula_by_hand():
    # means (0, 2, 4, 6): population variance 5; σ² (1, 1, 3, 3): mean 2  ⇒  r² = 5 / 7
    assert float(explained_variance([0, 2, 4, 6], [1, 1, np.sqrt(3), np.sqrt(3)])) == pytest.approx(5 / 7)
    rep = hidden_context_r2([0, 2], [1, 1], [4, 6], [np.sqrt(3), np.sqrt(3)], bootstrap=0)
    assert rep.r2[0] == pytest.approx(5 / 7) and rep.between[0] == pytest.approx(5) and rep.within[0] == pytest.approx(2)
    assert rep.responses == 4 and np.isnan(rep.low[0])
    # no spread: r² = 1; no differences between means: r² = 0
    assert float(explained_variance([1, 2], [0, 0])) == 1.0 and float(explained_variance([1, 1], [1, 2])) == 0.0


def test_per_group_and_bootstrap_interval():
    rng = np.random.default_rng(0)
    n = 400
    mc, mr = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    sc = np.stack([np.full(n, 0.3), np.full(n, 2.0)], axis=1)  # group 1 has much more hidden context
    rep = hidden_context_r2(mc, sc, mr, sc, ["a", "b"], bootstrap=300, seed=1)
    np.testing.assert_allclose(rep.r2, [1 / 1.09, 1 / 5], rtol=0.15)
    assert np.all(rep.low <= rep.r2) and np.all(rep.r2 <= rep.high)
    assert rep.high[1] < rep.low[0]  # clearly separated
    assert rep.table().to_pandas().shape == (2, 6)
    json.dumps(rep.to_dict())


@pytest.mark.slow
def test_calibrate_report_has_the_section(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
    from test_risk_scoring import dist_model

    from pluralrm.cli import main

    model = dist_model("categorical")
    model.save(tmp_path / "m")
    rows = [{"prompt": f"p{i}", "chosen": f"good answer {i}", "rejected": f"bad {i}", "country": ["US", "NG"][i % 2],
             "language": "en"} for i in range(12)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["calibrate", "--checkpoint", str(tmp_path / "m"), "--data", str(tmp_path / "d.jsonl"),
                 "--out", str(tmp_path / "r"), "--bootstrap", "50", "--permutations", "0"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Hidden context" in md and "r2_low" in md
