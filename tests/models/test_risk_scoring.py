"""Risk-sensitive scoring (``risk=α``) through RewardModel, best_of_n, score files, the CLI and
the server: equal to the quantile of the raw head outputs; refused by heads without a distribution."""
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from pluralrm import reward_distributions as rd
from pluralrm.errors import ConfigError
from pluralrm.models import HeadConfig, ModelConfig, RewardModel
from pluralrm.score import best_of_n

sys.path.insert(0, str(Path(__file__).parents[1] / "score"))
from score_helpers import BACKBONE, PROMPTS, RESPONSES, SCHEMA  # noqa: E402


def dist_model(kind: str, seed: int = 0) -> RewardModel:
    config = ModelConfig(backbone=BACKBONE, head=HeadConfig(type=kind, hidden_dim=8, num_atoms=5))
    model = RewardModel.create(config, SCHEMA, seed=seed)
    rng = np.random.default_rng(seed + 3)
    params = nnx.state(model.net, nnx.Param)
    nnx.update(model.net, jax.tree.map(lambda x: x + 0.5 * rng.standard_normal(x.shape).astype(x.dtype), params))
    return model


@pytest.fixture(scope="module", params=["mean_variance", "categorical", "distributional"])
def model(request):
    return dist_model(request.param)


def raw_outputs(model, prompts, responses) -> np.ndarray:
    """``[N, G, K]`` raw outputs (mean_variance/categorical) or (μ, σ) (distributional)."""
    inputs = model.featurizer(list(prompts), list(responses))
    f = model.net.features(inputs)
    head = model.net.head
    if hasattr(head, "all_groups_outputs"):
        return np.asarray(head.all_groups_outputs(f))
    return np.stack([np.asarray(head.all_groups(f)), np.asarray(head.all_groups_spread(f))], axis=-1)


def test_score_with_risk_equals_quantile_of_raw_outputs(model):
    kind = {"distributional": "normal"}.get(model.config.head.type, model.config.head.type)
    raw = raw_outputs(model, PROMPTS, RESPONSES)
    want = np.asarray(rd.reward_quantile(raw, 0.2, kind))  # [N, G]
    table, labels = model.score_all_groups(PROMPTS, RESPONSES, risk=0.2)
    np.testing.assert_allclose(table, want, rtol=1e-5, atol=1e-6)
    mean, std = model.reward_moments(PROMPTS, RESPONSES)
    np.testing.assert_allclose(mean, model.score_all_groups(PROMPTS, RESPONSES)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, np.asarray(rd.reward_moments(raw, kind)[1]), rtol=1e-5, atol=1e-6)
    for g, label in enumerate(labels):
        np.testing.assert_allclose(model.score(PROMPTS, RESPONSES, groups=label, risk=0.2), table[:, g],
                                   rtol=1e-5, atol=1e-6)
    # different α, same compiled program, different scores
    assert not np.allclose(model.score(PROMPTS, RESPONSES, risk=0.05), model.score(PROMPTS, RESPONSES, risk=0.5))


def test_best_of_n_with_risk_ranks_by_quantile(model):
    pick = best_of_n(model, PROMPTS[0], RESPONSES, groups="country=NG,language=yo", risk=0.1)
    q = model.score([PROMPTS[0]] * 3, RESPONSES, groups="country=NG,language=yo", risk=0.1)
    assert pick.index == int(np.argmax(q))
    np.testing.assert_allclose(pick.table[:, 0], q, rtol=1e-6)


def test_head_without_distribution_refuses_risk():
    plain = RewardModel.create(ModelConfig(backbone=BACKBONE, head=HeadConfig(type="conditioned", hidden_dim=8)), SCHEMA)
    for call in (lambda: plain.score(PROMPTS, RESPONSES, risk=0.1),
                 lambda: plain.score_all_groups(PROMPTS, RESPONSES, risk=0.1),
                 lambda: plain.reward_moments(PROMPTS, RESPONSES)):
        with pytest.raises(ConfigError, match="distributional, mean_variance, categorical.*'conditioned'"):
            call()
    with pytest.raises(ConfigError, match=r"risk must be in \(0, 1\)"):
        dist_model("mean_variance").score(PROMPTS, RESPONSES, risk=1.0)


def test_save_load_keeps_distribution(tmp_path):
    model = dist_model("categorical")
    model.save(tmp_path / "m")
    loaded = RewardModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(PROMPTS, RESPONSES, risk=0.3), model.score(PROMPTS, RESPONSES, risk=0.3))


@pytest.mark.slow
def test_cli_score_and_server_pass_risk(tmp_path):
    from fastapi.testclient import TestClient

    from pluralrm.cli import main
    from pluralrm.serve import ServeConfig, create_app

    model = dist_model("mean_variance")
    model.save(tmp_path / "m")
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in zip(PROMPTS, RESPONSES)))
    assert main(["score", "--checkpoint", str(tmp_path / "m"), "--input", str(src), "--output",
                 str(tmp_path / "s.jsonl"), "--groups", "country=NG", "--risk", "0.1", "--no-progress"]) == 0
    got = [json.loads(line)["score"] for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    want = model.score(PROMPTS, RESPONSES, groups="country=NG", risk=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    with TestClient(create_app(model, ServeConfig(max_wait_ms=0.0))) as client:
        r = client.post("/score", json={"prompts": PROMPTS, "responses": RESPONSES, "groups": "country=NG", "risk": 0.1})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["scores"], want, rtol=1e-5)
        r = client.post("/score", json={"prompts": PROMPTS, "responses": RESPONSES, "all_groups": True, "risk": 0.3})
        np.testing.assert_allclose(r.json()["scores"], model.score_all_groups(PROMPTS, RESPONSES, risk=0.3)[0],
                                   rtol=1e-5)
        assert client.post("/score", json={"prompts": PROMPTS, "responses": RESPONSES, "risk": 1.5}).status_code == 422
    from score_helpers import saved_model

    plain = RewardModel.load(saved_model(tmp_path))
    with TestClient(create_app(plain, ServeConfig(max_wait_ms=0.0))) as client:
        r = client.post("/score", json={"prompts": PROMPTS, "responses": RESPONSES, "risk": 0.1})
        assert r.status_code == 422 and "mean_variance" in r.json()["error"], r.text
    assert main(["score", "--checkpoint", str(saved_model(tmp_path)), "--input", str(src), "--output",
                 str(tmp_path / "t.jsonl"), "--risk", "0.1", "--no-progress"]) == 1
