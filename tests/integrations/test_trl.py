"""The TRL reward function, called exactly as TRL's ``GRPOTrainer._calculate_rewards`` calls
it (keywords prompts, completions, completion_ids, the other dataset columns repeated per
completion, trainer_state, log_extra, log_metric), against ``RewardModel.score`` as oracle.
The real GRPOTrainer run is tests/integrations/grpo_check.py (``make test-trl``)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "score"))
from score_helpers import PROMPTS, RESPONSES, tiny_model  # noqa: E402

from pluralrm.data.dialogue import render_messages  # noqa: E402
from pluralrm.errors import DataError  # noqa: E402
from pluralrm.integrations.trl import reward_function  # noqa: E402
from pluralrm.score import aggregate  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def trl_call(fn, prompts, completions, **columns):
    extra = []
    out = fn(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(prompts),
             trainer_state=object(), log_extra=lambda name, values: extra.append((name, values)),
             log_metric=lambda *a: None, **columns)
    assert isinstance(out, list) and all(type(r) is float for r in out) and len(out) == len(prompts)
    return np.array(out), extra


def test_standard_format_one_group_and_pooled(model):
    ng = reward_function(model, groups="country=NG")
    assert ng.__name__ == "pluralrm_country_NG"
    got, _ = trl_call(ng, PROMPTS, RESPONSES, answer=["x"] * 3)
    np.testing.assert_allclose(got, model.score(PROMPTS, RESPONSES, groups="country=NG"), rtol=1e-6, atol=1e-6)
    pooled = reward_function(model)
    got, _ = trl_call(pooled, PROMPTS, RESPONSES)
    np.testing.assert_allclose(got, model.score(PROMPTS, RESPONSES), rtol=1e-6, atol=1e-6)


def test_all_groups_with_a_rule_ranks_within_each_prompts_completions(model):
    prompts = [PROMPTS[0]] * 3 + [PROMPTS[1]] * 3
    completions = RESPONSES + RESPONSES[::-1]
    for rule in ("worst", "borda"):
        fn = reward_function(model, groups="all", aggregate=rule)
        assert fn.__name__ == f"pluralrm_{rule}"
        got, _ = trl_call(fn, prompts, completions)
        table, _ = model.score_all_groups(prompts, completions)
        np.testing.assert_allclose(got, aggregate(table, rule, sets=prompts), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trl_call(reward_function(model, groups="all", aggregate="worst"), prompts,
                                        completions)[0], table.min(axis=1), rtol=1e-6, atol=1e-6)


def test_conversational_format_is_rendered_like_chat_training_data(model):
    prompts = [[{"role": "system", "content": "Be kind."}, {"role": "user", "content": p}] for p in PROMPTS]
    completions = [[{"role": "assistant", "content": r}] for r in RESPONSES]
    got, _ = trl_call(reward_function(model, groups="country=US"), prompts, completions)
    expected = model.score([render_messages(p) for p in prompts], RESPONSES, groups="country=US")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_per_sample_group_column_with_fallbacks(model):
    fn = reward_function(model, groups="all", aggregate="mean", group_column="country", group_attribute="country")
    got, extra = trl_call(fn, PROMPTS, RESPONSES, country=["NG", "", "FR"])
    assert got[0] == pytest.approx(float(model.score(PROMPTS[:1], RESPONSES[:1], groups="country=NG")[0]), abs=1e-6)
    table, _ = model.score_all_groups(PROMPTS[1:2], RESPONSES[1:2])
    assert got[1] == pytest.approx(float(table.mean()), abs=1e-6)  # empty value: the default spec (all, mean)
    assert got[2] == pytest.approx(float(model.score(PROMPTS[2:], RESPONSES[2:])[0]), abs=1e-6)  # FR: pooled
    note = "group value country='FR' is not in the model's schema; using the pooled reward"
    assert fn.last_notes == [note] and extra == [("pluralrm_notes", [note] * 3)]
    strict = reward_function(model, group_column="country", group_attribute="country", fallback="error")
    with pytest.raises(DataError, match="'FR'"):
        trl_call(strict, PROMPTS, RESPONSES, country=["NG", "US", "FR"])
    with pytest.raises(DataError, match="no column 'country'") as e:
        trl_call(strict, PROMPTS, RESPONSES, language=["en"] * 3)
    assert e.value.field == "country"


@pytest.mark.parametrize("prompts, completions, field", [
    ([[{"role": "user"}]], ["r"], "prompts.0.0.content"),
    ([[{"role": "user", "content": 3}]], ["r"], "prompts.0.0.content"),
    (["p"], [[{"role": "assistant", "content": "ok"}, "oops"]], "completions.0.1"),
    (["p"], [{"role": "assistant"}], "completions.0"),
])
def test_malformed_chat_messages_name_the_field(model, prompts, completions, field):
    with pytest.raises(DataError) as e:
        reward_function(model)(prompts=prompts, completions=completions)
    assert e.value.field == field


def test_unknown_group_attribute_fails_when_the_function_is_built(model):
    with pytest.raises(DataError, match="unknown group attribute 'religion'"):
        reward_function(model, groups="religion=x")


def test_rule_weights_that_do_not_fit_the_groups_fail_when_the_function_is_built(model):
    from pluralrm.errors import ConfigError

    with pytest.raises(ConfigError, match="weights must have one entry per group"):
        reward_function(model, groups="all", aggregate="weighted", weights=[1.0])
