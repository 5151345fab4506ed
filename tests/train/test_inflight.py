"""The loop runs at most ``IN_FLIGHT`` steps ahead of the device, without the loop itself waiting:
the prefetch thread holds batch i back until batch i - IN_FLIGHT's step has finished."""
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import pluralrm.train.trainer as trainer
from pluralrm.train import fit
from pluralrm.train.inflight import IN_FLIGHT, InFlight

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import make_dataset, tiny_config  # noqa: E402


class Marker:
    def __init__(self):
        self.waited = threading.Event()

    def block_until_ready(self):
        self.waited.set()
        return self


def waiter(window: InFlight, index: int) -> threading.Thread:
    thread = threading.Thread(target=window.wait_before, args=(index,), daemon=True)
    thread.start()
    return thread


def test_wait_before_waits_for_the_step_depth_batches_back():
    window = InFlight(start=10, depth=2)
    window.wait_before(10)  # batches 8 and 11 - 2 = 9 were an earlier run's: nothing to wait for
    window.wait_before(11)
    thread = waiter(window, 12)  # needs batch 10's step
    time.sleep(0.2)
    assert thread.is_alive()
    marker = Marker()
    window.dispatched(10, marker)
    thread.join(5)
    assert not thread.is_alive() and marker.waited.is_set()
    window.dispatched(11, Marker())
    window.dispatched(12, Marker())
    last = Marker()
    window.dispatched(13, last)
    window.wait_before(15)
    assert last.waited.is_set()


def test_close_releases_a_waiting_thread():
    window = InFlight(start=0, depth=1)
    thread = waiter(window, 5)  # batch 4 will never be dispatched (the loop ended)
    time.sleep(0.1)
    window.close()
    thread.join(5)
    assert not thread.is_alive()
    window.wait_before(7)  # closed: returns at once
    with pytest.raises(ValueError):
        InFlight(start=0, depth=0)


def test_the_loop_never_runs_more_than_in_flight_steps_ahead(tmp_path, monkeypatch):
    """Each step's metrics are made slow (a long computation after the step), so without
    the bound the prefetch thread would place every batch long before the device got to it.
    With it, when batch i is handed over, batch i - IN_FLIGHT's step has finished; the run
    still has no read point between step 1 and the end."""
    steps = 24
    outputs: list = []  # state.step after each step, in dispatch order

    @jax.jit
    def slow(step):
        x = jnp.full((256, 256), 1e-3, jnp.float32) * step.astype(jnp.float32)
        for _ in range(40):
            x = jnp.tanh(x @ x)
        return step + (x[0, 0] > 1e9).astype(step.dtype)  # tanh < 1: adds 0, after the work

    real_make = trainer.make_train_step

    def make_slow(*args, **kwargs):
        step_fn = real_make(*args, **kwargs)

        class Slow:
            compilations = property(lambda self: step_fn.compilations)

            def __call__(self, state, rest, batch):
                state, metrics = step_fn(state, rest, batch)
                metrics = dict(metrics, slow=slow(state.step))  # what the loop's bound waits for
                outputs.append(metrics["slow"])
                return state, metrics

        return Slow()

    monkeypatch.setattr(trainer, "make_train_step", make_slow)
    slow(jnp.zeros((), jnp.int32)).block_until_ready()  # compiled before the run
    seen = []

    def check(index, batch):  # the prefetch thread, right before placing batch `index`
        earlier = index - IN_FLIGHT
        seen.append((index, earlier < 0 or (len(outputs) > earlier and outputs[earlier].is_ready())))
        return batch

    train, _ = make_dataset(300)
    config = tiny_config(tmp_path / "run", steps, [f"train.log_every={steps}", "checkpoint.every=0"])
    _, result = fit(config, train, None, transform_batch=check)
    assert result.steps == steps
    handed = [ok for index, ok in seen if index < steps]
    assert len(handed) == steps and all(handed), seen
