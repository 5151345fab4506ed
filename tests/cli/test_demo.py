"""The README's demo keeps working end to end (a short run: the full one is `make demo`)."""
import json

import pytest

from pluralrm.cli import main


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--steps", "30"]) == 0
    out = capsys.readouterr().out
    for step in ("1/4", "2/4", "3/4", "4/4", "5/6", "6/6"):
        assert step in out
    assert "Bayes" in out and "retention" in out
    for head in ("pooled", "conditioned"):
        summary = json.loads((tmp_path / "demo" / head / "summary.json").read_text())
        assert summary["steps"] == 30
        assert (tmp_path / "demo" / "report" / head / "report.html").is_file()
    # `make demo` twice: the finished runs are reused, the same table printed, no traceback
    table = out[out.index("4/4"):out.index("5/6")]
    assert main(["demo", "--out", str(tmp_path / "demo"), "--steps", "30"]) == 0
    again = capsys.readouterr().out
    assert "already finished at step 30" in again
    assert again[again.index("4/4"):again.index("5/6")] == table
