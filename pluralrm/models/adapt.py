"""Few-shot personalisation: fit a new annotator from a handful of their comparisons.

Everything of the trained model stays frozen; only the annotator's own parameters are fitted by
maximum a posteriori on their comparisons, under a Gaussian prior centred on their group:

- ``mixture`` head: the annotator's K mixing-logit offsets L, starting from their group's
  mixing weights — with zero comparisons the prediction is exactly the group's (or the
  population's).
- ``per_group`` head: the annotator's reward-weight offset δ ∈ R^H.

The prior (:func:`prior_precision`) matters most when the annotator has given only a few
comparisons. By default it is *empirical Bayes*: a zero-mean Gaussian whose per-dimension
variance is the mean square of the parameters the model learned for its known annotators, i.e.
how far real annotators sit from their group. The alternative ``prior="training"`` uses the
head's ``annotator_shrinkage`` λ as the penalty on the annotator's summed log-likelihood; the
trainer, however, adds λ‖L‖² to the *mean* loss of a batch, so relative to a summed
likelihood its prior was about N·λ (N training comparisons): taken as is, λ is a far weaker
prior than training used, and one or two comparisons can then move an annotator to an extreme
(experiments/README.md, study 4, measures it).

The backbone runs once over the comparisons (jitted, batches padded to powers of two); the fit
is ``steps`` of gradient descent on K (or H) numbers inside one compiled loop, with the
comparisons padded to a power of two under zero weight, so adapting many annotators compiles
a handful of programs, not one per annotator.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pluralrm.errors import ConfigError
from pluralrm.models.compiled import pad_rows, padded_size
from pluralrm.models.heads import MixtureHead, PerGroupHead
from pluralrm.models.reward_model import RewardModel

_HIDDEN_FN = "adapt_pair_hidden"  # key of the jitted trunk pass (RewardModel.jitted)
PRIORS = ("empirical", "training")
_MIN_VARIANCE = 1e-6  # floor of the empirical prior variance (no division by zero)


@dataclass
class AdaptedAnnotator:
    """A new annotator's fitted parameters on top of a frozen RewardModel."""

    model: RewardModel
    group: dict[str, str]
    params: np.ndarray  # mixture: logit offsets [K]; per_group: weight offsets [H]
    num_comparisons: int

    def predict_preference(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """P(a ≻ b) ``[N]`` for this annotator."""
        return _annotator_probability(self.model, self.group, self.params, prompts, a, b)


def _trunk_pass(net, inputs) -> tuple[jax.Array, jax.Array]:
    f_c, f_r = net.pair_features(inputs)
    return net.head.hidden(f_c), net.head.hidden(f_r)


def _pair_hidden(model: RewardModel, prompts, a, b) -> tuple[jax.Array, jax.Array]:
    """Trunk activations ``[N, H]`` of both sides, computed once (everything frozen)."""
    from pluralrm.data.featurize import pair_inputs

    fn = model.jitted(_HIDDEN_FN, _trunk_pass)
    n = len(prompts)
    inputs = pair_inputs(model.featurizer, list(prompts), list(a), list(b))
    size = padded_size(n)
    h_c, h_r = fn(nnx.state(model.net), {k: jnp.asarray(pad_rows(v, size)) for k, v in inputs.items()})
    return h_c[:n], h_r[:n]


def _group_ids(model: RewardModel, group: Mapping[str, str], n: int) -> jax.Array:
    return jnp.asarray(model.encode_groups(dict(group), n, fallback="pooled"))


def _log_prob(head, h_c, h_r, group_ids, params) -> tuple[jax.Array, jax.Array]:
    """log P(chosen ≻ rejected), log P(rejected ≻ chosen) ``[N]`` under the annotator params."""
    if isinstance(head, MixtureHead):
        w = head.w[...]  # [K, H]
        gaps = (h_c - h_r) @ w.T  # [N, K]
        base = head.mixing_logits(group_ids, None)  # [N, K]
        log_w = jax.nn.log_softmax(base + params[None, :], axis=-1)
        if head.config.mixture_likelihood == "reward":
            gap = jnp.sum(jnp.exp(log_w) * gaps, axis=-1)
            return jax.nn.log_sigmoid(gap), jax.nn.log_sigmoid(-gap)
        log_p = jax.nn.logsumexp(log_w + jax.nn.log_sigmoid(gaps), axis=-1)
        log_q = jax.nn.logsumexp(log_w + jax.nn.log_sigmoid(-gaps), axis=-1)
        return log_p, log_q
    v = head.readout_params(group_ids, None) + params[None, :]  # [N, H]
    gap = jnp.sum((h_c - h_r) * v, axis=-1)
    return jax.nn.log_sigmoid(gap), jax.nn.log_sigmoid(-gap)


def prior_precision(head, prior: str | float = "empirical") -> np.ndarray:
    """Per-dimension precision λ_k of the Gaussian prior on a new annotator's parameters (the
    MAP objective adds Σ_k λ_k p_k² to the summed negative log-likelihood).

    Args:
      head: a MixtureHead or PerGroupHead.
      prior: ``"empirical"``: λ_k = 1 / (2 s_k²), s_k² the mean square of dimension k of the
        parameters learned for the known annotators (a random-effects prior fitted to them;
        Robbins-style empirical Bayes). Falls back to ``"training"`` when the head has fewer
        than two known annotators. ``"training"``: the head's ``annotator_shrinkage`` for every
        dimension (see the module docstring for why it is a weak prior). A number: that λ.

    Returns:
      ``[K]`` (mixture) or ``[H]`` (per_group) float32.
    """
    width = head.config.num_prototypes if isinstance(head, MixtureHead) else head.config.hidden_dim
    if isinstance(prior, (int, float)) and not isinstance(prior, bool):
        if prior < 0:
            raise ConfigError(f"prior precision must be >= 0, got {prior}")
        return np.full((width,), float(prior), np.float32)
    if prior not in PRIORS:
        raise ConfigError(f"prior must be one of {list(PRIORS)} or a number, got {prior!r}")
    table = getattr(head, "annotators", None)
    learned = None if table is None else np.asarray(table.table.embedding[...])[1:]  # row 0 = unknown
    if prior == "training" or learned is None or len(learned) < 2:
        return np.full((width,), head.config.annotator_shrinkage, np.float32)
    variance = np.maximum(np.mean(learned.astype(np.float64) ** 2, axis=0), _MIN_VARIANCE)
    return (0.5 / variance).astype(np.float32)


def map_objective(head, params, h_c, h_r, group_ids, label, weight, precision):
    """The annotator's MAP objective: (weighted NLL of their comparisons + Σ_k λ_k p_k²) / n,
    with n = Σ weight (padding rows have weight 0) and λ = ``precision``
    (:func:`prior_precision`).

    Args:
      head: a MixtureHead or PerGroupHead.  params: ``[K]`` or ``[H]``.
      h_c, h_r: ``[N, H]`` trunk activations.  group_ids: ``[N, A]``.
      label, weight: ``[N]`` P(chosen ≻ rejected) and 0/1 row weights.
      precision: ``[K]`` or ``[H]`` prior precisions.
    """
    log_p, log_q = _log_prob(head, h_c, h_r, group_ids, params)
    nll = -jnp.sum(weight * (label * log_p + (1.0 - label) * log_q))
    return (nll + jnp.sum(precision * params**2)) / jnp.sum(weight)


@partial(jax.jit, static_argnames=("graphdef", "steps"))
def _fit(graphdef, state, params, h_c, h_r, group_ids, label, weight, precision, learning_rate, steps):
    """``steps`` of gradient descent on :func:`map_objective`, in one compiled loop.

    Each coordinate's step is divided by 1 + 2λ_k/n, the prior's curvature (plus one for the
    likelihood's): a diagonal preconditioner that keeps the iteration stable however strong
    the prior (plain steps diverge once learning_rate · 2λ/n > 2) and leaves the optimum as is.
    """
    head = nnx.merge(graphdef, state)
    grad = jax.grad(lambda p: map_objective(head, p, h_c, h_r, group_ids, label, weight, precision))
    step = learning_rate / (1.0 + 2.0 * precision / jnp.sum(weight))
    return jax.lax.fori_loop(0, steps, lambda _, p: p - step * grad(p), params)


def _annotator_probability(model, group, params, prompts, a, b) -> np.ndarray:
    h_a, h_b = _pair_hidden(model, prompts, a, b)
    log_p, _ = _log_prob(model.net.head, h_a, h_b, _group_ids(model, group, len(prompts)), jnp.asarray(params))
    return np.asarray(jnp.exp(log_p))


def adapt_annotator(
    model: RewardModel,
    prompts: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    labels: Sequence[float] | None = None,
    group: Mapping[str, str] | None = None,
    steps: int = 300,
    learning_rate: float = 0.3,
    prior: str | float = "empirical",
) -> AdaptedAnnotator:
    """Fits a new annotator's parameters from their comparisons (see module docstring).

    Args:
      model: a trained RewardModel with a ``mixture`` or ``per_group`` head.
      prompts, chosen, rejected: the annotator's n comparisons (n may be 0).
      labels: P(chosen ≻ rejected) per comparison (default 1.0).
      group: the annotator's group attributes, when known.
      steps, learning_rate: gradient descent on the MAP objective (:func:`map_objective`).
      prior: the prior on the annotator's parameters (:func:`prior_precision`).

    Returns:
      AdaptedAnnotator, whose ``predict_preference`` scores new pairs for this annotator.
    """
    head = model.net.head
    if not isinstance(head, (MixtureHead, PerGroupHead)):
        raise ConfigError(
            f"few-shot adaptation needs a mixture or per_group head, this model has {model.config.head.type!r}"
        )
    group = dict(group or {})
    precision = prior_precision(head, prior)
    params = jnp.zeros(precision.shape, jnp.float32)
    n = len(prompts)
    if n:
        size = padded_size(n)
        label = np.ones(n) if labels is None else np.asarray(labels, np.float64)
        h_c, h_r = _pair_hidden(model, prompts, chosen, rejected)
        group_ids = model.encode_groups(group, size, fallback="pooled")
        graphdef, state = nnx.split(head)
        params = _fit(graphdef, state, params, jnp.asarray(pad_rows(np.asarray(h_c), size)),
                      jnp.asarray(pad_rows(np.asarray(h_r), size)), jnp.asarray(group_ids),
                      jnp.asarray(pad_rows(label.astype(np.float32), size)),
                      jnp.asarray(pad_rows(np.ones(n, np.float32), size)), jnp.asarray(precision),
                      jnp.float32(learning_rate), int(steps))
    return AdaptedAnnotator(model, group, np.asarray(params), n)


def annotator_responsibilities(model: RewardModel, dataset) -> tuple[list[str], np.ndarray]:
    """EM-style posterior over prototypes for every annotator of a ComparisonDataset.

    For annotator a with comparisons i, p(k | a) ∝ π_k · Π_i P_k(i), with P_k(i) the k-th
    prototype's probability of the observed label (soft labels as exponents) and π the
    population/group mixing weights. Returns the annotators (sorted) and ``[A, K]``
    responsibilities; the argmax is a hard clustering of annotators into latent groups.
    """
    head = model.net.head
    if not isinstance(head, MixtureHead):
        raise ConfigError(f"responsibilities need a mixture head, this model has {model.config.head.type!r}")
    names = sorted(set(dataset["annotator_id"]))
    index = {a: i for i, a in enumerate(names)}
    rows = np.array([index[a] for a in dataset["annotator_id"]])
    label = np.asarray(dataset["label"], np.float64)
    group_ids = model.schema.encode(
        {a: dataset[a] for a in model.schema.attributes if a in dataset.column_names}, n=len(dataset)
    )
    loglik = np.zeros((len(names), head.config.num_prototypes))
    prior = np.zeros_like(loglik)
    for start in range(0, len(dataset), 1024):
        stop = min(start + 1024, len(dataset))
        sub = dataset.select(range(start, stop))
        h_c, h_r = _pair_hidden(model, sub["prompt"], sub["chosen"], sub["rejected"])
        gaps = np.asarray((h_c - h_r) @ head.w[...].T, np.float64)  # [n, K]
        y = label[start:stop, None]
        ll = y * np.asarray(jax.nn.log_sigmoid(gaps)) + (1 - y) * np.asarray(jax.nn.log_sigmoid(-gaps))
        np.add.at(loglik, rows[start:stop], ll)
        base = np.asarray(jax.nn.log_softmax(head.mixing_logits(jnp.asarray(group_ids[start:stop]), None), axis=-1))
        prior[rows[start:stop]] = base  # an annotator's group is fixed across their rows
    post = loglik + prior
    post = np.exp(post - post.max(axis=1, keepdims=True))
    return names, post / post.sum(axis=1, keepdims=True)


__all__ = ["PRIORS", "AdaptedAnnotator", "adapt_annotator", "annotator_responsibilities", "map_objective",
           "prior_precision"]
