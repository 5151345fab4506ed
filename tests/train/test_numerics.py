"""The non-finite guard under bfloat16 compute: a step whose bf16 forward pass overflows is
skipped (float32 master parameters and optimizer state unchanged, bit for bit) and reported;
the next finite step trains normally. (NaN/inf batches through ``fit``: test_trainer.py.)"""
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pluralrm.models import RewardModel
from pluralrm.train.batches import BatchStream, encode_comparisons
from pluralrm.train.step import TrainState, make_optimizer, make_train_step

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import make_dataset, tiny_config  # noqa: E402


def _setup(dtype):
    config = tiny_config("/tmp/unused", 4, [f"train.dtype={dtype}"])
    train, _ = make_dataset(200)
    from pluralrm.data.schema import GroupSchema

    schema = GroupSchema.from_dataset(train, ["country"])
    model = RewardModel.create(config.model, schema, seed=0)
    graphdef, params, rest = nnx.split(model.net, model.net.trainable, ...)
    tx = make_optimizer(config.optimizer, config.schedule, 4)
    state = TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))
    step = make_train_step(graphdef, tx, config.loss, 0, 0.0, dtype)
    stream = BatchStream(encode_comparisons(train, schema, ()), model.featurizer, 32, 0)
    return state, rest, step, stream


def _leaves(tree):
    return [np.asarray(x).copy() for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_an_overflowing_step_is_skipped_and_the_next_one_trains(dtype):
    state, rest, step, stream = _setup(dtype)
    batch = jax.tree.map(jnp.asarray, stream.batch((0, 0)))
    # parameters near bf16's largest finite value (3.39e38): the forward pass overflows to inf
    huge = jax.tree.map(lambda x: jnp.full_like(x, 3.0e38) if x.ndim >= 2 else x, state.params)
    state = TrainState(huge, state.opt_state, state.step)
    before = _leaves((state.params, state.opt_state))
    state, metrics = step(state, rest, batch)
    assert not bool(metrics["finite"])
    assert not np.isfinite(float(metrics["total"])) or not np.isfinite(float(metrics["grad_norm"]))
    for a, b in zip(before, _leaves((state.params, state.opt_state))):
        np.testing.assert_array_equal(a, b)  # skipped: nothing moved, bit for bit
    assert int(state.step) == 1  # ...but the step is counted (the batch is consumed, the position advances)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))  # master weights stay float32

    state, rest, step, stream = _setup(dtype)
    before = _leaves(state.params)
    for _ in range(3):  # the schedule warms up from lr 0
        state, metrics = step(state, rest, batch)
        assert bool(metrics["finite"]) and np.isfinite(float(metrics["total"]))
    assert any(not np.array_equal(a, b) for a, b in zip(before, _leaves(state.params)))
