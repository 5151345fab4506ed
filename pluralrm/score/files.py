"""Scoring candidate files in constant memory: what ``pluralrm score`` runs.

The input (JSONL/CSV/Parquet rows of prompt, response and optionally group columns) is read a
chunk at a time (:mod:`pluralrm.score.candidates`), scored with one batched model call per
chunk, and written a chunk at a time to a temporary file renamed over the output at the end
(:mod:`pluralrm.score.output`).

Which groups score a row:

- ``all_groups``: every group of the model's schema, one column ``score[<group>]`` each;
- ``groups``: the given group specs (one column ``score`` for a single group, else one per group);
- neither: each row's own group, from columns named like the model's group attributes
  (``country``, ``language``...; a missing column or empty value is unknown → the shared reward).

With an aggregation rule, *candidate sets* are runs of consecutive rows with the same prompt
(or ``set_column`` value): the file should list each prompt's candidates together. Each row
then gets ``aggregate`` (its score under the rule), ``best`` (True for the chosen candidate of
its set) and, on the chosen row, ``decisive`` (the decisive group; see
:mod:`pluralrm.score.best_of_n`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.data.schema import parse_group_spec
from pluralrm.errors import ConfigError, DataError
from pluralrm.score.best_of_n import select
from pluralrm.score.candidates import CandidateChunk, CandidateReader
from pluralrm.score.normalize import GroupStats, StatsAccumulator
from pluralrm.score.output import AtomicTableWriter
from pluralrm.score.rules import get_rule, resolve_params
from pluralrm.score.table import check_score_options, group_scores, rule_weights, spec_label


@dataclass(frozen=True)
class ScoreFileConfig:
    """What ``score_file`` scores and how (see the module docstring).

    Attributes:
      groups: group specs (``"country=NG,language=yo"``); empty = per-row group columns.
      all_groups: score under every group of the schema.
      aggregate: aggregation rule over the groups (``pluralrm.score.RULES``) or None.
      weights: ``"population"`` (training shares), explicit weights per group, or None.
      normalize: per-group standardisation before aggregating (``none``/``center``/``zscore``);
        statistics over each candidate set, or over the reference file given to score_file.
      params: rule parameters, e.g. ``(("q", 0.1),)``.
      fallback: unseen group values: ``pooled`` (warns), ``error`` (a bad row), ``nearest``.
      prompt_column, response_column: input column names; id_column: a column copied to
        the output; set_column: what delimits candidate sets (default: the prompt column).
      chunk_size: rows per chunk (and per model call); on_bad_row: ``error`` or ``skip``.
      max_set_size: the largest candidate set held in memory.
      risk: α in (0, 1): score by the lower α-quantile of the predicted reward distribution
        (distributional heads; ``RewardModel.score``), None = the mean.
    """

    groups: tuple[str, ...] = ()
    all_groups: bool = False
    aggregate: str | None = None
    weights: str | tuple[float, ...] | None = None
    normalize: str = "none"
    params: tuple[tuple[str, float], ...] = ()
    fallback: str = "pooled"
    prompt_column: str = "prompt"
    response_column: str = "response"
    id_column: str | None = None
    set_column: str | None = None
    chunk_size: int = 1024
    on_bad_row: str = "error"
    max_set_size: int = 100_000
    risk: float | None = None

    def __post_init__(self) -> None:
        if self.groups and self.all_groups:
            raise ConfigError("give either groups or all_groups, not both")
        if self.aggregate is not None:
            resolve_params(get_rule(self.aggregate), dict(self.params))
            if not (self.groups or self.all_groups):
                raise ConfigError("an aggregation rule needs the groups to aggregate over: --all-groups or --groups")
        elif self.params or self.weights is not None or self.normalize != "none":
            raise ConfigError("weights, normalisation and rule parameters apply to an aggregation rule (--aggregate)")
        check_score_options(self.fallback, self.normalize, self.weights)
        if self.max_set_size < 1:
            raise ConfigError("max_set_size must be >= 1")


@dataclass(frozen=True)
class ScoreFileReport:
    """What ``score_file`` did: rows written, bad rows skipped (and the first few), chunks read."""

    output: Path
    rows: int
    skipped: int
    bad_rows: tuple[str, ...]
    chunks: int
    columns: tuple[str, ...]


def score_file(
    model: Any,
    input: str | Path,
    output: str | Path,
    config: ScoreFileConfig = ScoreFileConfig(),
    reference: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreFileReport:
    """Scores every row of a candidate file and writes the scores (see the module docstring).

    Args:
      model: a RewardModel.
      input: JSONL/CSV/Parquet file of candidates; output: JSONL/CSV/Parquet destination
        (written atomically: nothing appears on failure).
      config: :class:`ScoreFileConfig`.
      reference: a candidate file whose per-group statistics normalise the scores
        (``config.normalize``); default: each candidate set's own statistics.
      progress: called after each chunk with (position, total) in the reader's unit.

    Returns:
      :class:`ScoreFileReport`.
    """
    if Path(input).absolute() == Path(output).absolute():
        raise ConfigError(f"the output {output} is the input file; write the scores elsewhere")
    specs = list(config.groups)
    if config.risk is not None:  # a model without a distribution fails before reading
        model.check_risk(config.risk)
    for spec in specs:  # unknown attributes and (fallback="error") unseen values fail before reading
        model.encode_groups(spec, 1, config.fallback)
    labels = model.group_labels if config.all_groups else [spec_label(s) for s in specs] or ["score"]
    score_columns = [f"score[{lbl}]" for lbl in labels] if config.all_groups or len(specs) > 1 else ["score"]
    row_groups = not (specs or config.all_groups)
    reader = _reader(model, input, config, row_groups)
    stats = _reference_stats(model, reference, config) if reference is not None else None
    weights = _weights(model, config, specs)

    schema = {"row": "int", **({config.id_column: "str"} if config.id_column else {}),
              config.prompt_column: "str", config.response_column: "str"}
    if row_groups:
        schema.update({a: "str" for a in model.schema.attributes})
    schema.update({c: "float" for c in score_columns})
    if config.aggregate is not None:
        schema.update({"aggregate": "float", "best": "bool", "decisive": "str"})
    set_key = config.set_column or config.prompt_column

    chunks: Iterator[CandidateChunk] = iter(reader)
    if config.aggregate is not None:
        chunks = whole_sets(chunks, set_key, config.max_set_size, str(input))
    n_chunks = 0
    with AtomicTableWriter(output, schema) as writer:
        for chunk in chunks:
            n_chunks += 1
            table = _score_chunk(model, chunk, config, specs, row_groups)
            out: dict[str, list[Any]] = {"row": chunk.rows}
            out.update({c: chunk.columns[c] for c in schema if c in chunk.columns})
            if config.id_column:
                out[config.id_column] = [None if v is None else str(v) for v in chunk.columns[config.id_column]]
            out.update({c: table[:, k].tolist() for k, c in enumerate(score_columns)})
            if config.aggregate is not None:
                out.update(_select_runs(table, labels, chunk.columns[set_key], config, weights, stats))
            writer.write(out)
            if progress is not None:
                progress(reader.position, reader.total)
    return ScoreFileReport(
        Path(output).absolute(), writer.rows, reader.skipped, tuple(str(e) for e in reader.bad_rows), n_chunks,
        tuple(score_columns),
    )


def whole_sets(chunks: Iterator[CandidateChunk], key: str, max_set_size: int, source: str) -> Iterator[CandidateChunk]:
    """Re-cuts chunks so that no run of equal ``key`` values (a candidate set) spans two."""
    carry: CandidateChunk | None = None
    for chunk in chunks:
        chunk = chunk if carry is None else carry.extend(chunk)
        keys = chunk.columns[key]
        start = len(keys) - 1
        while start > 0 and keys[start - 1] == keys[-1]:
            start -= 1
        if start > 0:
            yield chunk.take(0, start)
        carry = chunk.take(start)
        if len(carry) > max_set_size:
            raise DataError(
                f"a candidate set (consecutive rows with the same {key!r}) exceeds {max_set_size} rows; "
                "put a set column that changes between prompts, or raise max_set_size",
                file=source, row=carry.rows[0], field=key,
            )
    if carry is not None and len(carry):
        yield carry


def _reader(model, path, config: ScoreFileConfig, row_groups: bool) -> CandidateReader:
    keep = [c for c in (config.id_column, config.set_column) if c]
    check = _unseen_check(model.schema) if row_groups and config.fallback == "error" else None
    return CandidateReader(
        Path(path), required=[config.prompt_column, config.response_column],
        optional=list(model.schema.attributes) if row_groups else [], keep=keep,
        chunk_size=config.chunk_size, on_bad_row=config.on_bad_row, check=check,
    )


def _unseen_check(schema) -> Callable[[dict[str, Any]], None]:
    def check(row: dict[str, Any]) -> None:
        for attr in schema.attributes:
            value = row.get(attr, "")
            if value and schema.value_id(attr, value) == 0:
                vocab = schema.vocabularies[schema.attributes.index(attr)]
                raise DataError(f"group value is not in the model's schema (known: {list(vocab)[:20]})",
                                field=attr, value=value)

    return check


def _score_chunk(model, chunk: CandidateChunk, config: ScoreFileConfig, specs, row_groups: bool) -> np.ndarray:
    prompts, responses = chunk.columns[config.prompt_column], chunk.columns[config.response_column]
    if row_groups:
        attrs = model.schema.attributes
        per_row = [{a: chunk.columns[a][i] for a in attrs} for i in range(len(chunk))]
        risk = {} if config.risk is None else {"risk": config.risk}
        return np.asarray(model.score(prompts, responses, groups=per_row, fallback=config.fallback, **risk))[:, None]
    groups = None if config.all_groups else (specs[0] if len(specs) == 1 else specs)
    return group_scores(model, prompts, responses, groups, config.fallback, config.risk)[0]


def _select_runs(table, labels, keys, config: ScoreFileConfig, weights, stats) -> dict[str, list[Any]]:
    aggregate, best, decisive = [], [], []
    start = 0
    params = dict(config.params)
    for stop in [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]:
        s = select(table[start:stop], config.aggregate, weights, group_labels=labels,
                   normalize=config.normalize, reference=stats, **params)
        aggregate.extend(s.scores.tolist())
        best.extend(i == s.index for i in range(stop - start))
        decisive.extend((s.decisive_label or "") if i == s.index else "" for i in range(stop - start))
        start = stop
    return {"aggregate": aggregate, "best": best, "decisive": decisive}


def _weights(model, config: ScoreFileConfig, specs) -> np.ndarray | None:
    if config.aggregate is None:
        return None
    return rule_weights(model.schema, config.aggregate, config.weights, specs or None)


def _reference_stats(model, path, config: ScoreFileConfig) -> GroupStats:
    if config.normalize == "none":
        raise ConfigError("a reference set is used for normalisation: also give --normalize center|zscore")
    reader = CandidateReader(Path(path), required=[config.prompt_column, config.response_column],
                             chunk_size=config.chunk_size, on_bad_row=config.on_bad_row)
    acc = StatsAccumulator()
    for chunk in reader:
        acc.update(_score_chunk(model, chunk, config, list(config.groups), False))
    return acc.result()


def parse_groups_option(values: list[str] | None) -> tuple[str, ...]:
    """``--groups`` values (repeatable; each one group) → canonical specs, checked for syntax."""
    specs = []
    for v in values or ():
        if not parse_group_spec(v):
            raise ConfigError(f"--groups {v!r} names no group; write attribute=value[,attribute=value]")
        specs.append(spec_label(v))
    return tuple(specs)


__all__ = ["ScoreFileConfig", "ScoreFileReport", "parse_groups_option", "score_file", "whole_sets"]
