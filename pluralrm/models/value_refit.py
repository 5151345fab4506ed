"""Refitting a values head's group weights with its value scores frozen.

With the value scores v fixed, the part of the training objective that involves the weights
θ = (w_0, Ω) is

    L(θ) = Σ_i c_i ω_i E_m[ℓ(w_{g_i ⊙ m}(θ) · Δv_i, y_i)] / Σ_i c_i ω_i + λ Σ_a ‖Ω_a‖²,

with Δv_i = v(chosen_i) − v(rejected_i), ω_i the row weights, c_i resampling counts (1 for the
data as given), y_i the labels, ℓ the run's pair loss, λ the head's ``shrinkage``, and m the
group-dropout mask the trainer draws (each attribute replaced by *unknown* with probability p):
the expectation over the 2^A masks is taken exactly, so w_0 keeps its meaning (the reward of a
judge whose group is unknown). For the Bradley–Terry loss L is a ridge-penalised logistic
loss of a linear function of θ: convex, so damped Newton from the trained weights converges in a
few steps. The Hessian is assembled per (group cell, mask) in the K-dimensional weight space
and mapped to θ through the 0/1 incidence of cells on parameter blocks, so a step costs
O(N·K²) however many groups there are.

This is what ``pluralrm.explain.group_value_weights`` bootstraps: many refits, one per
resample of annotators (``annotator_resample_counts``), over one pass of the backbone.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from pluralrm import losses
from pluralrm.models.heads import ValuesHead

Array = jax.Array


@dataclass(frozen=True)
class WeightProblem:
    """The weight-refit problem of one values head on one dataset (see module docstring).

    Attributes:
      delta: ``[N, K]`` value-score differences v(chosen) − v(rejected).
      row_cell: ``[N]`` index of each row's group cell in ``cells``.
      cells: ``[C, A]`` the distinct group ids of the rows.
      label: ``[N]`` P(chosen ≻ rejected) labels.  weight: ``[N]`` row weights.
      incidence: ``[C·M, P]`` 0/1: parameter block j enters the weights of (cell, mask);
        block 0 is w_0, the others are the Ω rows ``blocks`` names.
      mask_prob: ``[M]`` probability of each dropout mask.
      blocks: ``[(attribute, id)]`` for blocks 1..P−1.
    """

    delta: np.ndarray
    row_cell: np.ndarray
    cells: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    incidence: np.ndarray
    mask_prob: np.ndarray
    blocks: tuple[tuple[int, int], ...]


def weight_problem(delta: np.ndarray, group_ids: np.ndarray, label: np.ndarray, weight: np.ndarray,
                   group_dropout: float) -> WeightProblem:
    """Builds the refit problem from per-row score differences ``[N, K]`` and ids ``[N, A]``."""
    group_ids = np.asarray(group_ids, np.int32).reshape(len(delta), -1)
    cells, row_cell = np.unique(group_ids, axis=0, return_inverse=True)
    num_attributes = cells.shape[1]
    masks = np.array(list(itertools.product((1, 0), repeat=num_attributes)), np.int32).reshape(-1, num_attributes)
    dropped = (masks == 0).sum(axis=1)
    mask_prob = group_dropout**dropped * (1.0 - group_dropout) ** (num_attributes - dropped)
    blocks = sorted({(a, int(i)) for a in range(num_attributes) for i in cells[:, a] if i > 0})
    index = {b: j + 1 for j, b in enumerate(blocks)}
    incidence = np.zeros((len(cells), len(masks), len(blocks) + 1))
    incidence[:, :, 0] = 1.0
    for c, cell in enumerate(cells):
        for m, keep in enumerate(masks):
            for a in range(num_attributes):
                if keep[a] and cell[a] > 0:
                    incidence[c, m, index[(a, int(cell[a]))]] = 1.0
    return WeightProblem(
        delta=np.asarray(delta, np.float64),
        row_cell=row_cell.reshape(-1).astype(np.int32),
        cells=cells,
        label=np.asarray(label, np.float64),
        weight=np.asarray(weight, np.float64),
        incidence=incidence.reshape(len(cells) * len(masks), -1),
        mask_prob=mask_prob,
        blocks=tuple(blocks),
    )


def head_parameters(head: ValuesHead, problem: WeightProblem) -> np.ndarray:
    """The head's current weights as the problem's parameter blocks ``[P, K]``."""
    tables = [np.asarray(t.embedding[...], np.float64) for t in head.offsets.tables]
    rows = [np.asarray(head.w0[...], np.float64)] + [tables[a][i] for a, i in problem.blocks]
    return np.stack(rows)


def _loss_derivatives(gap: Array, label: Array, kind: str, margin: float, tie_param) -> tuple[Array, Array]:
    """ℓ' and ℓ'' of the elementwise pair loss at ``gap`` (any shape)."""

    def first(g):
        return jax.grad(lambda x: jnp.sum(losses.pair_loss(x, label, kind, margin, tie_param)))(g)

    return first(gap), jax.grad(lambda x: jnp.sum(first(x)))(gap)


def newton_refit(problem: WeightProblem, start: np.ndarray, counts: np.ndarray, shrinkage: float,
                 loss: str = "bradley_terry", margin: float = 0.0, tie_param: float | None = None,
                 steps: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Minimises L(θ) (module docstring) once per row of ``counts`` by damped Newton.

    Args:
      problem: from ``weight_problem``.
      start: ``[P, K]`` initial blocks (the trained weights: ``head_parameters``).
      counts: ``[B, N]`` resampling counts c (ones for the data as given).
      shrinkage: λ, the L2 penalty on the offsets (not on w_0).
      loss, margin, tie_param: the pair loss the model was trained with.
      steps: Newton steps (each damped by 1/(1 + decrement) while the decrement exceeds ¼).

    Returns:
      ``(theta [B, P, K], gradient_norm [B])``: fitted blocks, and the norm of L's gradient at
      them (a convergence check; ~1e-8 when converged).
    """
    delta = jnp.asarray(problem.delta)
    row_cell = jnp.asarray(problem.row_cell)
    label = jnp.asarray(problem.label)
    incidence = jnp.asarray(problem.incidence)  # [CM, P]
    mask_prob = jnp.asarray(problem.mask_prob)
    num_cells, num_masks = len(problem.cells), len(problem.mask_prob)
    num_blocks, k = start.shape
    size = num_blocks * k
    penalty = np.full((num_blocks, k), 2.0 * shrinkage)
    penalty[0] = 0.0
    penalty = jnp.asarray(penalty.reshape(-1))
    outer = delta[:, :, None] * delta[:, None, :]  # [N, K, K]

    def grad_hess(theta, row_w):
        weights = (incidence @ theta).reshape(num_cells, num_masks, k)  # [C, M, K]
        gap = jnp.einsum("nmk,nk->nm", weights[row_cell], delta)  # [N, M]
        d1, d2 = _loss_derivatives(gap, jnp.broadcast_to(label[:, None], gap.shape), loss, margin, tie_param)
        coef = row_w[:, None] * mask_prob[None, :]  # [N, M]
        g_cell = jax.ops.segment_sum((coef * d1)[:, :, None] * delta[:, None, :], row_cell, num_cells)  # [C, M, K]
        h_cell = jax.ops.segment_sum(jnp.einsum("nm,nkl->nmkl", coef * d2, outer), row_cell, num_cells)
        g_cell = g_cell.reshape(num_cells * num_masks, k)
        h_cell = h_cell.reshape(num_cells * num_masks, k, k)
        grad = (incidence.T @ g_cell).reshape(-1) + penalty * theta.reshape(-1)
        hess = jnp.einsum("ci,cj,ckl->ikjl", incidence, incidence, h_cell).reshape(size, size)
        return grad, hess + jnp.diag(penalty) + 1e-10 * jnp.eye(size)

    def fit_one(row_counts):
        row_w = row_counts * jnp.asarray(problem.weight)
        row_w = row_w / jnp.maximum(jnp.sum(row_w), 1e-12)

        def step(theta, _):
            grad, hess = grad_hess(theta, row_w)
            direction = jnp.linalg.solve(hess, grad)
            decrement = jnp.sqrt(jnp.maximum(grad @ direction, 0.0))
            t = jnp.where(decrement > 0.25, 1.0 / (1.0 + decrement), 1.0)
            return theta - t * direction.reshape(theta.shape), None

        theta, _ = jax.lax.scan(step, jnp.asarray(start, jnp.float64), None, length=steps)
        grad, _ = grad_hess(theta, row_w)
        return theta, jnp.linalg.norm(grad)

    with jax.enable_x64(True):
        theta, gnorm = jax.jit(lambda c: jax.lax.map(fit_one, c))(jnp.asarray(counts, jnp.float64))
        return np.asarray(theta), np.asarray(gnorm)


def group_weights(problem: WeightProblem, theta: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """Weights ``[B, G, K]`` of groups ``group_ids [G, A]`` from fitted blocks ``theta [B, P, K]``.

    A group's weights are w_0 plus the offsets of its known attribute values; a value absent
    from the refit data keeps no offset (its block was not fitted), which is what the refit
    says about it: nothing.
    """
    index = {b: j + 1 for j, b in enumerate(problem.blocks)}
    group_ids = np.asarray(group_ids).reshape(len(group_ids), -1)
    select = np.zeros((len(group_ids), theta.shape[1]))
    select[:, 0] = 1.0
    for g, ids in enumerate(group_ids):
        for a, i in enumerate(ids):
            if (a, int(i)) in index:
                select[g, index[(a, int(i))]] = 1.0
    return np.einsum("gp,bpk->bgk", select, theta)


def annotator_resample_counts(annotators: Sequence[str], strata: np.ndarray, num: int,
                              rng: np.random.Generator) -> np.ndarray:
    """Row counts ``[num, N]`` of a stratified cluster bootstrap over annotators.

    Each resample draws, within each stratum (group cell), as many annotators as it has, with
    replacement, and takes all their rows; a row without an annotator id is its own cluster.
    An annotator's stratum is that of their first row.
    """
    annotators = np.asarray(list(annotators), dtype=object)
    n = len(annotators)
    unknown = annotators == ""
    names = np.where(unknown, np.array([f"\x00row{i}" for i in range(n)], dtype=object), annotators)
    clusters, first, row_cluster = np.unique(names.astype(str), return_index=True, return_inverse=True)
    cluster_stratum = np.asarray(strata)[first]
    counts = np.zeros((num, len(clusters)))
    for s in np.unique(cluster_stratum):
        members = np.flatnonzero(cluster_stratum == s)
        draws = rng.integers(0, len(members), size=(num, len(members)))
        np.add.at(counts, (np.arange(num)[:, None], members[draws]), 1.0)
    return counts[:, row_cluster.reshape(-1)]


def fitted_groups(problem: WeightProblem, ids: np.ndarray) -> np.ndarray:
    """``[G]`` bool: every known attribute value of group ``ids [G, A]`` occurs in the refit data
    (otherwise ``group_weights`` has nothing fitted for it)."""
    blocks = set(problem.blocks)
    return np.array([all(i == 0 or (a, int(i)) in blocks for a, i in enumerate(row)) for row in ids])


__all__ = [
    "WeightProblem",
    "annotator_resample_counts",
    "fitted_groups",
    "group_weights",
    "head_parameters",
    "newton_refit",
    "weight_problem",
]
