"""Fast backbones: hashed n-gram bags and frozen precomputed embeddings.

A backbone maps featurized inputs ``{name: [B, L]}`` to features ``[B, D]`` (``features``),
says its width (``dim``) and which of its parameters train (``is_trainable``). Transformer
backbones live in ``pluralrm.models.transformer``; ``build_backbone`` picks by config.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from pluralrm.data.featurize import Featurizer, HashingFeaturizer
from pluralrm.models.config import BackboneConfig

Array = jax.Array


class MLP(nnx.Module):
    """(LayerNorm →) (Linear → GELU) per hidden width. ``[B, D_in] -> [B, D_out]``.

    Deterministic on purpose (no dropout): a model's state is then only its parameters, which
    keeps checkpoints and bit-exact resume simple; group dropout regularises instead.
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], rngs: nnx.Rngs, normalize: bool = True):
        self.norm = nnx.LayerNorm(in_dim, rngs=rngs) if normalize else None
        dims = [in_dim, *hidden_dims]
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])]
        )
        self.out_dim = dims[-1]

    def __call__(self, x: Array) -> Array:
        if self.norm is not None:
            x = self.norm(x)
        for layer in self.layers:
            x = jax.nn.gelu(layer(x))
        return x


# ids per slice of the bag's loops: a slice's gathered rows ([B, 8, E]) stay in cache
BAG_CHUNK = 8


@jax.custom_vjp
def embedding_bag(table: Array, ids: Array) -> Array:
    """Sum of the rows ``table[ids]`` per text divided by sqrt(count). ``[V, E], [B, L] -> [B, E]``.

    Id 0 is padding: it contributes nothing and gets no gradient. Equal in value and gradient to
    ``sum(table[ids] * mask) / sqrt(max(count, 1))`` up to the order of float additions, but
    cheaper on CPU, where the step is memory-bound. That form materialises ``[B, L, E]`` twice
    (the gathered rows and their masked copy, kept for the backward pass) and scatter-adds
    ``[B, L, E]`` broadcast gradients, padding included, into row 0. Here both passes walk the
    ids ``BAG_CHUNK`` at a time (a ``lax.scan``), so only ``[B, BAG_CHUNK, E]`` is ever
    materialised; padding ids point past the table and are read as zeros and dropped from the
    scatter; only the ids and a ``[B, 1]`` scale are kept between the passes.
    """
    return _bag_forward(table, ids)[0]


def _chunked_rows(ids: Array, num_rows: int) -> Array:
    """``[L / c, B, c]`` table rows of ``ids [B, L]`` (padding and tail -> ``num_rows``, out of range)."""
    rows = jnp.where(ids > 0, ids, num_rows)
    rows = jnp.pad(rows, ((0, 0), (0, -rows.shape[1] % BAG_CHUNK)), constant_values=num_rows)
    return rows.reshape(rows.shape[0], -1, BAG_CHUNK).transpose(1, 0, 2)


def _bag_forward(table: Array, ids: Array) -> tuple[Array, tuple]:
    rows = _chunked_rows(ids, table.shape[0])  # [L / c, B, c]
    count = jnp.sum(ids > 0, axis=-1, keepdims=True).astype(table.dtype)  # [B, 1]
    norm = jnp.sqrt(jnp.maximum(count, 1.0))  # [B, 1]

    def add_slice(total, slice_rows):  # [B, E], [B, c]
        return total + jnp.sum(jnp.take(table, slice_rows, axis=0, mode="fill", fill_value=0), axis=1), None

    summed, _ = jax.lax.scan(add_slice, jnp.zeros((ids.shape[0], table.shape[1]), table.dtype), rows)
    shape_of = jnp.zeros((table.shape[0], 0), table.dtype)  # [V, 0]: the table's rows and dtype, no data
    return summed / norm, (rows, norm, shape_of)


def _bag_backward(residuals: tuple, grad: Array) -> tuple[Array, None]:
    rows, norm, shape_of = residuals
    per_text = (grad / norm).astype(shape_of.dtype)  # [B, E]
    b, width = per_text.shape
    updates = jnp.broadcast_to(per_text[:, None, :], (b, BAG_CHUNK, width)).reshape(b * BAG_CHUNK, width)

    def scatter_slice(table_grad, slice_rows):  # [V, E], [B, c]
        return table_grad.at[slice_rows.reshape(-1)].add(updates, mode="drop"), None

    table_grad, _ = jax.lax.scan(scatter_slice, jnp.zeros((shape_of.shape[0], width), shape_of.dtype), rows)
    return table_grad, None


embedding_bag.defvjp(_bag_forward, _bag_backward)


class HashingBackbone(nnx.Module):
    """Embedding bag over hashed n-gram ids, then an MLP.

    ``features({"ids": [B, L]})``: the sum of the ids' embeddings divided by sqrt(count)
    (id 0 is padding and contributes nothing), then LayerNorm and the MLP → ``[B, D]``.
    """

    def __init__(self, config: BackboneConfig, rngs: nnx.Rngs):
        self.config = config
        init = nnx.initializers.normal(stddev=1.0)
        self.embed = nnx.Embed(config.num_buckets, config.embed_dim, embedding_init=init, rngs=rngs)
        self.mlp = MLP(config.embed_dim, config.hidden_dims, rngs, config.normalize)
        self.dim = self.mlp.out_dim

    def features(self, inputs: dict[str, Array]) -> Array:
        ids = inputs["ids"]  # [B, L]
        table = self.embed.embedding[...]  # [V, E]
        return self.mlp(embedding_bag(table, ids))

    def is_trainable(self, path: tuple) -> bool:
        return True

    def featurizer(self) -> Featurizer:
        return hashing_featurizer(self.config)


class FrozenBackbone(nnx.Module):
    """Precomputed embeddings → optional MLP. ``features({"embedding": [B, E]}) -> [B, D]``.

    The embeddings come from a pretrained encoder run once over the data (see
    ``pluralrm.models.embedding_cache``); only the MLP (and the head) train: the cheap regime in
    which PAL-style pluralistic reward models are usually fit.
    """

    def __init__(self, config: BackboneConfig, input_dim: int, rngs: nnx.Rngs):
        self.config = config
        self.mlp = MLP(input_dim, config.hidden_dims, rngs, config.normalize)
        self.dim = self.mlp.out_dim

    def features(self, inputs: dict[str, Array]) -> Array:
        return self.mlp(inputs["embedding"].astype(jnp.float32))

    def is_trainable(self, path: tuple) -> bool:
        return True


def hashing_featurizer(config: BackboneConfig) -> HashingFeaturizer:
    """The featurizer whose ids a HashingBackbone with this config reads."""
    return HashingFeaturizer(
        num_buckets=config.num_buckets,
        char_ngrams=config.char_ngrams,
        word_ngrams=config.word_ngrams,
        max_length=config.max_length,
        buckets=config.buckets,
    )


def build_backbone(config: BackboneConfig, rngs: nnx.Rngs) -> tuple[nnx.Module, Featurizer]:
    """Builds the backbone named by ``config.type`` and the featurizer that feeds it.

    Pretrained weights (transformer, frozen) are read from ``config.path`` here, never
    downloaded.
    """
    if config.type == "hashing":
        return HashingBackbone(config, rngs), hashing_featurizer(config)
    if config.type == "frozen":
        if config.path.endswith(".npz"):
            from pluralrm.data.embeddings import EmbeddingTable

            featurizer = EmbeddingTable(config.path)
        else:
            from pluralrm.models.embedding_cache import EncoderEmbeddings

            featurizer = EncoderEmbeddings(
                path=config.path,
                pooling=config.pooling,
                max_length=config.max_length,
                cache_dir=config.embedding_cache,
            )
        return FrozenBackbone(config, featurizer.dim, rngs), featurizer
    from pluralrm.models.transformer import TransformerBackbone, TransformerBackboneConfig

    transformer_config = TransformerBackboneConfig(
        path=config.path,
        pooling=config.pooling,
        dtype=config.dtype,
        trainable=config.trainable,
        top_k_layers=config.top_k_layers,
        remat=config.remat,
        max_length=config.max_length,
        buckets=tuple(b for b in config.buckets if b <= config.max_length) or (config.max_length,),
        batching=config.batching,
    )
    return TransformerBackbone.from_config(transformer_config, rngs=rngs), transformer_config.featurizer()
