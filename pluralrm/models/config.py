"""Model configuration: which backbone, which head. Frozen dataclasses; YAML mirrors them."""
from __future__ import annotations

from dataclasses import dataclass, field

from pluralrm.errors import ConfigError

BACKBONE_TYPES = ("hashing", "frozen", "transformer")
HEAD_TYPES = (
    "pooled", "conditioned", "per_group", "mixture", "distributional", "values", "mean_variance", "categorical"
)
POOLINGS = ("auto", "cls", "mean", "last")
TRAINABLE = ("all", "none", "top_k")


@dataclass(frozen=True)
class BackboneConfig:
    """The text encoder: ``features(inputs) -> [B, D]``.

    type:
      ``hashing``: hashed character/word n-gram bag → embedding bag → MLP (no weights to
        download; fast on CPU; any language). Uses num_buckets, embed_dim, char_ngrams,
        word_ngrams, hidden_dims.
      ``frozen``: precomputed embeddings of (prompt, response) → MLP (hidden_dims). ``path`` is
        an embedding table (``.npz``, see ``pluralrm.data.embeddings``) or a pretrained
        encoder (local directory or preset) whose embeddings are computed once and cached in
        ``embedding_cache``.
      ``transformer``: a pretrained encoder or decoder from ``path`` (a local Hugging Face
        directory or a preset name such as ``minilm-l6``), fine-tuned per ``trainable``.
    """

    type: str = "hashing"
    # hashing
    num_buckets: int = 1 << 16
    embed_dim: int = 64
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    word_ngrams: tuple[int, ...] = (1, 2)
    # hashing and frozen: (LayerNorm →) MLP on the pooled vector
    hidden_dims: tuple[int, ...] = (128,)
    normalize: bool = True
    # text length buckets (hashing: n-grams per text; transformer: tokens)
    max_length: int = 512
    buckets: tuple[int, ...] = (64, 128, 256, 512)
    # transformer and frozen
    path: str = ""
    pooling: str = "auto"
    dtype: str = "float32"
    trainable: str = "all"
    top_k_layers: int = 0
    remat: bool = False
    embedding_cache: str = ""
    # transformer: "packed" (padding-free rows, pluralrm.data.packing) or "padded"
    batching: str = "packed"

    def __post_init__(self) -> None:
        _choice("backbone.type", self.type, BACKBONE_TYPES)
        _choice("backbone.batching", self.batching, ("packed", "padded"))
        _choice("backbone.pooling", self.pooling, POOLINGS)
        _choice("backbone.trainable", self.trainable, TRAINABLE)
        _choice("backbone.dtype", self.dtype, ("float32", "bfloat16"))
        if self.type in ("transformer", "frozen") and not self.path:
            raise ConfigError(
                f"backbone.type={self.type!r} needs backbone.path: a local Hugging Face model "
                "directory or a preset name such as 'minilm-l6' (in a config: model.backbone.path, "
                "or on the command line: --set model.backbone.path=DIR)"
            )
        if self.num_buckets < 2 or self.embed_dim < 1:
            raise ConfigError("backbone.num_buckets must be >= 2 and embed_dim >= 1")
        if any(h < 1 for h in self.hidden_dims):
            raise ConfigError(f"backbone.hidden_dims must be positive, got {self.hidden_dims}")
        if self.max_length < 1 or not self.buckets:
            raise ConfigError("backbone.max_length must be >= 1 and buckets non-empty")


@dataclass(frozen=True)
class HeadConfig:
    """The group-conditioned reward head on top of the backbone features.

    Every head maps features ``[B, D]`` through a shared trunk ``h = relu(W features + b)``
    of width ``hidden_dim`` and reads a reward out of ``h`` with group-specific parameters.

    type:
      ``pooled``: one reward for everyone, r = w·h + b.
      ``conditioned``: FiLM on h from additive embeddings of each group attribute:
        r_g = w·(h ⊙ (1 + γ_g) + β_g) + b, γ_g = Σ_a Γ_a[g_a], β_g = Σ_a B_a[g_a].
      ``per_group``: hierarchical offsets with shrinkage: r = (w + Σ_a δ_a[g_a] + δ_annotator)·h
        + (b + Σ_a c_a[g_a] + c_annotator); L2 penalties ``shrinkage`` on group offsets and
        ``annotator_shrinkage`` on annotator offsets (random effects, global → group → annotator).
      ``mixture``: K = ``num_prototypes`` latent reward prototypes; mixing weights from the
        group attributes and (when known) the annotator; ``mixture_likelihood`` = ``reward``
        (BT on the mixed reward, PAL-B) or ``latent_class`` (one prototype per comparison).
      ``distributional``: a mean and a within-group spread per (response, group): each member's
        utility is (v_g + ε)·h with ε ~ N(0, diag(exp(2ρ_g))); risk-sensitive scores use the
        normal quantile mean + Φ⁻¹(α)·spread of that utility.
      ``values``: K = ``num_values`` (or ``len(value_names)``) value scores per response and
        per-group value weights, r_g = w_g·v (``pluralrm.models.heads.ValuesHead``; explained
        by ``pluralrm.explain``). ``value_names`` label the K values in explanations; per-response
        value labels in the data train the scores (weight ``loss.value_loss_weight``).
      ``mean_variance`` / ``categorical``: DPL's distributional heads, group-conditioned
        (``pluralrm.models.distribution_heads``): a normal N(μ, softplus(s)²) with the optional
        ``variance_penalty``, or ``num_atoms`` atoms on [0, 1] with the ``entropy_coeff`` bonus.
    """

    type: str = "conditioned"
    hidden_dim: int = 64
    shrinkage: float = 1e-3
    annotator_shrinkage: float = 1e-2
    use_annotators: bool = False
    num_prototypes: int = 4
    mixture_likelihood: str = "reward"
    value_names: tuple[str, ...] = ()
    num_values: int = 0
    # kept so that model.json files written before it moved still load; the trainer reads
    # loss.value_loss_weight, and any other value here is refused rather than ignored
    value_loss_weight: float = 1.0
    num_atoms: int = 10
    entropy_coeff: float = 0.1
    variance_penalty: float = 0.0

    def __post_init__(self) -> None:
        _choice("head.type", self.type, HEAD_TYPES)
        if self.hidden_dim < 1:
            raise ConfigError(f"head.hidden_dim must be >= 1, got {self.hidden_dim}")
        if self.shrinkage < 0 or self.annotator_shrinkage < 0:
            raise ConfigError("head.shrinkage and head.annotator_shrinkage must be >= 0")
        _choice("head.mixture_likelihood", self.mixture_likelihood, ("reward", "latent_class"))
        if self.num_prototypes < 1:
            raise ConfigError(f"head.num_prototypes must be >= 1, got {self.num_prototypes}")
        if self.num_values < 0:
            raise ConfigError(f"head.num_values must be >= 0, got {self.num_values}")
        if self.value_loss_weight != 1.0:
            raise ConfigError(
                f"head.value_loss_weight={self.value_loss_weight} has no effect: the weight of the "
                "value-label loss is loss.value_loss_weight; set that instead"
            )
        if self.num_atoms < 2:
            raise ConfigError(f"head.num_atoms must be >= 2, got {self.num_atoms}")
        if self.entropy_coeff < 0 or self.variance_penalty < 0:
            raise ConfigError("head.entropy_coeff and head.variance_penalty must be >= 0")
        if len(set(self.value_names)) != len(self.value_names):
            raise ConfigError(f"head.value_names must be distinct, got {list(self.value_names)}")


@dataclass(frozen=True)
class ModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")
