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
the non-finite streak, and continues; since batches are a function of (seed, position) and
randomness of (seed, step), a resumed run ends bitwise equal to an uninterrupted one.
SIGTERM/SIGINT stop the loop after the current step and save it first.
"""
from __future__ import annotations

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

from pluralrm.configs import to_dict
from pluralrm.data.schema import GroupSchema
from pluralrm.errors import CheckpointError, ConfigError, PluralRMError
from pluralrm.models.reward_model import RewardModel, write_model_metadata
from pluralrm.train import sharding
from pluralrm.train.batches import BatchStream, encode_comparisons, eval_batches
from pluralrm.train.checkpoint import RunCheckpoints, abstract_tree, write_json_atomic
from pluralrm.train.config import TrainConfig, config_to_yaml
from pluralrm.train.evaluate import group_metrics
from pluralrm.train.monitor import MetricsLog, ProgressBar, group_table
from pluralrm.train.step import TrainState, make_eval_step, make_optimizer, make_train_step

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
    """A resumed run must use the same config (train.steps may grow)."""
    import yaml

    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        raise CheckpointError(f"{run_dir} has checkpoints but no config.yaml; cannot resume safely")
    saved = yaml.safe_load(saved_path.read_text())
    now = to_dict(config)
    saved.get("train", {}).pop("steps", None)
    now["train"].pop("steps", None)
    for d in (saved, now):
        d.get("train", {}).pop("progress", None)
        d.pop("run_dir", None)
    if saved != now:
        diffs = _diff_keys(saved, now)
        raise ConfigError(
            f"cannot resume {run_dir}: the config differs from the saved one at {diffs[:5]}; "
            "resume with the saved config or start a new run_dir"
        )


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def fit(
    config: TrainConfig,
    train: Any,
    eval_data: Any | None = None,
    resume: bool = False,
    transform_batch: Callable[[int, dict], dict] | None = None,
) -> tuple[RewardModel, TrainResult]:
    """Trains a reward model on a ComparisonDataset.

    Args:
      config: the TrainConfig (``config.run_dir`` is where everything is written).
      train: training comparisons (``datasets.Dataset``).
      eval_data: held-out comparisons for evaluation and best-checkpoint selection.
      resume: continue from the newest good checkpoint in ``run_dir``. Without it, a run
        directory that already has checkpoints is refused (nothing is overwritten).
      transform_batch: optional ``(step, batch) -> batch`` applied to each training batch
        before it is sent to the devices (augmentation, or fault injection in tests).

    Returns:
      The model with its final parameters (``RewardModel.load(run_dir)`` gives the best) and a
      TrainResult.
    """
    run_dir = Path(config.run_dir).absolute()
    sharding.initialize_distributed(config.mesh)
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch_size(config.train.batch_size, mesh)
    if config.eval.batch_size % mesh.shape["data"]:
        raise ConfigError(f"eval.batch_size={config.eval.batch_size} must be divisible by {mesh.shape['data']}")

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
    metrics_log = MetricsLog(run_dir)
    try:
        outcome = _train_loop(config, model, train, eval_data, run_dir, mesh, checkpoints, metrics_log, transform_batch, ckpt_exists)
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


def _train_loop(config, model, train, eval_data, run_dir, mesh, checkpoints, metrics_log, transform_batch, resuming):
    net = model.net
    graphdef, params, rest = nnx.split(net, net.trainable, ...)
    cfg_opt = config.optimizer
    total_updates = config.train.steps
    total_steps = total_updates * cfg_opt.accumulation_steps
    tx = make_optimizer(cfg_opt, config.schedule, total_updates)
    params = sharding.shard_state(params, mesh, config.mesh)
    rest = sharding.shard_state(rest, mesh, config.mesh)
    opt_state = jax.jit(tx.init)(params)
    state = sharding.commit_to_mesh(TrainState(params, opt_state, jax.numpy.zeros((), jax.numpy.int32)), mesh)
    position, streak, best = (0, 0), 0, None
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
        _, params, rest = nnx.split(net, net.trainable, ...)
        params = sharding.shard_state(params, mesh, config.mesh)
        rest = sharding.shard_state(rest, mesh, config.mesh)
        state = sharding.commit_to_mesh(TrainState(params, items["opt"]["opt_state"], items["opt"]["step"]), mesh)
        meta = items["meta"]
        position, streak, best = tuple(meta["position"]), meta["nonfinite_streak"], meta.get("best")
        metrics_log.truncate_after(step)
        note = f"resumed {run_dir} at step {step}"
        result.notes.append(note)
        print(note, file=sys.stderr)

    local_train = train.shard(jax.process_count(), jax.process_index(), contiguous=True) if jax.process_count() > 1 else train
    value_labels = config.model.head.type == "values"
    num_values = model.net.head.num_values if value_labels else None
    encoded = encode_comparisons(local_train, model.schema, model.annotators, value_labels, num_values)
    local_batch = config.train.batch_size // jax.process_count()
    stream = BatchStream(encoded, model.featurizer, local_batch, config.train.seed)
    eval_encoded = (
        encode_comparisons(eval_data, model.schema, model.annotators, value_labels, num_values) if eval_data is not None and len(eval_data) else None
    )
    step_fn = make_train_step(graphdef, rest, tx, config.loss, config.train.seed, config.train.group_dropout, config.train.dtype)
    eval_fn = make_eval_step(graphdef, config.loss, config.train.dtype)

    def evaluate(params) -> list[dict]:
        probs, rows_all = [], []
        for rows, batch in eval_batches(eval_encoded, model.featurizer, config.eval.batch_size):
            prob, _ = eval_fn(params, rest, sharding.put_batch(batch, mesh))
            probs.append(np.asarray(prob)[: len(rows)])
            rows_all.append(rows)
        prob = np.concatenate(probs)
        rows = np.concatenate(rows_all)
        groups = group_metrics(prob, eval_encoded.label[rows], eval_encoded.weight[rows], eval_encoded.group_ids[rows], model.schema)
        return [g.to_dict() for g in groups]

    def checkpoint_meta(step, metric=None):
        return {"step": step, "position": list(position), "nonfinite_streak": streak, "best": best, "metric": metric}

    last_saved = [-1]

    def save(step, metric=None):
        if last_saved[0] == step:
            return
        last_saved[0] = step
        model_tree = nnx.merge_state(state.params, rest).to_pure_dict()
        checkpoints.save(step, model_tree, {"opt_state": state.opt_state, "step": state.step}, checkpoint_meta(step, metric), metric)

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
    bar = ProgressBar(total_steps, step, config.train.progress and jax.process_index() == 0, config.train.log_every)
    sign = 1.0 if config.eval.mode == "max" else -1.0
    evals_without_improvement = 0
    throughput, t_start, n_start = 0.0, time.perf_counter(), step
    try:
        iterator = stream.iterate(position)
        while step < total_steps:
            pos, batch = next(iterator)
            if transform_batch is not None:
                batch = transform_batch(step, batch)
            state, metrics = step_fn(state, rest, sharding.put_batch(batch, mesh))
            step += 1
            position = stream.next_position(pos)
            host = {k: float(v) for k, v in jax.device_get(metrics).items()}
            if not host["finite"]:
                streak += 1
                record = {"step": step, "split": "nonfinite", "epoch": pos[0], "batch": pos[1], "loss": host["total"], "grad_norm": host["grad_norm"]}
                result.nonfinite_steps.append(record)
                metrics_log.write(record)
                log.warning("step %d (epoch %d, batch %d): non-finite loss or gradient; update skipped", step, *pos)
                if streak >= config.train.nonfinite_patience:
                    save(step)
                    raise TrainingStopped(
                        f"stopped at step {step}: {streak} non-finite steps in a row, the last on "
                        f"epoch {pos[0]} batch {pos[1]} (loss {host['total']}, gradient norm "
                        f"{host['grad_norm']}); the checkpoint of step {step} holds the last finite parameters"
                    )
            else:
                streak = 0
            if step % config.train.log_every == 0 or step == total_steps:
                throughput = bar.update(step, step * config.train.batch_size, {"loss": host["loss"], "acc": host["accuracy"]})
                metrics_log.write({"step": step, "split": "train", **{k: host[k] for k in ("loss", "reg", "accuracy", "grad_norm")}, "cmp_per_s": throughput})
            eval_due = eval_encoded is not None and config.eval.every > 0 and step % config.eval.every == 0
            if eval_due or (eval_encoded is not None and step == total_steps):
                groups = evaluate(state.params)
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
            elif config.checkpoint.every and step % config.checkpoint.every == 0:
                save(step)
            if stop_signal:
                save(step)
                result.stopped_by = f"{stop_signal[0]} at step {step} (checkpoint saved)"
                print(f"{stop_signal[0]}: saved step {step} to {run_dir}; resume with --resume", file=sys.stderr)
                break
        else:
            save(step)
        elapsed = time.perf_counter() - t_start
        result.throughput = (step - n_start) * config.train.batch_size / max(elapsed, 1e-9)
    finally:
        bar.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    checkpoints.finalize()
    nnx.update(net, nnx.merge_state(state.params, rest))
    result.steps = step
    result.best_step = best["step"] if best else None
    result.best_metric = best["value"] if best else None
    result.compilations = step_fn._cache_size()
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
