"""The training loop: ``fit(config, train, eval_data)``.

A run directory holds everything needed to resume or to score::

    config.yaml            the resolved TrainConfig
    model.json, schema.json, annotators.json   the model's metadata (see RewardModel)
    checkpoints/<step>/    Orbax: model variables, optimizer state, meta (data position, ...)
    manifests/<step>.json  SHA-256 of each finished checkpoint (corruption detection)
    best.json              the best step by the eval metric
    metrics.jsonl, tb/     training and eval metrics
    summary.json           final per-group metrics

Resuming (``resume=True``) restores the newest checkpoint that verifies, the data position and
the loop's running stats (non-finite streak, sums since the last log point), and continues;
since batches are a function of (seed, position) and randomness of (seed, step), a resumed run
ends bitwise equal to an uninterrupted one. Only resume-safe keys
(``pluralrm.train.config.RESUME_SAFE_KEYS``) may differ from the saved config; a run already at
its last step is reported as finished and left alone. SIGTERM/SIGINT stop the loop after the
current step and save it first.

The loop never waits for a step between its read points (log points, evaluations,
checkpoints, a signal, the end): batches are featurized and placed on the devices ahead by the
prefetch thread, the jitted step keeps the sums, streak and non-finite records in
``TrainState.stats`` (``pluralrm.train.step``), and the host reads them at log points. A
streak of ``nonfinite_patience`` freezes the state on the device where it was completed; the
loop notices at its next read point, saves that step and stops, naming it. Multi-process runs
(``jax.distributed``): every process walks the same permutation and featurizes only its rows of
each global batch, padded to the longest length bucket so all processes feed equal shapes; each
evaluates its share of the held-out rows.
"""
from __future__ import annotations

import itertools
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from pluralrm.data.schema import GroupSchema
from pluralrm.errors import CheckpointError, ConfigError, PluralRMError
from pluralrm.models.model_files import write_model_metadata
from pluralrm.models.reward_model import RewardModel
from pluralrm.train import sharding
from pluralrm.train.batches import BatchStream, encode_comparisons
from pluralrm.train.checkpoint import RunCheckpoints, abstract_tree, write_json_atomic
from pluralrm.train.config import RESUME_SAFE_KEYS, TrainConfig, checkpoint_interval, config_to_yaml, resume_differences
from pluralrm.train.evaluate import Evaluator
from pluralrm.train.inflight import InFlight
from pluralrm.train.monitor import MetricsLog, ProgressBar, group_table
from pluralrm.train.step import (
    NONFINITE_SLOTS,
    SUMMED,
    TrainState,
    make_eval_step,
    make_optimizer,
    make_train_step,
    new_stats,
    reset_window,
    stats_from_json,
    stats_to_json,
)

log = logging.getLogger("pluralrm.train")
ANNOTATOR_HEADS = ("per_group", "mixture")


class TrainingStopped(PluralRMError):
    """Training stopped on purpose (non-finite steps in a row); the message says where."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_step: int | None
    best_metric: float | None
    eval_metrics: list[dict] = field(default_factory=list)
    compilations: int = 0
    throughput: float = 0.0
    nonfinite_steps: list[dict] = field(default_factory=list)
    stopped_by: str = "completed"
    notes: list[str] = field(default_factory=list)


def _annotator_vocabulary(config: TrainConfig, train: Any) -> tuple[str, ...]:
    head = config.model.head
    wanted = head.type == "mixture" or (head.type == "per_group" and head.use_annotators)
    if not wanted or "annotator_id" not in train.column_names:
        return ()
    return tuple(sorted(set(train["annotator_id"]) - {""}))


def _check_resumable(run_dir: Path, config: TrainConfig) -> None:
    """A resumed run must use the saved config, resume-safe keys aside (train.steps may grow)."""
    import yaml

    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        raise CheckpointError(f"{run_dir} has checkpoints but no config.yaml; cannot resume safely")
    diffs = resume_differences(yaml.safe_load(saved_path.read_text()), config)
    if diffs:
        raise ConfigError(
            f"cannot resume {run_dir}: the config differs from the saved one at {diffs[:5]}; only "
            f"{', '.join(RESUME_SAFE_KEYS)} may change on resume. Resume with the saved config "
            f"(pluralrm train --resume {run_dir}) or start a new run_dir"
        )


def fit(
    config: TrainConfig,
    train: Any,
    eval_data: Any | None = None,
    resume: bool = False,
    transform_batch: Callable[[int, dict], dict] | None = None,
    on_log: Callable[[int, dict], None] | None = None,
) -> tuple[RewardModel, TrainResult]:
    """Trains a reward model on a ComparisonDataset.

    Args:
      config: the TrainConfig (``config.run_dir`` is where everything is written).
      train: training comparisons (``datasets.Dataset``).
      eval_data: held-out comparisons for evaluation and best-checkpoint selection.
      resume: continue from the newest good checkpoint in ``run_dir``. Without it, a run
        directory that already has checkpoints is refused (nothing is overwritten).
      transform_batch: optional ``(step, batch) -> batch`` applied to each training batch
        before it is sent to the devices (augmentation, or fault injection in tests). It runs
        in the prefetch thread, ahead of the step that will use the batch.
      on_log: optional ``(step, means) -> None`` called at every log point (each
        ``train.log_every`` steps and the last), right after the host has waited for that step's
        results: the place to time training (the step loop itself never waits between log
        points, so time taken anywhere else measures dispatch, not compute). ``means`` are the
        logged training means since the previous log point (``loss``, ``accuracy``, ...).

    Returns:
      The model with its final parameters (``RewardModel.load(run_dir)`` gives the best) and a
      TrainResult.
    """
    run_dir = Path(config.run_dir).absolute()
    sharding.initialize_distributed(config.mesh)
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch_size(config.train.batch_size, mesh)
    for key, size in (("eval.batch_size", mesh.shape["data"]), ("eval.batch_size", jax.process_count())):
        if config.eval.batch_size % size:
            raise ConfigError(f"{key}={config.eval.batch_size} must be divisible by {size} (devices on the data axis, processes)")

    ckpt_exists = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
    if ckpt_exists and not resume:
        raise ConfigError(f"{run_dir} already holds checkpoints: pass resume (--resume) or another run_dir")
    if ckpt_exists:
        _check_resumable(run_dir, config)
        schema = GroupSchema.load(run_dir / "schema.json")
        annotators = tuple(json.loads((run_dir / "annotators.json").read_text()))
    else:
        schema = GroupSchema.from_dataset(train, config.data.groups)
        annotators = _annotator_vocabulary(config, train)
    model = RewardModel.create(config.model, schema, annotators, seed=config.train.seed)
    if jax.process_index() == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(config_to_yaml(config))
        objective = {"group_dropout": config.train.group_dropout, "loss": config.loss.type,
                     "margin": config.loss.margin, "tie_param": config.loss.tie_param}
        write_model_metadata(run_dir, config.model, schema, model.featurizer, annotators, {}, objective)

    checkpoints = RunCheckpoints(run_dir, config.checkpoint, config.eval.mode)
    metrics_log = MetricsLog(run_dir, enabled=jax.process_index() == 0)
    try:
        outcome = _train_loop(config, model, train, eval_data, run_dir, mesh, checkpoints, metrics_log, transform_batch, ckpt_exists,
                              on_log)
    except BaseException:
        # Report the error that stopped training, not a second one raised while closing
        # (on a full disk, flushing TensorBoard fails too).
        for close in (checkpoints.close, metrics_log.close):
            try:
                close()
            except Exception as e:  # noqa: BLE001
                log.warning("while stopping after an error, closing failed too: %s", e)
        raise
    checkpoints.close()
    metrics_log.close()
    return outcome


def _pad_length(batch: dict, length: int, left: bool = False) -> dict:
    """Pads bucketed text inputs ``[B, 2, L]`` with zeros (masked padding) to ``length`` on the
    featurizer's padding side; inputs of other layouts (fixed shapes already) pass unchanged."""
    def pad(v):
        if np.ndim(v) != 3 or v.shape[-1] >= length:
            return v
        extra = length - v.shape[-1]
        return np.pad(v, [(0, 0), (0, 0), (extra, 0) if left else (0, extra)])

    return dict(batch, inputs={k: pad(v) for k, v in batch["inputs"].items()})


def _train_loop(config, model, train, eval_data, run_dir, mesh, checkpoints, metrics_log, transform_batch, resuming,
                on_log=None):
    net = model.net
    graphdef, params, rest = nnx.split(net, net.trainable, ...)
    cfg_opt = config.optimizer
    total_updates = config.train.steps
    total_steps = total_updates * cfg_opt.accumulation_steps
    tx = make_optimizer(cfg_opt, config.schedule, total_updates)
    params = sharding.shard_state(params, mesh, config.mesh)
    rest = sharding.shard_state(rest, mesh, config.mesh)
    opt_state = jax.jit(tx.init)(params)
    zero = jax.numpy.zeros((), jax.numpy.int32)
    state = sharding.commit_to_mesh(TrainState(params, opt_state, zero, new_stats()), mesh)
    position, best, restored_positions = (0, 0), None, []
    result = TrainResult(run_dir, 0, None, None)

    if resuming:
        restored = checkpoints.restore_latest_good(
            abstract_tree(nnx.merge_state(params, rest).to_pure_dict()),
            abstract_tree({"opt_state": opt_state, "step": state.step}),
        )
        result.notes += checkpoints.notes
        if restored is None and checkpoints.notes:
            raise CheckpointError(f"{run_dir}: no usable checkpoint to resume from ({'; '.join(checkpoints.notes)})")
        if restored is None:  # interrupted before its first checkpoint was complete: nothing to lose
            log.warning("%s: no checkpoint was completed before the interruption; starting from step 0", run_dir)
            resuming = False
    if not resuming:
        metrics_log.truncate_after(-1)  # records of an earlier attempt that never checkpointed
    else:
        step, items = restored
        nnx.update(net, items["model"])
        meta = items["meta"]
        if step >= total_steps:
            result.steps, result.stopped_by = step, f"already finished at step {step}"
            summary = run_dir / "summary.json"  # the finished run's held-out metrics, as it left them
            final = json.loads(summary.read_text()).get("final_eval") if summary.is_file() else None
            if final:
                result.eval_metrics.append(final)
            print(f"{run_dir}: already finished at step {step} (train.steps={config.train.steps}); "
                  "nothing to do (to train longer: --resume RUN_DIR --set train.steps=N)", file=sys.stderr)
            return model, result
        _, params, rest = nnx.split(net, net.trainable, ...)
        params = sharding.shard_state(params, mesh, config.mesh)
        rest = sharding.shard_state(rest, mesh, config.mesh)
        stats = stats_from_json(meta["stats"]) if "stats" in meta else new_stats(meta["nonfinite_streak"])
        state = sharding.commit_to_mesh(TrainState(params, items["opt"]["opt_state"], items["opt"]["step"], stats), mesh)
        position, best = tuple(meta["position"]), meta.get("best")
        restored_positions = meta.get("window_positions", [])
        metrics_log.truncate_after(step)
        note = f"resumed {run_dir} at step {step}"
        result.notes.append(note)
        print(note, file=sys.stderr)

    processes = (jax.process_index(), jax.process_count())
    value_labels = config.model.head.type == "values"
    num_values = model.net.head.num_values if value_labels else None
    encoded = encode_comparisons(train, model.schema, model.annotators, value_labels, num_values)
    stream = BatchStream(encoded, model.featurizer, config.train.batch_size, config.train.seed, processes)
    step_fn = make_train_step(graphdef, tx, config.loss, config.train.seed, config.train.group_dropout,
                              config.train.dtype, config.train.nonfinite_patience)
    replicated = sharding.replicated(mesh)
    reset_stats = jax.jit(reset_window, out_shardings=replicated)
    # Several processes must feed equal shapes; each sees only its rows' lengths.
    longest = model.featurizer.buckets[-1] if processes[1] > 1 else None

    def place(batch):
        if longest is not None:
            batch = _pad_length(batch, longest, getattr(model.featurizer, "padding_side", "right") == "left")
        return sharding.put_batch(batch, mesh)

    evaluate = None
    if eval_data is not None and len(eval_data):
        eval_encoded = encode_comparisons(eval_data, model.schema, model.annotators, value_labels, num_values)
        eval_step = make_eval_step(graphdef, config.loss, config.train.dtype, replicated)
        evaluate = Evaluator(eval_encoded, model.featurizer, model.schema, eval_step, config.eval.batch_size,
                             place, replicated, *processes)

    last_saved = [-1]
    # step -> its batch's position, since the last log point (names non-finite steps' batches)
    positions: dict[int, tuple[int, int]] = {s: (e, i) for s, e, i in restored_positions}

    def save(step, metric=None, after=None):
        if last_saved[0] == step:
            return
        last_saved[0] = step
        stats = jax.device_get(state.stats)
        meta = {"step": step, "position": list(after or position), "nonfinite_streak": int(stats.streak),
                "stats": stats_to_json(stats), "window_positions": [[s, *p] for s, p in positions.items() if s <= step],
                "best": best, "metric": metric}
        model_tree = nnx.merge_state(state.params, rest).to_pure_dict()
        checkpoints.save(step, model_tree, {"opt_state": state.opt_state, "step": state.step}, meta, metric)

    def report_nonfinite(stats) -> None:
        count = int(stats.nonfinite_count)
        for i in range(min(count, NONFINITE_SLOTS)):
            s = int(stats.nonfinite_step[i])
            loss, grad_norm = (float(v) for v in stats.nonfinite_values[i])
            epoch, index = positions.get(s, (-1, -1))
            record = {"step": s, "split": "nonfinite", "epoch": epoch, "batch": index, "loss": loss, "grad_norm": grad_norm}
            result.nonfinite_steps.append(record)
            metrics_log.write(record)
            log.warning("step %d (epoch %d, batch %d): non-finite loss or gradient; update skipped", s, epoch, index)
        if count > NONFINITE_SLOTS:
            log.warning("%d more non-finite steps (updates skipped) before step %d", count - NONFINITE_SLOTS, step)

    def stop_if_frozen(stats) -> None:
        stopped = int(stats.stopped_at)
        if not stopped:
            return
        report_nonfinite(stats)
        where = positions[stopped]
        save(stopped, after=stream.next_position(where))  # the device state is frozen at `stopped`
        loss, grad_norm = (float(v) for v in stats.last_nonfinite)
        raise TrainingStopped(
            f"stopped at step {stopped}: {int(stats.streak)} non-finite steps in a row, the last on "
            f"epoch {where[0]} batch {where[1]} (loss {loss}, gradient norm {grad_norm}); the "
            f"checkpoint of step {stopped} holds the last finite parameters"
        )

    stop_signal: list[str] = []
    handlers = {}

    def on_signal(signum, frame):
        stop_signal.append(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            handlers[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread
            pass

    step = int(state.step)
    every_ckpt = checkpoint_interval(config.checkpoint, total_steps)
    log_every = config.train.log_every
    bar = ProgressBar(total_steps, step, config.train.progress and jax.process_index() == 0, log_every)
    sign = 1.0 if config.eval.mode == "max" else -1.0
    evals_without_improvement = 0
    t_start, n_start = time.perf_counter(), step
    counter = itertools.count(step)
    in_flight = InFlight(start=step)  # the loop runs at most IN_FLIGHT steps ahead of the device

    def prepare(batch):  # runs in the prefetch thread, in step order
        index = next(counter)
        in_flight.wait_before(index)
        if transform_batch is not None:
            batch = transform_batch(index, batch)
        return place(batch)

    try:
        iterator = stream.iterate(position, place=prepare)
        while step < total_steps:
            pos, batch = next(iterator)
            state, metrics = step_fn(state, rest, batch)
            in_flight.dispatched(step, metrics)  # not state: it is donated to the next step
            step += 1
            positions[step] = pos
            position = stream.next_position(pos)
            bar.advance(step)
            log_due = step % log_every == 0 or step == total_steps
            eval_due = evaluate is not None and ((config.eval.every > 0 and step % config.eval.every == 0) or step == total_steps)
            ckpt_due = bool(every_ckpt) and step % every_ckpt == 0
            if not (log_due or eval_due or ckpt_due or stop_signal):
                continue
            # a read point: the host waits for the device here, and only here
            stats = jax.device_get(state.stats)
            stop_if_frozen(stats)
            if log_due:
                report_nonfinite(stats)
                count = int(stats.count)
                means = {k: (float(v) / count if count else None) for k, v in zip(SUMMED, stats.sums)}
                throughput = bar.update(step, step * config.train.batch_size, {"loss": means["loss"], "acc": means["accuracy"]})
                metrics_log.write({"step": step, "split": "train", **means, "cmp_per_s": throughput})
                if on_log is not None:
                    on_log(step, means)
                state = state._replace(stats=reset_stats(state.stats))
                positions.clear()
            if eval_due:
                groups = evaluate(state.params, rest)
                result.eval_metrics.append({"step": step, "groups": groups})
                overall = groups[0]
                metrics_log.write({"step": step, "split": "eval", "accuracy": overall["accuracy"], "nll": overall["nll"]})
                value = overall["nll"] if config.eval.metric in ("nll", "loss") else overall["accuracy"]
                # ties go to the newer step, as in Orbax's keep-best policy
                improved = best is None or sign * value >= sign * best["value"]
                strictly = best is None or sign * value > sign * best["value"]
                evals_without_improvement = 0 if strictly else evals_without_improvement + 1
                if improved:
                    best = {"step": step, "metric": config.eval.metric, "value": value}
                save(step, value)
                if improved and jax.process_index() == 0:
                    checkpoints.finalize()
                    write_json_atomic(run_dir / "best.json", best)
                patience = config.eval.early_stopping_patience
                if patience and evals_without_improvement >= patience:
                    result.stopped_by = f"early stopping at step {step}"
                    break
            elif ckpt_due:
                save(step)
            if stop_signal:
                save(step)
                result.stopped_by = f"{stop_signal[0]} at step {step} (checkpoint saved)"
                print(f"{stop_signal[0]}: saved step {step} to {run_dir}; resume with --resume {run_dir}", file=sys.stderr)
                break
        else:
            save(step)
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - t_start
        result.throughput = (step - n_start) * config.train.batch_size / max(elapsed, 1e-9)
    finally:
        in_flight.close()
        bar.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    checkpoints.finalize()
    nnx.update(net, nnx.merge_state(state.params, rest))
    result.steps = step
    result.best_step = best["step"] if best else None
    result.best_metric = best["value"] if best else None
    result.compilations = step_fn.compilations
    if jax.process_index() == 0:
        summary = {
            "steps": step,
            "stopped_by": result.stopped_by,
            "best": best,
            "compilations": result.compilations,
            "throughput_cmp_per_s": result.throughput,
            "final_eval": result.eval_metrics[-1] if result.eval_metrics else None,
            "nonfinite_steps": len(result.nonfinite_steps),
        }
        write_json_atomic(run_dir / "summary.json", summary)
        if result.eval_metrics and config.train.progress:
            from rich.console import Console

            Console(stderr=True).print(group_table(result.eval_metrics[-1]["groups"], f"held-out metrics at step {step}"))
    return model, result
