"""pluralrm.models.adapt: the compiled few-shot fit equals step-by-step gradient descent on the
MAP objective, ignores its padding, compiles once per padded size, starts from the group, and its
prior is the one asked for."""
from __future__ import annotations

import datasets
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pluralrm.data.schema import GroupSchema
from pluralrm.errors import ConfigError
from pluralrm.models.adapt import _fit, _pair_hidden, adapt_annotator, map_objective, prior_precision
from pluralrm.models.config import BackboneConfig, HeadConfig, ModelConfig
from pluralrm.models.reward_model import RewardModel

TEXTS = ["be kind to them", "tell the whole truth", "just lie", "laugh about it", "keep it serious",
         "respect the customs", "ignore the risks", "take precautions"]


def _model(head: str, **knobs) -> RewardModel:
    rows = [dict(prompt="q", chosen=TEXTS[i % 8], rejected=TEXTS[(i + 3) % 8], label=1.0,
                 annotator_id=f"a{i % 4}", weight=1.0, country="US" if i % 2 else "NG") for i in range(16)]
    schema = GroupSchema.from_dataset(datasets.Dataset.from_list(rows), ["country"])
    config = ModelConfig(backbone=BackboneConfig(num_buckets=512, embed_dim=8, hidden_dims=(16,)),
                         head=HeadConfig(type=head, hidden_dim=8, **knobs))
    return RewardModel.create(config, schema, annotators=("a0", "a1", "a2", "a3"), seed=1)


def _reference_fit(model, prompts, chosen, rejected, labels, group, steps, lr, precision):
    """Gradient descent on the unpadded objective, step by step, each coordinate's step divided
    by 1 + 2λ_k/n (the documented preconditioner)."""
    head = model.net.head
    h_c, h_r = _pair_hidden(model, prompts, chosen, rejected)
    n = len(prompts)
    group_ids = jnp.asarray(model.encode_groups(group, n))
    label = jnp.asarray(labels, jnp.float32)
    weight = jnp.ones((n,), jnp.float32)
    width = h_c.shape[1] if head.config.type == "per_group" else head.config.num_prototypes
    p = jnp.zeros((width,), jnp.float32)
    grad = jax.grad(lambda q: map_objective(head, q, h_c, h_r, group_ids, label, weight, jnp.asarray(precision)))
    step = lr / (1.0 + 2.0 * jnp.asarray(precision) / n)
    for _ in range(steps):
        p = p - step * grad(p)
    return np.asarray(p)


@pytest.mark.parametrize("head,knobs", [("mixture", {"num_prototypes": 3}),
                                        ("mixture", {"num_prototypes": 3, "mixture_likelihood": "latent_class"}),
                                        ("per_group", {"use_annotators": True})])
def test_compiled_fit_equals_stepwise_gradient_descent(head, knobs):
    model = _model(head, **knobs)
    prompts, chosen, rejected = ["q"] * 3, TEXTS[:3], TEXTS[3:6]  # n = 3 is padded to 4
    labels = [1.0, 0.0, 0.5]
    adapted = adapt_annotator(model, prompts, chosen, rejected, labels=labels, group={"country": "NG"},
                              steps=40, learning_rate=0.5, prior="training")
    precision = prior_precision(model.net.head, "training")
    want = _reference_fit(model, prompts, chosen, rejected, labels, {"country": "NG"}, 40, 0.5, precision)
    assert np.abs(want).max() > 1e-3  # the fit moved
    np.testing.assert_allclose(adapted.params, want, rtol=2e-5, atol=1e-6)


def _set_annotator_table(model, values):
    table = model.net.head.annotators.table
    table.embedding[...] = jnp.asarray(values, jnp.float32)


def test_prior_precisions():
    model = _model("mixture", num_prototypes=3, annotator_shrinkage=0.02)
    head = model.net.head
    np.testing.assert_allclose(prior_precision(head, "training"), [0.02] * 3)
    np.testing.assert_allclose(prior_precision(head, 0.5), [0.5] * 3)
    learned = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [-1.0, 2.0, 0.5], [3.0, 0.0, -0.5], [1.0, 0.0, 0.5]])
    _set_annotator_table(model, learned)  # row 0 is the unknown annotator, left out
    want = 0.5 / np.mean(learned[1:] ** 2, axis=0)
    np.testing.assert_allclose(prior_precision(head, "empirical"), want, rtol=1e-6)
    with pytest.raises(ConfigError, match="prior must be one of"):
        prior_precision(head, "flat")
    with pytest.raises(ConfigError, match=">= 0"):
        prior_precision(head, -1.0)
    # a head that learned no annotators falls back to its shrinkage
    no_annotators = _model("per_group", use_annotators=False, annotator_shrinkage=0.03).net.head
    np.testing.assert_allclose(prior_precision(no_annotators, "empirical"), [0.03] * 8)


def test_a_tighter_prior_moves_the_annotator_less():
    model = _model("mixture", num_prototypes=3)
    _set_annotator_table(model, np.full((5, 3), 0.1))  # the known annotators barely differ
    args = (model, ["q"] * 2, TEXTS[:2], TEXTS[2:4])
    loose = adapt_annotator(*args, prior="training").params
    tight = adapt_annotator(*args, prior="empirical").params  # precision 50: stable all the same
    assert np.all(np.isfinite(tight)) and np.abs(tight).max() < 0.1 * np.abs(loose).max()


def test_zero_comparisons_predict_the_group():
    model = _model("mixture", num_prototypes=3)
    adapted = adapt_annotator(model, [], [], [], group={"country": "US"})
    assert adapted.num_comparisons == 0 and not adapted.params.any()
    got = adapted.predict_preference(["q"] * 4, TEXTS[:4], TEXTS[4:])
    want = model.predict_preference(["q"] * 4, TEXTS[:4], TEXTS[4:], groups={"country": "US"})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_one_compilation_per_padded_size():
    model = _model("mixture", num_prototypes=3)
    adapt_annotator(model, ["q"] * 5, TEXTS[:5], TEXTS[3:8], steps=7)  # pads to 8
    before = _fit._cache_size()
    for n in (6, 7, 8):  # same padded size, same steps: no new program
        adapt_annotator(model, ["q"] * n, TEXTS[:n], TEXTS[8 - n:], steps=7)
    assert _fit._cache_size() == before


def test_pooled_head_cannot_adapt():
    with pytest.raises(ConfigError, match="mixture or per_group"):
        adapt_annotator(_model("pooled"), ["q"], TEXTS[:1], TEXTS[1:2])
