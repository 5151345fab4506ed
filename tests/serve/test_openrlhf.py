"""``POST /get_reward`` answers OpenRLHF's remote reward client exactly as it sends.

The client here sends what OpenRLHF's ``SingleTurnAgentExecutor._fetch_rewards_via_http``
(openrlhf/utils/agent.py, commit 3c3be62) sends: ``aiohttp`` ``session.post(url, json=payload)``
with ``payload = {"query": [...], "prompts": [...], "labels": [...]}`` (``json.dumps`` body,
``Content-Type: application/json``), and reads ``rewards`` / ``scores`` / ``extra_logs``.
"""
import json

import numpy as np
import pytest
from serve_helpers import PROMPTS, RESPONSES, client, tiny_model

from pluralrm.integrations.rewards import RewardSpec
from pluralrm.score import aggregate
from pluralrm.serve.openrlhf import RlhfConfig, split_queries


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def openrlhf_post(c, queries, prompts, labels):
    """Byte for byte what OpenRLHF's aiohttp client posts (json.dumps, application/json)."""
    payload = {"query": queries, "prompts": prompts, "labels": labels}
    answer = c.post("/get_reward", content=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    info = answer.json()
    assert set(info) >= {"rewards", "scores", "extra_logs"}
    assert info["scores"] == info["rewards"] and isinstance(info["extra_logs"], dict)
    return info


def test_default_reward_is_the_pooled_reward_of_the_response_after_the_prompt(model):
    queries = [p + r for p, r in zip(PROMPTS, RESPONSES)]
    with client(model) as c:
        info = openrlhf_post(c, queries, PROMPTS, [None] * 3)
        old = c.post("/get_reward", json={"query": queries})  # older clients: query alone
    np.testing.assert_allclose(info["rewards"], model.score(PROMPTS, RESPONSES), rtol=1e-6, atol=1e-6)
    assert info["reward"] == "pooled" and info["warnings"] == []
    np.testing.assert_allclose(old.json()["rewards"], model.score([""] * 3, queries), rtol=1e-6, atol=1e-6)


def test_server_flag_all_groups_with_the_worst_off_rule(model):
    spec = RewardSpec(groups="all", aggregate="worst")
    queries = [PROMPTS[0] + r for r in RESPONSES]
    with client(model, rlhf=RlhfConfig(reward=spec)) as c:
        info = openrlhf_post(c, queries, [PROMPTS[0]] * 3, ["", "", ""])
    table, _ = model.score_all_groups([PROMPTS[0]] * 3, RESPONSES)
    np.testing.assert_allclose(info["rewards"], aggregate(table, "worst"), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(info["rewards"], table.min(axis=1), rtol=1e-6, atol=1e-6)
    assert info["reward"] == "worst over all groups"


def test_groups_from_labels_and_the_unseen_group_policy(model):
    config = RlhfConfig(groups_from_labels=True, label_attribute="country")
    queries = [p + r for p, r in zip(PROMPTS, RESPONSES)]
    with client(model, rlhf=config) as c:
        info = openrlhf_post(c, queries, PROMPTS, ["NG", "country=US,language=en", "FR"])
    expected = model.score(PROMPTS, RESPONSES, groups=[{"country": "NG"}, "country=US,language=en", {}])
    np.testing.assert_allclose(info["rewards"], expected, rtol=1e-6, atol=1e-6)
    assert info["unseen_policy"] == "pooled"
    assert info["extra_logs"] == {"pluralrm_unseen_group": [0.0, 0.0, 1.0]}
    assert info["warnings"] == ["group value country='FR' is not in the model's schema; using the pooled reward"]
    with client(model, rlhf=config, fallback="error") as c:
        strict = c.post("/get_reward", json={"query": queries, "prompts": PROMPTS, "labels": ["NG", "US", "FR"]})
    assert strict.status_code == 422 and strict.json()["error"].startswith("body.country:")
    assert "'FR'" in strict.json()["error"]


def test_request_groups_extension_and_per_row_all(model):
    queries = [p + r for p, r in zip(PROMPTS, RESPONSES)]
    with client(model, rlhf=RlhfConfig(reward=RewardSpec(aggregate="mean"))) as c:
        answer = c.post("/get_reward", json={"query": queries, "prompts": PROMPTS,
                                             "groups": ["country=NG", "all", None]})
    assert answer.status_code == 200, answer.text
    got = answer.json()["rewards"]
    assert got[0] == pytest.approx(float(model.score(PROMPTS[:1], RESPONSES[:1], groups="country=NG")[0]), abs=1e-6)
    table, _ = model.score_all_groups(PROMPTS[1:2], RESPONSES[1:2])
    assert got[1] == pytest.approx(float(table.mean()), abs=1e-6)
    assert got[2] == pytest.approx(float(model.score(PROMPTS[2:], RESPONSES[2:])[0]), abs=1e-6)


def test_split_queries_strips_end_tokens_and_reports_a_prompt_mismatch():
    prompts, responses, notes = split_queries(["<s>Q: hi A: hello</s>", "Q: other reply<|im_end|></s>"],
                                              ["<s>Q: hi A:", "Q: hey"], ("</s>", "<|im_end|>"))
    assert responses == [" hello", "other reply"]
    assert notes == ["query.1: does not start with prompts.1; scored the text after their first 3 common "
                     "characters as the response"]
    assert prompts == ["<s>Q: hi A:", "Q: hey"]


@pytest.mark.parametrize("body, field", [
    ({"prompts": ["p"]}, "body.query"),
    ({"query": "not a list"}, "body.query"),
    ({"query": ["a", "b"], "prompts": ["p"]}, "body.prompts"),
    ({"query": ["a"], "labels": [1, 2]}, "body.labels"),
    ({"query": ["a"], "groups": "religion=x"}, "body.religion"),
    ({"query": ["a"], "colour": "red"}, "body.colour"),
])
def test_malformed_requests_are_422_naming_the_field(model, body, field):
    with client(model) as c:
        answer = c.post("/get_reward", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith(f"{field}:"), answer.json()


def test_labels_are_required_when_the_server_reads_groups_from_them(model):
    with client(model, rlhf=RlhfConfig(groups_from_labels=True)) as c:
        answer = c.post("/get_reward", json={"query": ["a"]})
    assert answer.status_code == 422 and answer.json()["error"].startswith("body.labels: this server reads")


def test_a_default_reward_the_model_cannot_serve_fails_at_startup(model):
    from pluralrm.errors import ConfigError
    from pluralrm.serve import ServeConfig, create_app

    with pytest.raises(ConfigError, match=r"default reward \(religion=x\): unknown group attribute 'religion'"):
        create_app(model, ServeConfig(rlhf=RlhfConfig(reward=RewardSpec(groups="religion=x"))))
    with pytest.raises(ConfigError, match="weights must have one entry per group"):
        create_app(model, ServeConfig(rlhf=RlhfConfig(reward=RewardSpec(groups="all", aggregate="weighted",
                                                                        weights=(1.0, 2.0)))))


@pytest.mark.slow
def test_fuzz_get_reward_bodies_never_5xx(model):
    """Generated /get_reward bodies (right and wrong types, labels of any JSON, group specs good
    and bad): 200 with one reward per query, or a 4xx whose error names the body field."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
    anything = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=4), inner, max_size=2)),
                            max_leaves=6)
    spec = st.sampled_from(["country=NG", "all", "country=FR", "religion=x", "=", "", "NG", '{"country": "US"}',
                            '{"country"'])
    fields = {"query": st.one_of(st.lists(st.text(max_size=20), max_size=4), anything),
              "prompts": st.one_of(st.lists(st.text(max_size=8), max_size=4), anything),
              "labels": st.one_of(st.lists(st.one_of(spec, anything), max_size=4), anything),
              "groups": st.one_of(spec, st.lists(st.one_of(spec, st.none()), max_size=4), anything)}
    bodies = st.lists(st.sampled_from(sorted(fields)), unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: fields[k] for k in keys}))
    config = RlhfConfig(reward=RewardSpec(groups="all", aggregate="worst"), groups_from_labels=True,
                        label_attribute="country")
    with client(model, rlhf=config) as c:
        @settings(max_examples=200, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(bodies)
        def check(body):
            answer = c.post("/get_reward", json=body)
            assert answer.status_code in (200, 413, 422), (body, answer.status_code, answer.text)
            if answer.status_code == 200:
                assert len(answer.json()["rewards"]) == len(body["query"])
            else:
                assert answer.json()["error"].startswith("body"), answer.json()

        check()
