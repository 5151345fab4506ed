"""Deterministic, resumable training batches.

The dataset is encoded once (group ids, annotator ids, labels, weights: small arrays); texts
stay Arrow string arrays (their bytes only, no Python object per text) and are featurized per
batch, in a background thread: per-step memory is flat in the dataset size, and what grows with
it is the texts' bytes and a few bytes of ids per row.
Epoch e visits the rows in ``permutation(seed, e)``; a *position* (epoch, batch index) fully
determines the next batch, which is what a checkpoint stores to resume exactly. Each batch is
padded to the featurizer's length bucket of its longest text, so the number of distinct shapes
(and compilations) is bounded by the number of buckets; or, with a packing featurizer
(``batching="packed"``), packed padding-free into rows of ``max_length`` tokens (a few bucketed
row counts: see ``pluralrm.data.packing``).

Batch layout (numpy, this process's rows)::

    inputs:        {name: [B, 2, L]}   pair axis: 0 = chosen, 1 = rejected
                   (packed: {name: [R, L]} rows + first/last_index, lengths [B, 2])
    group_ids:     [B, A] int32        0 = unknown
    annotator_ids: [B]    int32        0 = unknown
    label:         [B]    float32      P(chosen ≻ rejected)
    weight:        [B]    float32      0 for padding rows (eval only)
    values:        [B, 2, K] float32   only when value labels are used (0 where missing)
    values_mask:   [B, 2] float32      1 where the response has value labels, else 0
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pluralrm.data.featurize import Featurizer, pair_inputs
from pluralrm.data.packing import is_packed, packed_pair_inputs
from pluralrm.data.schema import GroupSchema
from pluralrm.train.memory import MappedPages

Position = tuple[int, int]


@dataclass(frozen=True)
class EncodedComparisons:
    """A ComparisonDataset with its group/annotator columns turned into ids."""

    prompts: Sequence[str]  # [N]: RowTexts, a pyarrow (Chunked)Array or a list
    chosen: Sequence[str]
    rejected: Sequence[str]
    group_ids: np.ndarray  # [N, A] int32
    annotator_ids: np.ndarray  # [N] int32
    label: np.ndarray  # [N] float32
    weight: np.ndarray  # [N] float32
    values: np.ndarray | None = None  # [N, 2, K] float32, 0 where missing
    values_mask: np.ndarray | None = None  # [N, 2] float32, 1 where labelled

    def __len__(self) -> int:
        return len(self.prompts)


class RowTexts:
    """A text column of a dataset's rows, gathered on demand from the Arrow table underneath.

    Of a memory-mapped table, each chunk's pages are handed back to the OS right after a gather
    read them (``pluralrm.train.memory``): the resident set stays flat over an epoch instead of
    holding the whole file.

    ``column`` is the table's own column (its few record-batch chunks; memory-mapped or not) and
    ``rows [N]`` which of its rows each dataset row is (a ``select``/``split`` indices mapping;
    None when there is none). Reading the column through the dataset instead (``arrow_column``)
    turns an indices mapping into one chunk per row, and every gather then walked all of them.
    """

    def __init__(self, column: Any, rows: np.ndarray | None = None):
        import pyarrow as pa

        self.column = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
        self.rows = rows
        self._offsets = np.cumsum([0] + [len(c) for c in self.column.chunks])  # [chunks + 1]
        self._pages = MappedPages(self.column)  # memory-mapped chunks: released after each read

    def __len__(self) -> int:
        return len(self.column) if self.rows is None else len(self.rows)

    def take(self, rows: np.ndarray) -> Any:
        """``texts[rows]`` as a pyarrow Array, chunk by chunk (no concatenation of the column)."""
        import pyarrow as pa

        rows = np.asarray(rows, np.int64)
        where = rows if self.rows is None else self.rows[rows]
        chunk = np.searchsorted(self._offsets, where, side="right") - 1
        order = np.argsort(chunk, kind="stable")
        pieces = []
        for c, start, stop in _runs(chunk[order]):
            local = where[order[start:stop]] - self._offsets[c]
            pieces.append(self.column.chunk(c).take(pa.array(local)))  # a copy: the chunk may go
            self._pages.release(c)
        if not pieces:
            return pa.array([], self.column.type)
        gathered = pa.concat_arrays(pieces)  # rows in chunk order
        return gathered.take(pa.array(np.argsort(order, kind="stable")))

    def to_pylist(self) -> list[str]:
        return self.take(np.arange(len(self))).to_pylist()


def _runs(sorted_keys: np.ndarray) -> list[tuple[int, int, int]]:
    """``(key, start, stop)`` of each run of equal values in a sorted array."""
    if not len(sorted_keys):
        return []
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    stops = np.r_[starts[1:], len(sorted_keys)]
    return [(int(sorted_keys[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def _table_rows(dataset: Any) -> np.ndarray | None:
    """``[N]`` int64: the row of ``dataset.data`` behind each dataset row (None: the identity)."""
    indices = getattr(dataset, "_indices", None)  # datasets' select/filter/shuffle mapping
    if indices is None:
        return None
    return indices.column(0).to_numpy().astype(np.int64)


def _column(dataset: Any, name: str, rows: np.ndarray | None) -> Any:
    """Column ``name`` in dataset row order as Arrow, read from the table (one gather)."""
    import pyarrow as pa

    column = dataset.data.column(name)
    return column if rows is None else column.take(pa.array(rows))


def _float_column(dataset: Any, name: str, rows: np.ndarray | None) -> np.ndarray:
    """``[N]`` float32 of a numeric column (through float64, as ``np.asarray(list, float32)``)."""
    return _column(dataset, name, rows).to_numpy().astype(np.float32)


def encode_comparisons(
    dataset: Any,
    schema: GroupSchema,
    annotators: Sequence[str],
    value_labels: bool = False,
    num_values: int | None = None,
) -> EncodedComparisons:
    """Encodes a ComparisonDataset for training/eval with the model's vocabularies.

    Whole Arrow columns are read (no Python per row), from memory or memory-mapped alike; texts
    stay in the table (``RowTexts``) and are gathered per batch. With ``value_labels`` and a
    ``chosen_values``/``rejected_values`` column, the per-response value labels are read too
    (see ``value_label_arrays``); ``num_values`` is the K they must have.
    """
    cols = dataset.column_names
    n = len(dataset)
    rows = _table_rows(dataset)
    values = mask = None
    if value_labels and any(c in cols for c in VALUE_COLUMNS):
        labelled = value_label_arrays(dataset, num_values)
        if labelled is not None:
            values, mask = labelled
    encoded = EncodedComparisons(
        prompts=RowTexts(dataset.data.column("prompt"), rows),
        chosen=RowTexts(dataset.data.column("chosen"), rows),
        rejected=RowTexts(dataset.data.column("rejected"), rows),
        group_ids=encode_group_columns(dataset, schema, rows),
        annotator_ids=annotator_codes(dataset, annotators, rows),
        label=_float_column(dataset, "label", rows),
        weight=_float_column(dataset, "weight", rows) if "weight" in cols else np.ones(n, np.float32),
        values=values,
        values_mask=mask,
    )
    # columns read whole (ids, labels, weights) of a memory-mapped table: out of the resident set
    for c in cols:
        MappedPages(dataset.data.column(c)).release()
    return encoded


def encode_group_columns(dataset: Any, schema: GroupSchema, rows: np.ndarray | None = None) -> np.ndarray:
    """``group_ids [N, A]`` int32 of a dataset's group columns, one schema lookup per distinct
    value (not per row). ``rows``: the dataset's indices mapping (``_table_rows``)."""
    from pluralrm.data.columns import value_codes

    ids = np.zeros((len(dataset), schema.num_attributes), np.int32)
    for a, name in enumerate(schema.attributes):
        if name in dataset.column_names and len(dataset):
            uniques, codes = value_codes(_column(dataset, name, rows).fill_null(""))
            ids[:, a] = schema.encode({name: list(uniques)})[:, a][codes]
    return ids


def annotator_codes(dataset: Any, annotators: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """``[N]`` int32: annotator vocabulary id (index + 1) of each row, 0 when unknown or absent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(dataset)
    if not annotators or "annotator_id" not in dataset.column_names or n == 0:
        return np.zeros(n, np.int32)
    found = pc.index_in(_column(dataset, "annotator_id", rows), value_set=pa.array(list(annotators), pa.string()))
    return (found.to_numpy(zero_copy_only=False) if found.null_count == 0
            else pc.fill_null(found, -1).to_numpy(zero_copy_only=False)).astype(np.int32) + 1


def take_texts(texts: Sequence[str], rows: np.ndarray) -> list[str]:
    """``texts[rows]`` as Python strings.

    Arrow arrays are gathered with ``take``; a chunked array chunk by chunk, because Arrow's
    ``ChunkedArray.take`` on strings concatenates every chunk first: on a memory-mapped table
    that read the whole column (GBs at 10M comparisons) for each batch of 64 rows.
    """
    import pyarrow as pa

    if isinstance(texts, pa.ChunkedArray) and texts.num_chunks > 1:
        rows = np.asarray(rows, np.int64)
        offsets = np.cumsum([0] + [len(c) for c in texts.chunks])
        which = np.searchsorted(offsets, rows, side="right") - 1
        out: list[str] = [""] * len(rows)
        for c in np.unique(which).tolist():
            picked = np.flatnonzero(which == c)
            values = texts.chunk(c).take(pa.array(rows[picked] - offsets[c])).to_pylist()
            for i, v in zip(picked.tolist(), values):
                out[i] = v
        return out
    if hasattr(texts, "take"):
        return texts.take(rows).to_pylist()
    return [texts[i] for i in rows]


VALUE_COLUMNS = ("chosen_values", "rejected_values")


def value_label_arrays(dataset: Any, num_values: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-response value labels as ``(values [N, 2, K] float32, mask [N, 2] float32)``.

    A missing column, a null or an empty list means *no labels for that response* (mask 0,
    values 0), so a partly labelled dataset trains the value scores on the labelled responses
    only. Returns None when no response is labelled.

    Raises:
      DataError: a list whose length is not K (``num_values``, or the first labelled row's
        length when None), or a non-finite label; the error names the row (1-based) and column.
    """
    import pyarrow.compute as pc

    from pluralrm.errors import DataError

    n = len(dataset)
    rows = _table_rows(dataset)
    sides = []
    for name in VALUE_COLUMNS:
        if name not in dataset.column_names:
            sides.append((name, np.zeros(n, np.int64), np.zeros(0, np.float64)))
            continue
        col = _column(dataset, name, rows).combine_chunks()
        lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.float64)
        sides.append((name, lengths, flat))
    labelled = [lengths > 0 for _, lengths, _ in sides]
    if not any(m.any() for m in labelled):
        return None
    k = num_values
    if k is None:
        name, lengths, _ = next(s for s, m in zip(sides, labelled) if m.any())
        k = int(lengths[np.argmax(lengths > 0)])
    values = np.zeros((n, 2, k), np.float32)
    mask = np.zeros((n, 2), np.float32)
    for side, ((name, lengths, flat), has) in enumerate(zip(sides, labelled)):
        wrong = np.flatnonzero(has & (lengths != k))
        if wrong.size:
            row = int(wrong[0])
            raise DataError(
                f"has {lengths[row]} value labels where the values head has K={k}; give every "
                f"labelled response K numbers (or none), or set model.head.num_values={lengths[row]}",
                row=row + 1, field=name, value=lengths[row],
            )
        if not np.all(np.isfinite(flat)):
            row = int(np.repeat(np.arange(n), lengths)[np.flatnonzero(~np.isfinite(flat))[0]])
            raise DataError("value labels must be finite numbers", row=row + 1, field=name,
                            value=[float(x) for x in flat[np.repeat(np.arange(n), lengths) == row]])
        values[has, side] = flat.reshape(-1, k)
        mask[has, side] = 1.0
    return values, mask


def packs_batches(featurizer: Featurizer) -> bool:
    """Whether batches for ``featurizer`` use the packed layout (``pluralrm.data.packing``):
    when it asks for it (``batching="packed"``) and this is a single-process run (each process
    packs its own rows into its own number of rows, which multi-process global arrays cannot
    mix; those runs fall back to padded batches, which the model reads as well)."""
    if getattr(featurizer, "batching", "padded") != "packed":
        return False
    import jax

    return jax.process_count() == 1


def make_batch(data: EncodedComparisons, rows: np.ndarray, featurizer: Featurizer, pad_to: int = 0) -> dict:
    """The batch of the given rows (padded with weight-0 rows up to ``pad_to``).

    With a packing featurizer (:func:`packs_batches`) ``inputs`` is the packed layout of
    ``pluralrm.data.packing`` (rows ``[R, max_length]``, pooling indices ``[B, 2]``); the
    packed row count is a multiple of the local device count so the rows split over devices.
    """
    rows = np.asarray(rows)
    texts = (take_texts(data.prompts, rows), take_texts(data.chosen, rows), take_texts(data.rejected, rows))
    if packs_batches(featurizer):
        import jax

        inputs = packed_pair_inputs(featurizer, *texts, pad_to=pad_to, row_multiple=jax.local_device_count())
    else:
        inputs = pair_inputs(featurizer, *texts)
    batch = {
        "inputs": inputs,
        "group_ids": data.group_ids[rows],
        "annotator_ids": data.annotator_ids[rows],
        "label": data.label[rows],
        "weight": data.weight[rows],
    }
    if data.values is not None:
        batch["values"] = data.values[rows]
        batch["values_mask"] = data.values_mask[rows]
    extra = pad_to - len(rows)
    if extra > 0:
        packed = batch.pop("inputs") if is_packed(batch["inputs"]) else None
        batch = _pad(batch, extra)
        if packed is not None:
            batch["inputs"] = packed
    return batch


def _pad(tree: Any, extra: int) -> Any:
    if isinstance(tree, dict):
        return {k: _pad(v, extra) for k, v in tree.items()}
    pad = np.zeros((extra,) + tree.shape[1:], tree.dtype)
    return np.concatenate([tree, pad])


class BatchStream:
    """Training batches at positions (epoch, index); see the module docstring."""

    def __init__(self, data: EncodedComparisons, featurizer: Featurizer, batch_size: int, seed: int,
                 process: tuple[int, int] = (0, 1)):
        """``batch_size`` is the global batch; with ``process=(index, count)`` this process
        yields only its ``batch_size / count`` rows of each global batch (every process walks
        the same permutation, so the global batches equal a single process's)."""
        if len(data) < batch_size:
            from pluralrm.errors import ConfigError

            raise ConfigError(
                f"train.batch_size={batch_size} is larger than this process's training set "
                f"({len(data)} comparisons)"
            )
        self.data = data
        self.featurizer = featurizer
        self.batch_size = batch_size
        self.seed = seed
        self.process = process
        self.batches_per_epoch = len(data) // batch_size
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its permutation)

    def order(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s permutation of the rows, computed once per epoch (at 10M rows a
        permutation costs ~0.3 s and 80 MB: per batch it dominated the step)."""
        cached = self._order
        if cached is None or cached[0] != epoch:
            cached = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.data)))
            self._order = cached
        return cached[1]

    def rows(self, position: Position) -> np.ndarray:
        epoch, index = position
        rows = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        i, count = self.process
        local = self.batch_size // count
        return rows[i * local : (i + 1) * local]

    def next_position(self, position: Position) -> Position:
        epoch, index = position
        index += 1
        return (epoch + 1, 0) if index >= self.batches_per_epoch else (epoch, index)

    def batch(self, position: Position) -> dict:
        return make_batch(self.data, self.rows(position), self.featurizer)

    def iterate(self, start: Position, prefetch: int = 4, place: Callable[[dict], Any] | None = None
                ) -> Iterator[tuple[Position, Any]]:
        """Yields (position, batch) from ``start`` on, featurizing ahead in a thread.

        ``place`` (e.g. a sharded ``device_put``) is applied in that thread too, so the batches
        waiting in the queue are already on the devices when the loop takes them.
        """
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def produce():
            pos = start
            try:
                while not stop.is_set():
                    batch = self.batch(pos)
                    item = (pos, batch if place is None else place(batch))
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    pos = self.next_position(pos)
            except BaseException as e:  # surfaced in the consumer
                q.put(e)

        thread = threading.Thread(target=produce, daemon=True, name="pluralrm-batches")
        thread.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)


def eval_batches(data: EncodedComparisons, featurizer: Featurizer, batch_size: int) -> Iterator[tuple[np.ndarray, dict]]:
    """Every row once, in order, in batches padded to ``batch_size`` (padding has weight 0)."""
    for start in range(0, len(data), batch_size):
        rows = np.arange(start, min(start + batch_size, len(data)))
        yield rows, make_batch(data, rows, featurizer, pad_to=batch_size)
