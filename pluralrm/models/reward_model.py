"""RewardModel = backbone + head + GroupSchema + featurizer, saved without pickle.

``RewardNet`` is the NNX module (backbone and head, ``pluralrm.models.net``); ``RewardModel`` wraps it with what turns
texts and group names into its inputs (the featurizer, the schema, the annotator vocabulary)
and offers the scoring conveniences: ``score``, ``score_all_groups``, ``predict_preference``,
``predict`` and ``predict_all_groups``. Inference runs through ``jax.jit`` over the split
(graphdef, state) — compiled once per length bucket and batch size, reused after.

A saved model directory (its format: ``pluralrm.models.model_files``) holds::

    model.json       format tag, ModelConfig, featurizer config, per-group temperatures
    schema.json      GroupSchema (attributes, vocabularies, groups)
    annotators.json  annotator vocabulary (id = index + 1; 0 = unknown)
    weights/         Orbax checkpoint of the parameters (and the group table)
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from pluralrm.data.featurize import Featurizer, pair_inputs
from pluralrm.data.packing import packed_inputs, packed_pair_inputs
from pluralrm.data.schema import GroupSchema
from pluralrm.errors import CheckpointError, ConfigError, DataError
from pluralrm.models.artefacts import check_declared_size
from pluralrm.models.compiled import jit_over_state, pad_batch, pad_rows, padded_size
from pluralrm.models.config import ModelConfig
from pluralrm.models.head_registry import distribution_head_types
from pluralrm.models.model_files import MODEL_FORMAT as MODEL_FORMAT
from pluralrm.models.model_files import MODEL_VERSION as MODEL_VERSION
from pluralrm.models.model_files import abstract_array as abstract_array
from pluralrm.models.model_files import check_tree_shapes as check_tree_shapes
from pluralrm.models.model_files import read_model_metadata, restore_weights, write_model_metadata
from pluralrm.models.model_files import store_temperatures as store_temperatures
from pluralrm.models.net import Array as Array
from pluralrm.models.net import RewardNet, build_net, preference_probability, saved_state

FALLBACKS = ("pooled", "error", "nearest")


@dataclass
class RewardModel:
    """A reward model ready to score texts for groups (see module docstring)."""

    net: RewardNet
    config: ModelConfig
    schema: GroupSchema
    featurizer: Featurizer
    annotators: tuple[str, ...] = ()
    temperatures: dict[str, float] = field(default_factory=dict)
    batch_size: int = 256
    _jitted: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        config: ModelConfig,
        schema: GroupSchema,
        annotators: Sequence[str] = (),
        seed: int = 0,
    ) -> "RewardModel":
        net, featurizer = build_net(config, schema, len(annotators), seed)
        return cls(net, config, schema, featurizer, tuple(annotators))

    @property
    def group_labels(self) -> list[str]:
        return self.schema.group_labels()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Writes the model directory (see module docstring). Returns its absolute path."""
        import orbax.checkpoint as ocp

        from pluralrm.atomic import atomic_entries

        path = Path(path).absolute()
        with atomic_entries(path) as stage:  # an interrupted save leaves the previous model intact
            write_model_metadata(stage, self.config, self.schema, self.featurizer, self.annotators, self.temperatures)
            with ocp.StandardCheckpointer() as ckpt:
                ckpt.save(stage / "weights", saved_state(self.net).to_pure_dict())
        return path

    @classmethod
    def load(cls, path: str | Path, checkpoint: str = "best") -> "RewardModel":
        """Loads a saved model directory, or a training run directory.

        Args:
          path: a directory written by ``save``, or a run directory of ``pluralrm train``
            (then ``checkpoint`` picks ``"best"`` (by the run's selection metric, falling back to
            the latest), ``"latest"`` or a step number).
        """
        from pluralrm.models import export

        if not Path(path).exists() and export.looks_like_hub_id(str(path)):  # an exported model on the hub
            path = export.fetch_from_hub(str(path))
        path = Path(path).absolute()
        if not path.is_dir():
            raise CheckpointError(f"{path} is not a directory: pass a model or run directory")
        if (path / "checkpoints").is_dir() and not (path / "weights").exists():
            from pluralrm.models.run_checkpoint import load_from_run

            return load_from_run(cls, path, checkpoint)
        config, schema, featurizer, annotators, temperatures = read_model_metadata(path)
        check_declared_size(config, schema, len(annotators), path)
        net, _ = build_net(config, schema, len(annotators))
        if not (path / "weights").exists() and (path / export.SAFETENSORS_FILE).is_file():  # `pluralrm export`
            nnx.update(net, export.load_safetensors(saved_state(net).to_pure_dict(), path / export.SAFETENSORS_FILE))
        else:
            restore_weights(net, path / "weights")
        return cls(net, config, schema, featurizer, annotators, temperatures)

    # ------------------------------------------------------------------ encoding inputs
    def encode_groups(
        self,
        groups: Mapping[str, str] | Sequence[Mapping[str, str]] | str | None,
        n: int,
        fallback: str = "pooled",
    ) -> np.ndarray:
        """Group spec(s) → ``group_ids [n, A]``, applying the unseen-value policy.

        ``groups`` is one spec for all rows (``{"country": "NG"}`` or ``"country=NG"``), one
        per row, or None (every attribute unknown → the pooled/shared reward). A value the
        schema does not know is handled by ``fallback``: ``"pooled"`` (id 0, the shared reward,
        with a warning that names the value), ``"error"`` (DataError) or ``"nearest"`` (the
        known value with the most similar name, warning which; pooled if none is close).
        """
        from pluralrm.data.schema import parse_group_spec

        if fallback not in FALLBACKS:
            raise ConfigError(f"fallback must be one of {list(FALLBACKS)}, got {fallback!r}")
        if groups is None:
            return np.zeros((n, self.schema.num_attributes), np.int32)
        if isinstance(groups, (str, Mapping)):
            specs = [parse_group_spec(groups)] * n
        else:
            specs = [parse_group_spec(g) for g in groups]
            if len(specs) != n:
                raise DataError(f"got {len(specs)} group specs for {n} rows", field="groups")
        for spec in specs[:1] if isinstance(groups, (str, Mapping)) else specs:
            for attr in spec:
                if attr not in self.schema.attributes:
                    raise DataError(
                        f"unknown group attribute {attr!r}; this model knows "
                        f"{list(self.schema.attributes)}",
                        field=attr,
                    )
        columns = {a: [s.get(a, "") for s in specs] for a in self.schema.attributes}
        columns = self._apply_fallback(columns, fallback)
        return self.schema.encode(columns, n=n)

    def _apply_fallback(self, columns: dict[str, list[str]], fallback: str) -> dict[str, list[str]]:
        import difflib

        unknown = self.schema.unknown_values(columns)
        if not unknown:
            return columns
        if fallback == "error":
            attr, values = next(iter(unknown.items()))
            raise DataError(
                f"value(s) {values} of {attr!r} are not in the model's schema "
                f"(known: {list(self.schema.vocabularies[self.schema.attributes.index(attr)])})",
                field=attr,
            )
        for attr, values in unknown.items():
            vocab = self.schema.vocabularies[self.schema.attributes.index(attr)]
            mapping = {}
            for v in values:
                close = difflib.get_close_matches(v, vocab, n=1, cutoff=0.6) if fallback == "nearest" else []
                mapping[v] = close[0] if close else ""
                target = f"the nearest known value {close[0]!r}" if close else "the pooled reward"
                warnings.warn(
                    f"group value {attr}={v!r} is not in the model's schema; using {target}",
                    stacklevel=4,
                )
            columns[attr] = [mapping.get(v, v) for v in columns[attr]]
        return columns

    def encode_annotators(self, annotator_ids: Sequence[str]) -> np.ndarray:
        """Annotator names → ids ``[N]`` (0 = unknown)."""
        index = {a: i + 1 for i, a in enumerate(self.annotators)}
        return np.array([index.get(a, 0) for a in annotator_ids], np.int32)

    # ------------------------------------------------------------------ scoring
    def score(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        groups: Mapping[str, str] | Sequence[Mapping[str, str]] | str | None = None,
        fallback: str = "pooled",
        risk: float | None = None,
    ) -> np.ndarray:
        """Rewards ``[N]`` of responses to prompts, for a group (or one group per row).

        ``risk=α`` (0 < α < 1, heads with a reward distribution only) scores each response by
        the lower α-quantile of its predicted reward distribution instead of the mean
        (``pluralrm.reward_distributions.reward_quantile``), in the same backbone pass.
        """
        _check_lengths(prompts=prompts, responses=responses)
        group_ids = self.encode_groups(groups, len(prompts), fallback)
        if risk is not None:
            alpha = self.check_risk(risk)
            return self._run_single("reward_quantiles", prompts, responses, group_ids, extra=(alpha,))
        return self._run_single("rewards", prompts, responses, group_ids)

    def score_all_groups(
        self, prompts: Sequence[str], responses: Sequence[str], risk: float | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Rewards ``[N, G]`` under every group of the schema (one backbone pass) and the labels;
        ``risk=α``: lower α-quantiles instead of means (see ``score``)."""
        _check_lengths(prompts=prompts, responses=responses)
        if risk is not None:
            alpha = self.check_risk(risk)
            table = self._run_single("all_group_reward_quantiles", prompts, responses, None, extra=(alpha,))
            return table, self.group_labels
        return self._run_single("all_group_rewards", prompts, responses, None), self.group_labels

    def reward_moments(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation ``[N, G]`` of each response's predicted reward
        distribution under every group (heads with a distribution only; one backbone pass).
        What the r² diagnostic (``pluralrm.calibration.hidden_context``) reads."""
        self._require_distribution("reward moments")
        _check_lengths(prompts=prompts, responses=responses)
        g = self.schema.num_groups
        if not len(prompts):
            return np.zeros((0, g), np.float32), np.zeros((0, g), np.float32)
        return self._run_single("all_group_reward_moments", list(prompts), list(responses), None)

    def _require_distribution(self, what: str) -> None:
        if not hasattr(self.net.head, "all_groups_quantile"):
            raise ConfigError(
                f"{what} need(s) a head that predicts a reward distribution "
                f"({', '.join(distribution_head_types())}); this model's head is "
                f"{self.config.head.type!r} (train one with model.head.type=mean_variance or categorical)"
            )

    def check_risk(self, risk: float) -> np.ndarray:
        """Validates a ``risk`` level for this model (a distributional head, 0 < α < 1); returns α."""
        from pluralrm.reward_distributions import check_alpha

        self._require_distribution(f"risk-sensitive scoring (risk={risk})")
        check_alpha(risk)
        return np.asarray(risk, np.float32)  # a traced argument: one compilation for every α

    def value_scores(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Value scores ``[N, K]`` of responses to prompts (a ``values`` head only; see
        ``pluralrm.models.heads.ValuesHead`` for what they identify)."""
        from pluralrm.models.heads import ValuesHead

        if not isinstance(self.net.head, ValuesHead):
            raise ConfigError(
                f"value scores need a model with a 'values' head; this model's head is "
                f"{self.config.head.type!r} (train one with model.head.type=values)"
            )
        _check_lengths(prompts=prompts, responses=responses)
        if not len(prompts):
            return np.zeros((0, self.net.head.num_values), np.float32)
        return self._run_single("value_scores", list(prompts), list(responses), None)

    def predict_preference(
        self,
        prompt: str | Sequence[str],
        a: str | Sequence[str],
        b: str | Sequence[str],
        groups: Mapping[str, str] | Sequence[Mapping[str, str]] | str | None = None,
        fallback: str = "pooled",
    ) -> np.ndarray:
        """P(a ≻ b): ``[N]`` for the given group(s); with ``groups="all"``, a
        :class:`~pluralrm.models.preferences.GroupPreferences` (``[N, G]`` with the labels).

        Strings give N = 1. Per-group temperatures (from calibration) are applied when stored.
        """
        prompts, a, b = (_as_list(x) for x in (prompt, a, b))
        _check_lengths(prompt=prompts, a=a, b=b)
        if isinstance(groups, str) and groups == "all":
            from pluralrm.models.preferences import GroupPreferences

            probs = self._run_pairs(prompts, a, b, None, None, all_groups=True)
            return GroupPreferences(probs, tuple(self.group_labels))
        group_ids = self.encode_groups(groups, len(prompts), fallback)
        return self._run_pairs(prompts, a, b, group_ids, None)

    def predict(self, dataset: Any, use_annotators: bool = False) -> np.ndarray:
        """P(chosen ≻ rejected) ``[N]`` for each row of a ComparisonDataset under its own group
        (and its own annotator when ``use_annotators`` and the head models annotators)."""
        cols = {a: dataset[a] for a in self.schema.attributes if a in dataset.column_names}
        group_ids = self.schema.encode(cols, n=len(dataset))
        annotator_ids = (
            self.encode_annotators(dataset["annotator_id"]) if use_annotators else None
        )
        return self._run_pairs(
            dataset["prompt"], dataset["chosen"], dataset["rejected"], group_ids, annotator_ids
        )

    def predict_all_groups(self, dataset: Any) -> tuple[np.ndarray, list[str]]:
        """P(chosen ≻ rejected) ``[N, G]`` under every group, and the group labels."""
        probs = self._run_pairs(
            dataset["prompt"], dataset["chosen"], dataset["rejected"], None, None, all_groups=True
        )
        return probs, self.group_labels

    # ------------------------------------------------------------------ batching machinery
    def jitted(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``jit_over_state(self.net, fn)``: a jitted pure function ``(nnx.state(self.net), *args)
        -> fn(net, *args)``, built on the first call with ``key`` and kept with the model (so
        callers such as few-shot adaptation compile their passes once per model)."""
        if key not in self._jitted:
            self._jitted[key] = jit_over_state(self.net, fn)
        return self._jitted[key]

    def _fn(self, name: str):
        """The jitted pure function of (state, ...) for one RewardNet method, built once."""
        return self.jitted(name, getattr(RewardNet, name))

    def _packs(self) -> bool:
        """Whether scoring batches are packed (padding-free rows, ``pluralrm.data.packing``):
        the featurizer asks for it. Packed rows make a batch's cost follow its real tokens, so
        a batch of long and short texts no longer pays the longest length for every text."""
        return getattr(self.featurizer, "batching", "padded") == "packed"

    def _batches(self, n: int):
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            padded = padded_size(stop - start, cap=self.batch_size)
            yield start, stop, padded

    def _run_single(self, method, prompts, responses, group_ids, extra=()) -> Any:
        """Runs a per-response method over batches; a method returning a tuple of arrays gives a
        tuple of concatenated arrays. ``extra``: trailing arguments passed as they are."""
        order = self._length_order(prompts, responses)
        if order is not None:  # padded transformer batches: similar lengths together, less padding
            prompts, responses = [prompts[i] for i in order], [responses[i] for i in order]
            group_ids = None if group_ids is None else group_ids[order]
            inverse = np.argsort(order)
            result = self._run_single_ordered(method, prompts, responses, group_ids, extra)
            return jax.tree.map(lambda x: x[inverse], result)
        return self._run_single_ordered(method, prompts, responses, group_ids, extra)

    def _length_order(self, prompts, responses) -> np.ndarray | None:
        """For padded tokenizer batches, the rows by text length (longest first), else None.
        Packed batches need no sorting: their cost follows the real tokens already."""
        if getattr(self.featurizer, "batching", None) != "padded" or len(prompts) <= self.batch_size:
            return None
        return np.argsort([-(len(p) + len(r)) for p, r in zip(prompts, responses)], kind="stable")

    def _run_single_ordered(self, method, prompts, responses, group_ids, extra=()) -> Any:
        state = nnx.state(self.net)
        out = []
        for start, stop, padded in self._batches(len(prompts)):
            if self._packs():
                inputs = packed_inputs(self.featurizer, prompts[start:stop], responses[start:stop], pad_to=padded)
            else:
                inputs = pad_batch(self.featurizer(prompts[start:stop], responses[start:stop]), padded)
            args = [inputs]
            if group_ids is not None:
                args.append(pad_rows(group_ids[start:stop], padded))
            result = self._fn(method)(state, *args, *extra)
            n = stop - start
            out.append(jax.tree.map(lambda x, n=n: np.asarray(x)[:n], result))
        if not out:
            return np.zeros((0,), np.float32)
        return jax.tree.map(lambda *xs: np.concatenate(xs), *out)

    def _run_pairs(self, prompts, a, b, group_ids, annotator_ids, all_groups=False) -> np.ndarray:
        state = nnx.state(self.net)
        prompts, a, b = list(prompts), list(a), list(b)
        temps = self._temperature_vector()
        out = []
        for start, stop, padded in self._batches(len(prompts)):
            if self._packs():
                inputs = packed_pair_inputs(self.featurizer, prompts[start:stop], a[start:stop], b[start:stop],
                                            pad_to=padded)
            else:
                inputs = pad_batch(
                    pair_inputs(self.featurizer, prompts[start:stop], a[start:stop], b[start:stop]),
                    padded,
                )
            if all_groups:
                pg = self._fn("all_groups_pair_gap")(state, inputs)
                t = temps[None, :, None] if pg.log_weights is not None else temps[None, :]
                probs = preference_probability(pg, t)
            else:
                gids = pad_rows(group_ids[start:stop], padded)
                args = [inputs, gids]
                if annotator_ids is not None:
                    args.append(pad_rows(annotator_ids[start:stop], padded))
                pg = self._fn("pair_gap")(state, *args)
                t = self._row_temperatures(group_ids[start:stop], padded)
                if pg.log_weights is not None:
                    t = t[:, None]
                probs = preference_probability(pg, t)
            out.append(np.asarray(probs)[: stop - start])
        if not out:
            return np.zeros((0, self.schema.num_groups) if all_groups else (0,), np.float32)
        return np.concatenate(out)

    def _temperature_vector(self) -> np.ndarray:
        """``[G]`` per-group temperatures (1.0 where none was fitted)."""
        return np.array([self.temperatures.get(lbl, 1.0) for lbl in self.group_labels], np.float32)

    def _row_temperatures(self, group_ids: np.ndarray, padded: int) -> np.ndarray:
        if not self.temperatures:
            return np.ones((padded,), np.float32)
        lookup = {
            tuple(g): self.temperatures.get(lbl, 1.0)
            for g, lbl in zip(self.schema.group_ids().tolist(), self.group_labels)
        }
        t = np.array([lookup.get(tuple(g), 1.0) for g in group_ids.tolist()], np.float32)
        return np.concatenate([t, np.ones((padded - len(t),), np.float32)])


def _as_list(x) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


def _check_lengths(**columns: Sequence[Any]) -> None:
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"inputs differ in length: {lengths}")


# Everything the net and the on-disk format define stays importable from here (train/, score/,
# serve/, cli/, explain and the tests import it so); new code imports it from its own module.
__all__ = [
    "FALLBACKS",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "RewardModel",
    "RewardNet",
    "abstract_array",
    "build_net",
    "check_tree_shapes",
    "preference_probability",
    "read_model_metadata",
    "restore_weights",
    "saved_state",
    "store_temperatures",
    "write_model_metadata",
]
