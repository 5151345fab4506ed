"""``TransformerBackbone``: a pretrained encoder or decoder behind the Backbone contract.

``features({"input_ids", "attention_mask", "token_type_ids"}: [B, L]) -> [B, D]`` runs the
transformer and pools its last hidden states (see ``docs/architecture.md``). Freezing is
declared, not applied: ``is_trainable(path)`` tells the trainer which parameters to
differentiate (``trainable="all" | "none" | "top_k"``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
from flax import nnx
from jax.sharding import Mesh

from pluralrm.data.packing import BATCHING_MODES, is_packed
from pluralrm.errors import ConfigError
from pluralrm.models.transformer.decoder import DecoderModel
from pluralrm.models.transformer.pooling import POOLINGS, packed_pool, pool
from pluralrm.models.transformer.weights import DTYPES, TransformerModel, from_pretrained
from pluralrm.pretrained import resolve_pretrained

if TYPE_CHECKING:
    from pluralrm.data.tokenize import TokenizerFeaturizer

TRAINABLE_MODES = ("all", "none", "top_k")
FAMILY_POOLINGS = {"encoder": ("cls", "mean"), "decoder": ("last", "mean")}
DEFAULT_POOLING = {"encoder": "cls", "decoder": "last"}


@dataclass(frozen=True)
class TransformerBackboneConfig:
    """Configuration of a pretrained transformer backbone.

    Attributes:
        path: local Hugging Face directory or preset name (e.g. ``"minilm-l6"``); never a hub id.
        pooling: ``"cls"`` or ``"mean"`` (encoders), ``"last"`` or ``"mean"`` (decoders), or
            ``"auto"``: the preset's or sentence-transformers directory's pooling, else ``cls``
            for encoders and ``last`` for decoders.
        dtype: ``"float32"`` or ``"bfloat16"`` (parameters and compute; features are float32).
        trainable: ``"all"``, ``"none"`` (frozen feature extractor) or ``"top_k"``.
        top_k_layers: with ``trainable="top_k"``, how many of the last layers train.
        remat: recompute each layer in the backward pass (less memory, ~1/3 more compute).
        max_length: longest tokenized input (the featurizer truncates to it).
        buckets: padded lengths the featurizer rounds up to (one compilation each; padded
            batching only).
        batching: ``"packed"`` (default): the chosen and rejected sequences of a batch are laid
            end to end in rows of ``max_length`` tokens with attention restricted to each
            sequence (``pluralrm.data.packing``), so no compute goes to padding; ``"padded"``:
            one row per sequence padded to its length bucket.
    """

    path: str
    pooling: str = "auto"
    dtype: str = "float32"
    trainable: str = "all"
    top_k_layers: int = 0
    remat: bool = False
    max_length: int = 256
    buckets: tuple[int, ...] = (32, 64, 128, 256)
    batching: str = "packed"

    def __post_init__(self) -> None:
        if self.batching not in BATCHING_MODES:
            raise ConfigError(f"batching {self.batching!r} is not one of {list(BATCHING_MODES)}")
        if self.pooling != "auto" and self.pooling not in POOLINGS:
            raise ConfigError(f"pooling {self.pooling!r} is not one of {['auto', *POOLINGS]}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"dtype {self.dtype!r} is not one of ['float32', 'bfloat16']")
        if self.trainable not in TRAINABLE_MODES:
            raise ConfigError(f"trainable {self.trainable!r} is not one of {list(TRAINABLE_MODES)}")
        if self.trainable == "top_k" and self.top_k_layers < 1:
            raise ConfigError("trainable='top_k' needs top_k_layers >= 1 (use trainable='none' to freeze all)")
        if self.top_k_layers < 0:
            raise ConfigError(f"top_k_layers must be >= 0, got {self.top_k_layers}")
        if self.max_length < 1 or not self.buckets or any(b < 1 for b in self.buckets):
            raise ConfigError(f"max_length and buckets must be positive, got {self.max_length}, {self.buckets}")

    def featurizer(self, **options: Any) -> TokenizerFeaturizer:
        """The tokenizer featurizer matching this backbone (same path, max_length, buckets)."""
        from pluralrm.data.tokenize import TokenizerFeaturizer

        options.setdefault("batching", self.batching)
        return TokenizerFeaturizer(self.path, max_length=self.max_length, buckets=self.buckets, **options)


class TransformerBackbone(nnx.Module):
    """A pretrained transformer and a pooling: ``features(inputs) -> [B, D]``.

    Attributes:
        model: the :class:`EncoderModel` or :class:`DecoderModel`.
        family: ``"encoder"`` or ``"decoder"``.
        pooling: the resolved pooling (``"cls"``, ``"mean"`` or ``"last"``).
        dim: feature size D (the model's hidden size).
    """

    def __init__(self, model: TransformerModel, *, pooling: str, trainable: str = "all", top_k_layers: int = 0):
        self.model = model
        self.family = "decoder" if isinstance(model, DecoderModel) else "encoder"
        if pooling not in FAMILY_POOLINGS[self.family]:
            raise ConfigError(
                f"pooling {pooling!r} does not suit a {self.family} ({model.config.model_type}); "
                f"choose one of {list(FAMILY_POOLINGS[self.family])}"
            )
        if trainable not in TRAINABLE_MODES:
            raise ConfigError(f"trainable {trainable!r} is not one of {list(TRAINABLE_MODES)}")
        if trainable == "top_k" and not 1 <= top_k_layers <= model.config.num_layers:
            raise ConfigError(
                f"top_k_layers={top_k_layers} must be between 1 and the model's {model.config.num_layers} layers"
            )
        self.pooling = pooling
        self.dim = model.config.hidden_size
        self.num_layers = model.config.num_layers
        self.max_length = model.config.max_length
        self.trainable = trainable
        self.top_k_layers = top_k_layers

    @classmethod
    def from_config(
        cls, config: TransformerBackboneConfig, rngs: nnx.Rngs | None = None, *, mesh: Mesh | None = None
    ) -> TransformerBackbone:
        """Loads the pretrained weights named by ``config.path``.

        Args:
            config: the backbone configuration.
            rngs: unused (every parameter comes from the checkpoint); accepted so that all
                backbones share one constructor signature.
            mesh: place parameters directly on their shards of this mesh.
        Raises:
            CheckpointError: the path or its files are unusable. ConfigError: options that do not
            suit the model (pooling, top_k_layers, max_length beyond the position table).
        """
        del rngs
        pretrained = resolve_pretrained(config.path)
        model = from_pretrained(pretrained.directory, dtype=DTYPES[config.dtype], remat=config.remat, mesh=mesh)
        family = "decoder" if isinstance(model, DecoderModel) else "encoder"
        pooling = config.pooling
        if pooling == "auto":
            pooling = pretrained.pooling or DEFAULT_POOLING[family]
        if config.max_length > model.config.max_length:
            raise ConfigError(
                f"max_length {config.max_length} exceeds what {config.path} supports ({model.config.max_length})"
            )
        return cls(model, pooling=pooling, trainable=config.trainable, top_k_layers=config.top_k_layers)

    def hidden_states(self, inputs: dict[str, jax.Array]) -> jax.Array:
        """Last hidden states ``[B, L, D]`` (model dtype); packed inputs give ``[R, L, D]``."""
        if is_packed(inputs):
            return self.model(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"),
                              segment_ids=inputs["segment_ids"], positions=inputs["positions"],
                              tile_pairs=inputs.get("tile_pairs"))
        return self.model(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))

    def features(self, inputs: dict[str, jax.Array]) -> jax.Array:
        """Pooled features float32: ``[B, D]`` from ``[B, L]`` padded inputs, or one vector per
        packed sequence (``[N, D]`` or ``[N, 2, D]``, the shape of ``first_index``) from packed
        inputs (``pluralrm.data.packing``)."""
        if is_packed(inputs):
            return packed_pool(self.pooling, self.hidden_states(inputs), inputs)
        return pool(self.pooling, self.hidden_states(inputs), inputs["attention_mask"])

    def __call__(self, inputs: dict[str, jax.Array]) -> jax.Array:
        return self.features(inputs)

    def is_trainable(self, path: tuple[str | int, ...]) -> bool:
        """Whether the parameter at ``path`` (relative to this backbone, as in
        ``nnx.state(backbone)``, e.g. ``("model", "layers", 5, "q", "kernel")``) trains.

        ``top_k`` trains the last ``top_k_layers`` layers and, for decoders, the final norm
        that follows them; embeddings and lower layers stay frozen.
        """
        keys = tuple(str(p) for p in path)
        if not keys or keys[0] != "model":
            raise ValueError(f"path {path!r} is not a parameter path of this backbone (must start with 'model')")
        if self.trainable == "all":
            return True
        if self.trainable == "none":
            return False
        if keys[1:2] == ("norm",):
            return True
        if keys[1:2] == ("layers",) and len(keys) > 2:
            return int(keys[2]) >= self.num_layers - self.top_k_layers
        return False
