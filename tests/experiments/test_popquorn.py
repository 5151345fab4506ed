"""experiments/popquorn.py on the POPQUORN-shaped fixture (the real data are not bundled)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import popquorn
from pluralrm.errors import ConfigError

GROUPS = ("gender", "race")


def test_offsets_are_rating_minus_item_mean(fixtures_dir):
    path = str(fixtures_dir / "popquorn" / "offensiveness_raw_data.csv")
    offsets = popquorn.annotator_offsets(path, GROUPS)
    assert len(offsets["offset"]) == 4 and list(offsets["ratings"]) == [4, 4, 4, 4]
    # every comment's residuals sum to zero, so the rating-weighted offsets do too
    assert np.sum(offsets["offset"] * offsets["ratings"]) == pytest.approx(0.0, abs=1e-9)
    tests = popquorn.offset_tests(offsets, GROUPS, min_annotators=1)
    assert set(tests["attributes"]) == set(GROUPS)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="Potato-Prolific-Dataset"):
        popquorn.main(["--quick", "--out", str(tmp_path), "--data", str(tmp_path / "nope.csv")])


@pytest.mark.slow
def test_quick_run_on_the_fixture(tmp_path, fixtures_dir):
    path = str(fixtures_dir / "popquorn" / "offensiveness_raw_data.csv")
    argv = ["--quick", "--out", str(tmp_path), "--data", path, "--set", "groups=[gender,race]",
            "--set", "train.train.batch_size=4", "--set", "max_pairs_per_annotator=6", "--set", "test_size=0.25"]
    assert popquorn.main(argv) == 0
    saved = json.loads((tmp_path / "popquorn.json").read_text())
    assert path not in saved["command"] and "PATH/raw_data.csv" in saved["command"]
    heads = saved["results"]["per_seed"][0]["heads"]
    assert set(heads) == {"pooled", "conditioned"}
    assert set(saved["results"]["analysis"]["disagreement"]) == set(GROUPS)
    assert "| all held-out pairs |" in saved["tables"]["models"]
