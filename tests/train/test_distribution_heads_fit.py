"""The DPL heads train through ``pluralrm.train.fit`` (their logit gap, their training-only
penalties) and learn each group's taste on the tiny two-group job."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import make_dataset, tiny_config  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("head,extra", [("mean_variance", ["model.head.variance_penalty=0.01"]),
                                        ("categorical", ["model.head.num_atoms=8"])])
def test_fit_learns_both_groups(tmp_path, head, extra):
    from pluralrm.train import fit

    train, test = make_dataset()
    model, result = fit(tiny_config(tmp_path / "run", 150, [f"model.head.type={head}", *extra]), train, test)
    p = model.predict(test)
    good_first = np.array([c.startswith("good") for c in test["chosen"]])
    # group A prefers "good", group B "bad": the model's P(chosen ≻ rejected) follows each group's taste
    a = np.array([g == "A" for g in test["country"]])
    assert np.mean((p[a] > 0.5) == good_first[a]) > 0.7
    assert np.mean((p[~a] > 0.5) == ~good_first[~a]) > 0.7
    q = model.score(["question 1"] * 2, ["good answer 3 x", "bad answer 3 y"], groups="country=A", risk=0.1)
    assert q[0] > q[1] and np.all(np.isfinite(q))
