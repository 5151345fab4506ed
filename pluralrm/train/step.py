"""The jitted train and eval steps, as pure functions of one state pytree.

Following Flax's NNX performance guide, the model is split once into (graphdef, trainable
params, the rest) and the step is a plain ``jax.jit`` of a pure function, with the state
donated. ``TrainState`` holds everything that changes: params, optimizer state and the step
counter. Randomness (group dropout) comes from ``fold_in(key(seed), step)``, so no RNG state is
needed to resume exactly.

A step whose loss or gradients are not finite is not applied: the returned state equals the
input state (but for the step counter) and ``metrics["finite"]`` is False.

The loop reads nothing back per step (a read blocks the host until the step is done, so the
next batch's preparation and transfer could not overlap it). What it needs between log points
lives in ``TrainState.stats`` (``LoopStats``), updated inside the jitted step: running sums of
the finite steps' metrics, the non-finite streak and the first non-finite steps since the last
read. When the streak reaches ``nonfinite_patience`` the step records where and *freezes*: later
steps change nothing (not even the step counter) until the loop reads the stats at its next
log point, stops, and saves the frozen state, which is exactly the state of the step where the
streak was completed.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from pluralrm import losses
from pluralrm.models.heads import ValuesHead
from pluralrm.models.net import RewardNet, preference_probability
from pluralrm.train.config import LossConfig, OptimizerConfig, ScheduleConfig

NONFINITE_SLOTS = 16  # non-finite steps recorded per read (more are counted, not detailed)
SUMMED = ("loss", "reg", "accuracy", "grad_norm")


class LoopStats(NamedTuple):
    """What the loop needs between its reads, kept on the device (all scalars unless said).

    ``sums``: [len(SUMMED)] float32 sums over the finite steps since the last read (``count``
    of them); ``streak``: non-finite steps in a row; ``nonfinite_count``: non-finite steps since
    the last read, the first ``NONFINITE_SLOTS`` of them in ``nonfinite_step`` [S] int32 and
    ``nonfinite_values`` [S, 2] float32 (total loss, gradient norm); ``last_nonfinite`` [2] the
    latest one's; ``stopped_at``: the step that completed a streak of ``patience`` (0: none).
    """

    sums: jax.Array
    count: jax.Array
    streak: jax.Array
    nonfinite_count: jax.Array
    nonfinite_step: jax.Array
    nonfinite_values: jax.Array
    last_nonfinite: jax.Array
    stopped_at: jax.Array


def new_stats(streak: int = 0) -> LoopStats:
    """Empty stats (``streak`` carried over from a checkpoint)."""
    i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    return LoopStats(
        sums=jnp.zeros(len(SUMMED), jnp.float32), count=i32(0), streak=i32(streak), nonfinite_count=i32(0),
        nonfinite_step=jnp.zeros(NONFINITE_SLOTS, jnp.int32), nonfinite_values=jnp.zeros((NONFINITE_SLOTS, 2), jnp.float32),
        last_nonfinite=jnp.zeros(2, jnp.float32), stopped_at=i32(0),
    )


def reset_window(stats: LoopStats) -> LoopStats:
    """The stats after a read: sums and the non-finite record emptied; streak and stop kept."""
    fresh = new_stats()
    return fresh._replace(streak=stats.streak, stopped_at=stats.stopped_at, last_nonfinite=stats.last_nonfinite)


def stats_to_json(stats: LoopStats) -> dict:
    """Host stats as JSON (saved in a checkpoint's meta so a resumed window continues exactly)."""
    import numpy as np

    return {k: np.asarray(v).tolist() for k, v in stats._asdict().items()}


def stats_from_json(data: dict) -> LoopStats:
    template = new_stats()
    return LoopStats(**{k: jnp.asarray(data[k], getattr(template, k).dtype) for k in LoopStats._fields})


class TrainState(NamedTuple):
    params: Any  # nnx.State of trainable Params
    opt_state: Any
    step: jax.Array  # int32 scalar: micro-batches done
    stats: LoopStats | None = None  # None: fresh stats are made by the first step


def make_schedule(opt: OptimizerConfig, sched: ScheduleConfig, total_updates: int) -> optax.Schedule:
    """Linear warmup to ``lr``, then cosine / linear decay to ``min_lr_ratio * lr`` (or constant)."""
    warmup = min(sched.warmup_steps, max(total_updates - 1, 0))
    end = opt.lr * sched.min_lr_ratio
    if sched.decay == "constant":
        decay = optax.constant_schedule(opt.lr)
    elif sched.decay == "linear":
        decay = optax.linear_schedule(opt.lr, end, max(total_updates - warmup, 1))
    else:
        decay = optax.cosine_decay_schedule(opt.lr, max(total_updates - warmup, 1), alpha=sched.min_lr_ratio)
    if warmup == 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, opt.lr, warmup), decay], [warmup])


def make_optimizer(opt: OptimizerConfig, sched: ScheduleConfig, total_updates: int) -> optax.GradientTransformation:
    """Clipping + AdamW/Adam/SGD with the schedule; gradient accumulation via ``MultiSteps``."""
    lr = make_schedule(opt, sched, total_updates)
    if opt.name == "adamw":
        # decay matrices only: biases, norms' scales and 1-D readouts are left alone
        mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)  # noqa: E731
        base = optax.adamw(lr, opt.b1, opt.b2, opt.eps, weight_decay=opt.weight_decay, mask=mask)
    elif opt.name == "adam":
        base = optax.adam(lr, opt.b1, opt.b2, opt.eps)
    else:
        base = optax.sgd(lr, momentum=opt.b1)
    chain = optax.chain(optax.clip_by_global_norm(opt.grad_clip), base) if opt.grad_clip > 0 else base
    if opt.accumulation_steps > 1:
        return optax.MultiSteps(chain, every_k_schedule=opt.accumulation_steps)
    return chain


def _cast(tree: Any, dtype) -> Any:
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def pair_losses(net: RewardNet, batch: dict, loss_cfg: LossConfig, group_ids, annotator_ids,
                features: tuple[jax.Array, jax.Array] | None = None) -> tuple[jax.Array, jax.Array]:
    """Per-example losses ``[B]`` and P(chosen ≻ rejected) ``[B]`` for a batch.

    ``features``: the chosen and rejected backbone features ``[B, D]`` when already computed.
    """
    f_c, f_r = net.pair_features(batch["inputs"]) if features is None else features
    pg = net.head.pair_gap(f_c, f_r, group_ids, annotator_ids)
    pg = pg._replace(
        gap=pg.gap.astype(jnp.float32),
        log_weights=None if pg.log_weights is None else pg.log_weights.astype(jnp.float32),
    )
    label = batch["label"]
    if pg.log_weights is not None:
        per_example = losses.mixture_bradley_terry(pg.gap, pg.log_weights, label)
    else:
        per_example = losses.pair_loss(pg.gap, label, loss_cfg.type, loss_cfg.margin, loss_cfg.tie_param)
    return per_example, preference_probability(pg)


def value_label_loss(head: ValuesHead, f_chosen: jax.Array, f_rejected: jax.Array, batch: dict) -> jax.Array:
    """Mean squared error of the values head's scores against per-response value labels.

    Averaged over the labelled responses (``values_mask``) and the K values, each response
    weighted by its comparison's weight; responses without labels contribute nothing.
    """
    scores = jnp.stack([head.value_scores(f_chosen), head.value_scores(f_rejected)], axis=1)  # [B, 2, K]
    scores = scores.astype(jnp.float32)
    w = batch["weight"][:, None] * batch["values_mask"]  # [B, 2]
    sq = jnp.sum((scores - batch["values"]) ** 2, axis=-1)  # [B, 2]
    return jnp.sum(w * sq) / jnp.maximum(jnp.sum(w) * scores.shape[-1], 1.0)


class CountedJit:
    """``jax.jit(fn, **options)`` that counts its traces: each new input shape or dtype is one
    trace and one compilation (``compilations``), without reading JAX's private cache."""

    def __init__(self, fn, **options):
        self.compilations = 0

        def traced(*args):
            self.compilations += 1
            return fn(*args)

        self._jitted = jax.jit(traced, **options)

    def __call__(self, *args):
        return self._jitted(*args)


def make_train_step(graphdef, tx: optax.GradientTransformation, loss_cfg: LossConfig,
                    seed: int, group_dropout: float, dtype: str, patience: int = 0):
    """Builds ``step(state, rest, batch) -> (state, metrics)``, jitted with the state donated
    (a ``CountedJit``: ``step.compilations`` says how often it compiled).

    ``rest`` (non-trainable variables: frozen layers, the group table) is passed each call, not
    differentiated. ``metrics`` are this step's values (device arrays; the loop does not read
    them: it reads ``state.stats``). ``patience`` > 0: non-finite steps in a row that freeze the
    state (see the module docstring).
    """
    compute_dtype = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    base_key = jax.random.key(seed)

    def loss_fn(params, rest, batch, key):
        net = nnx.merge(graphdef, _cast(params, compute_dtype), rest)
        group_ids, annotator_ids = batch["group_ids"], batch["annotator_ids"]
        if group_dropout > 0:
            k1, k2 = jax.random.split(key)
            keep = jax.random.bernoulli(k1, 1.0 - group_dropout, group_ids.shape)
            group_ids = jnp.where(keep, group_ids, 0)
            keep_a = jax.random.bernoulli(k2, 1.0 - group_dropout, annotator_ids.shape)
            annotator_ids = jnp.where(keep_a, annotator_ids, 0)
        features = net.pair_features(batch["inputs"])  # one backbone pass for both losses
        per_example, prob = pair_losses(net, batch, loss_cfg, group_ids, annotator_ids, features)
        data_loss = losses.weighted_mean(per_example, batch["weight"])
        reg = net.head.regularization().astype(jnp.float32)
        total = data_loss + reg
        batch_penalty = getattr(net.head, "batch_penalty", None)  # DPL heads' training-only terms
        if batch_penalty is not None:
            total = total + batch_penalty(*features, group_ids, annotator_ids, batch["weight"]).astype(jnp.float32)
        if "values" in batch and isinstance(net.head, ValuesHead):
            total = total + loss_cfg.value_loss_weight * value_label_loss(net.head, *features, batch)
        hard = batch["label"] != 0.5
        correct = jnp.where(hard, (prob > 0.5) == (batch["label"] > 0.5), False)
        accuracy = jnp.sum(correct * batch["weight"]) / jnp.maximum(jnp.sum(hard * batch["weight"]), 1.0)
        return total, {"loss": data_loss, "reg": reg, "accuracy": accuracy}

    def step(state: TrainState, rest, batch):
        key = jax.random.fold_in(base_key, state.step)
        (total, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, rest, batch, key)
        updates, new_opt = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(total) & jnp.isfinite(grad_norm)
        stats = new_stats() if state.stats is None else state.stats
        running = stats.stopped_at == 0
        apply = finite & running
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(apply, a, b), new, old)  # noqa: E731
        new_step = jnp.where(running, state.step + 1, state.step)
        metrics = dict(aux, total=total, grad_norm=grad_norm, finite=finite)
        new_state = TrainState(keep(new_params, state.params), keep(new_opt, state.opt_state), new_step,
                               _update_stats(stats, metrics, new_step, running, patience))
        return new_state, metrics

    return CountedJit(step, donate_argnums=0)


def _update_stats(stats: LoopStats, metrics: dict, step: jax.Array, running: jax.Array, patience: int) -> LoopStats:
    finite = metrics["finite"] & running
    bad = ~metrics["finite"] & running
    values = jnp.stack([metrics[k].astype(jnp.float32) for k in SUMMED])
    slot = jnp.minimum(stats.nonfinite_count, NONFINITE_SLOTS - 1)
    record = bad & (stats.nonfinite_count < NONFINITE_SLOTS)
    pair = jnp.stack([metrics["total"], metrics["grad_norm"]]).astype(jnp.float32)
    streak = jnp.where(running, jnp.where(metrics["finite"], 0, stats.streak + 1), stats.streak)
    stop_now = running & (patience > 0) & (streak >= max(patience, 1))
    return LoopStats(
        sums=stats.sums + jnp.where(finite, values, 0.0),
        count=stats.count + finite.astype(jnp.int32),
        streak=streak,
        nonfinite_count=stats.nonfinite_count + bad.astype(jnp.int32),
        nonfinite_step=stats.nonfinite_step.at[slot].set(jnp.where(record, step, stats.nonfinite_step[slot])),
        nonfinite_values=stats.nonfinite_values.at[slot].set(jnp.where(record, pair, stats.nonfinite_values[slot])),
        last_nonfinite=jnp.where(bad, pair, stats.last_nonfinite),
        stopped_at=jnp.where(stop_now, step, stats.stopped_at),
    )


def make_eval_step(graphdef, loss_cfg: LossConfig, dtype: str = "float32", out_sharding=None):
    """Builds ``accumulate(params, rest, batch, sums) -> sums``: the batch's per-cell sums
    (``pluralrm.train.evaluate.cell_sums``; ``batch["cell"]`` [B] int32, -1 for padding)
    added to ``sums`` [5, C] on the device, so a whole evaluation reads back one small array.
    ``out_sharding``: where the sums live (replicated on the mesh, so every process can read
    them)."""
    from pluralrm.train.evaluate import cell_sums

    compute_dtype = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32

    def accumulate(params, rest, batch, sums):
        net = nnx.merge(graphdef, _cast(params, compute_dtype), rest)
        _, prob = pair_losses(net, batch, loss_cfg, batch["group_ids"], batch["annotator_ids"])
        return sums + cell_sums(prob.astype(jnp.float32), batch["label"], batch["weight"], batch["cell"], sums.shape[1])

    return jax.jit(accumulate, donate_argnums=3, out_shardings=out_sharding)
