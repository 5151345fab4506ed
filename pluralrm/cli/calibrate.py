"""``pluralrm calibrate``: disagreement and calibration report for comparison data and a model's
predictions on it.

    pluralrm calibrate --data test.jsonl --predictions preds.npy --by country --out report/

``--predictions`` holds one P(chosen ≻ rejected) per data row, in data order:

- ``.npy``: ``[N]`` predictions under each row's own group;
- ``.npz``: ``predictions [N]`` and/or ``group_predictions [N, G]`` with ``group_labels [G]``;
- ``.parquet`` / ``.csv`` / ``.jsonl``: a ``prediction`` column, and/or one column per group
  named by its label (``country=NG``) with the prediction under that group.

Without ``--predictions`` only the data-level sections (agreement, divergence) are written.
Writes ``report.md``, ``report.html``, ``report.json`` and ``figures/*.png`` to ``--out``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

PREDICTION_FORMATS = (".npy", ".npz", ".parquet", ".csv", ".jsonl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="comparisons (JSONL, JSON, CSV/TSV, Parquet, saved dataset)")
    parser.add_argument("--predictions", help="model predictions per row: " + ", ".join(PREDICTION_FORMATS))
    parser.add_argument("--by", help="comma-separated group attribute(s) (default: every group column)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0: no intervals)")
    parser.add_argument("--unit", choices=("annotator", "item"), default="annotator",
                        help="what the bootstrap resamples")
    parser.add_argument("--permutations", type=int, default=1000, help="permutations per test (0: no tests)")
    parser.add_argument("--level", choices=("nominal", "ordinal", "interval", "ratio"), default="interval",
                        help="Krippendorff level of measurement of the votes")
    parser.add_argument("--min-votes", type=int, default=3, help="votes a group needs on a unit to compare it")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from pluralrm.calibration import analyze, write_report
    from pluralrm.data import load

    data = load(args.data)
    by = None if not args.by else [b.strip() for b in args.by.split(",") if b.strip()]
    predictions = group_predictions = group_labels = None
    if args.predictions:
        predictions, group_predictions, group_labels = load_predictions(args.predictions, data.num_rows)
    report = analyze(data, predictions=predictions, by=by, group_predictions=group_predictions,
                     group_labels=group_labels, bootstrap=args.bootstrap, unit=args.unit, seed=args.seed,
                     level=args.level, min_votes=args.min_votes, permutations=args.permutations)
    paths = write_report(report, args.out)
    print(f"wrote {paths['html']} ({report.settings['rows']:,} comparisons, {len(report.settings['groups'])} groups)")
    return 0


def load_predictions(path: str | Path, num_rows: int):
    """Reads a predictions file (module docstring).

    Returns:
      ``(predictions [N] or None, group_predictions [N, G] or None, group_labels or None)``.

    Raises:
      DataError: unreadable file, unknown format, no prediction column, or a row count that
        differs from the data's.
    """
    import numpy as np
    import pyarrow as pa

    from pluralrm.errors import DataError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PREDICTION_FORMATS:
        raise DataError(f"unknown predictions format {suffix!r}; use one of {PREDICTION_FORMATS}", file=str(path))
    if not path.exists():
        raise DataError("predictions file not found", file=str(path))
    predictions = group_predictions = labels = None
    try:
        if suffix == ".npy":
            predictions = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                predictions = archive["predictions"] if "predictions" in archive else None
                if "group_predictions" in archive:
                    group_predictions = archive["group_predictions"]
                    if "group_labels" not in archive:
                        raise DataError("group_predictions needs group_labels in the same .npz", file=str(path),
                                        field="group_labels")
                    labels = [str(x) for x in archive["group_labels"]]
        else:
            import pyarrow.csv
            import pyarrow.json
            import pyarrow.parquet

            read = {".parquet": pyarrow.parquet.read_table, ".csv": pyarrow.csv.read_csv,
                    ".jsonl": pyarrow.json.read_json}[suffix]
            table = read(str(path))
            column = lambda name: table.column(name).to_numpy().astype(np.float64)  # noqa: E731
            if "prediction" in table.column_names:
                predictions = column("prediction")
            labels = [c for c in table.column_names if "=" in c] or None
            if labels:
                group_predictions = np.stack([column(c) for c in labels], axis=1)
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot read predictions: {e}", file=str(path)) from None
    if predictions is None and group_predictions is None:
        raise DataError("no predictions found: give a 'prediction' column (or array), or per-group columns "
                        "named like 'country=NG'", file=str(path))
    for name, array in (("predictions", predictions), ("group_predictions", group_predictions)):
        if array is not None and np.shape(array)[0] != num_rows:
            raise DataError(f"{name} has {np.shape(array)[0]} rows but the data has {num_rows}; give one "
                            "prediction per data row, in data order", file=str(path), field=name)
    if predictions is not None and np.ndim(predictions) != 1:
        raise DataError(f"predictions must be one value per row, got shape {np.shape(predictions)}", file=str(path),
                        field="predictions")
    return predictions, group_predictions, labels
