"""The jitted train and eval steps, as pure functions of one state pytree.

Following Flax's NNX performance guide, the model is split once into (graphdef, trainable
params, the rest) and the step is a plain ``jax.jit`` of a pure function, with the state
donated. ``TrainState`` holds everything that changes: params, optimizer state and the step
counter. Randomness (group dropout) comes from ``fold_in(key(seed), step)``, so no RNG state is
needed to resume exactly.

A step whose loss or gradients are not finite is not applied: the returned state equals the
input state and ``metrics["finite"]`` is False; the loop logs it and counts the streak.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from pluralrm import losses
from pluralrm.models.heads import ValuesHead
from pluralrm.models.reward_model import RewardNet, preference_probability
from pluralrm.train.config import LossConfig, OptimizerConfig, ScheduleConfig


class TrainState(NamedTuple):
    params: Any  # nnx.State of trainable Params
    opt_state: Any
    step: jax.Array  # int32 scalar: micro-batches done


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


def make_train_step(graphdef, rest, tx: optax.GradientTransformation, loss_cfg: LossConfig,
                    seed: int, group_dropout: float, dtype: str):
    """Builds ``step(state, batch) -> (state, metrics)``, jitted with the state donated.

    ``rest`` (non-trainable variables: frozen layers, the group table) is closed over as a
    constant argument passed each call, not differentiated.
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
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)  # noqa: E731
        new_state = TrainState(keep(new_params, state.params), keep(new_opt, state.opt_state), state.step + 1)
        metrics = dict(aux, total=total, grad_norm=grad_norm, finite=finite)
        return new_state, metrics

    return jax.jit(step, donate_argnums=0)


def make_eval_step(graphdef, loss_cfg: LossConfig, dtype: str = "float32"):
    """Builds ``evaluate(params, rest, batch) -> (prob [B], loss [B])`` (no dropout, known ids)."""
    compute_dtype = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32

    def evaluate(params, rest, batch):
        net = nnx.merge(graphdef, _cast(params, compute_dtype), rest)
        per_example, prob = pair_losses(net, batch, loss_cfg, batch["group_ids"], batch["annotator_ids"])
        return prob, per_example

    return jax.jit(evaluate)
