"""Anthropic HH-RLHF (Bai et al. 2022, "Training a Helpful and Harmless Assistant with RLHF").

Each record has ``chosen`` and ``rejected``: whole transcripts
``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` that share everything before the final assistant
turn. The prompt is that shared conversation up to the last ``"\\n\\nAssistant:"`` (keeping
its ``Human:``/``Assistant:`` tags, without the leading blank line), the responses are the
two final assistant turns (:func:`pluralrm.data.dialogue.split_transcript`). Labels are 1.0;
there are no annotator or group fields, and any other column is left out.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pluralrm.data.badrows import RowProblem
from pluralrm.data.dialogue import split_transcript
from pluralrm.data.readers import RawTable, read_source
from pluralrm.data.validate import to_comparisons
from pluralrm.errors import DataError


def hh_rlhf(source: Any, on_bad_row: str = "error", format: str | None = None):
    """Loads HH-RLHF records (e.g. ``harmless-base/train.jsonl.gz``) as a ComparisonDataset.

    Args:
      source: a path (JSON Lines, optionally ``.gz``, or any format ``load`` reads) or
        in-memory records with ``chosen`` and ``rejected`` transcripts.
      on_bad_row: ``"error"`` or ``"skip"`` (e.g. for the few records whose final response is
        empty).
      format: as in :func:`pluralrm.data.load`.

    Returns:
      A ComparisonDataset (prompt, chosen, rejected, label 1.0, annotator_id "", weight 1.0).
    """
    from pluralrm.data.io import to_dataset

    raw = read_source(source, format=format)
    t = raw.table
    if raw.table.num_rows == 0:
        raise DataError("has no rows", file=raw.source)
    for name in ("chosen", "rejected"):
        if name not in t.column_names:
            raise DataError(f"an HH-RLHF record needs {name!r} (fields: {t.column_names})",
                            file=raw.source, row=raw.locate(0), field=name)
    problems = dict(raw.problems)
    texts: list[tuple[str | None, str | None, str | None]] = []
    for i, pair in enumerate(zip(t.column("chosen").to_pylist(), t.column("rejected").to_pylist())):
        try:
            texts.append((None, None, None) if i in problems else split_transcript(*pair))
        except RowProblem as e:
            problems[i] = e
            texts.append((None, None, None))
    columns = {name: pa.array([row[j] for row in texts], pa.string())
               for j, name in enumerate(("prompt", "chosen", "rejected"))}
    table, _ = to_comparisons(RawTable(pa.table(columns), raw.source, raw.locate, problems),
                              groups=(), on_bad_row=on_bad_row)
    return to_dataset(table)
