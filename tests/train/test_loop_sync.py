"""The loop keeps the device busy: between read points (log points, evaluations, checkpoints,
the end) it never reads a device array back, and the train step compiles once. Held-out
metrics accumulated on the device equal the numpy oracle (``group_metrics``) on the model's
own predictions."""
import json
import sys
import threading
import traceback
from pathlib import Path

import jax
import numpy as np
import pytest
from jax._src.array import ArrayImpl

import pluralrm.train.trainer as trainer
from pluralrm.train import fit
from pluralrm.train.batches import encode_comparisons
from pluralrm.train.evaluate import group_metrics

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import make_dataset, tiny_config  # noqa: E402

READS = ("__array__", "__float__", "__int__", "__bool__", "__index__", "item", "tolist", "block_until_ready")


class SyncWatch:
    """Counts device reads made by the main thread while ``armed``."""

    def __init__(self, monkeypatch):
        self.armed, self.reads, self.main = False, [], threading.main_thread()

        def watch(fn, name):
            def wrapped(*args, **kwargs):
                if self.armed and threading.current_thread() is self.main:
                    self.reads.append(f"{name}\n" + "".join(traceback.format_stack(limit=6)[:-1]))
                return fn(*args, **kwargs)
            return wrapped

        for name in READS:
            monkeypatch.setattr(ArrayImpl, name, watch(getattr(ArrayImpl, name), f"Array.{name}"))
        monkeypatch.setattr(jax, "device_get", watch(jax.device_get, "jax.device_get"))
        monkeypatch.setattr(jax, "block_until_ready", watch(jax.block_until_ready, "jax.block_until_ready"))


def test_no_host_sync_between_log_points_and_one_compilation(tmp_path, monkeypatch):
    steps, log_every = 20, 7
    read_points = {s for s in range(1, steps + 1) if s % log_every == 0 or s == steps}
    watch = SyncWatch(monkeypatch)
    made = []
    real_make = trainer.make_train_step

    def make_watched(*args, **kwargs):
        step_fn = real_make(*args, **kwargs)
        made.append(step_fn)
        calls = [0]

        class Watched:
            def __call__(self, state, rest, batch):
                watch.armed = False  # the step's own dispatch: checked by the window before it
                out = step_fn(state, rest, batch)
                calls[0] += 1
                watch.armed = calls[0] not in read_points  # the loop's work until the next step
                return out

            @property
            def compilations(self):
                return step_fn.compilations

        return Watched()

    monkeypatch.setattr(trainer, "make_train_step", make_watched)
    train, test = make_dataset(300)
    config = tiny_config(tmp_path / "run", steps, [f"train.log_every={log_every}", "checkpoint.every=0",
                                                   "model.backbone.buckets=[512]"])
    logged = []
    model, result = fit(config, train, test, on_log=lambda step, means: logged.append((step, dict(means))))
    assert made and result.steps == steps
    assert not watch.reads, f"{len(watch.reads)} device reads between log points, the first:\n{watch.reads[0]}"
    assert result.compilations == 1
    # the watch is live: the same reads at a log point are seen
    watch.armed = True
    float(jax.numpy.ones(()))
    assert watch.reads
    watch.armed = False

    # train records at 7, 14, 20 hold means over their windows
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [7, 14, 20]
    # on_log (where benchmarks time training) is called at exactly those read points, with their means
    assert [step for step, _ in logged] == [7, 14, 20]
    for (_, means), record in zip(logged, (r for r in records if r["split"] == "train")):
        assert means["loss"] == pytest.approx(record["loss"]) and means["accuracy"] == pytest.approx(record["accuracy"])

    # on-device eval equals the numpy oracle on RewardModel.predict's probabilities
    encoded = encode_comparisons(test, model.schema, model.annotators)
    oracle = {g.group: g for g in group_metrics(model.predict(test), encoded.label, encoded.weight, encoded.group_ids, model.schema)}
    got = {g["group"]: g for g in result.eval_metrics[-1]["groups"]}
    assert got.keys() == oracle.keys()
    for name, g in got.items():
        assert g["count"] == oracle[name].count
        assert g["accuracy"] == pytest.approx(oracle[name].accuracy, abs=1e-6)
        assert g["nll"] == pytest.approx(oracle[name].nll, rel=1e-4)


def test_nonfinite_records_survive_a_crash_between_log_points(tmp_path):
    """A non-finite step before a checkpoint that is not a log point is reported at the next log
    point of the resumed run with its batch, as in an uninterrupted run."""
    train, test = make_dataset(300)
    extra = ["train.log_every=10", "checkpoint.every=4"]

    def poison(step, batch):
        return dict(batch, label=np.full_like(batch["label"], np.nan)) if step == 2 else batch

    def poison_then_crash(step, batch):
        if step == 5:
            raise RuntimeError("crash")
        return poison(step, batch)

    _, reference = fit(tiny_config(tmp_path / "ref", 10, extra), train, test, transform_batch=poison)
    with pytest.raises(RuntimeError, match="crash"):
        fit(tiny_config(tmp_path / "run", 10, extra), train, test, transform_batch=poison_then_crash)
    _, resumed = fit(tiny_config(tmp_path / "run", 10, extra), train, test, resume=True)
    assert [(r["step"], r["epoch"], r["batch"]) for r in reference.nonfinite_steps] == [(3, 0, 2)]
    assert json.dumps(resumed.nonfinite_steps) == json.dumps(reference.nonfinite_steps)  # NaN loss: compare text
