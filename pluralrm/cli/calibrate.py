"""``pluralrm calibrate``: disagreement and calibration report for comparison data and a model's
predictions on it.

    pluralrm calibrate --data test.jsonl --predictions preds.npy --by country --out report/
    pluralrm calibrate --checkpoint runs/x --data test.jsonl --by country --out report/
    pluralrm calibrate --checkpoint runs/x --data val.jsonl --fit-temperatures --out report/

``--checkpoint`` computes the predictions with a trained model (best checkpoint of a run, or a
saved model directory): under each row's own group, and under every group of ``--by``. With
``--fit-temperatures`` the data should be a *validation* split: per-group temperatures are fitted
on it (NLL of σ(gap / T_g), no bias) and stored in the model's ``model.json``, so every later
``predict``/``predict_preference``/server answer is calibrated. A values model also gets a
figure of its group × value weight table.

``--predictions`` holds one P(chosen ≻ rejected) per data row, in data order:

- ``.npy``: ``[N]`` predictions under each row's own group;
- ``.npz``: ``predictions [N]`` and/or ``group_predictions [N, G]`` with ``group_labels [G]``;
- ``.parquet`` / ``.csv`` / ``.jsonl``: a ``prediction`` column, and/or one column per group
  named by its label (``country=NG``) with the prediction under that group.

Without ``--predictions`` only the data-level sections (agreement, divergence) are written.
Writes ``report.md``, ``report.html``, ``report.json`` and ``figures/*.png`` to ``--out`` (a
non-empty ``--out`` is refused unless ``--force``, as ``pluralrm simulate`` does), shows each
stage on stderr while it works and ends with a short summary: alpha, the largest between-group
gaps, calibration and disagreement retention, and any section that could not be computed with
the reason and what to change. Rows of groups the model never saw are predicted with the shared
reward (the documented fallback) and reported on their own.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

PREDICTION_FORMATS = (".npy", ".npz", ".parquet", ".csv", ".jsonl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="comparisons (JSONL, JSON, CSV/TSV, Parquet, saved dataset)")
    parser.add_argument("--predictions", help="model predictions per row: " + ", ".join(PREDICTION_FORMATS))
    parser.add_argument("--checkpoint", help="a run or model directory: compute the predictions with it")
    parser.add_argument("--step", default="best", help="with --checkpoint: best, latest or a step number")
    parser.add_argument("--fit-temperatures", action="store_true",
                        help="with --checkpoint: fit per-group temperatures on --data and store them in the model")
    parser.add_argument("--by", help="comma-separated group attribute(s) (default: every group column)")
    parser.add_argument("--out", required=True, help="output directory (must be empty or absent)")
    parser.add_argument("--force", action="store_true", help="replace the report in a non-empty --out")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0: no intervals)")
    parser.add_argument("--unit", choices=("annotator", "item"), default="annotator",
                        help="what the bootstrap resamples")
    parser.add_argument("--permutations", type=int, default=1000, help="permutations per test (0: no tests)")
    parser.add_argument("--level", choices=("nominal", "ordinal", "interval", "ratio"), default="interval",
                        help="Krippendorff level of measurement of the votes")
    parser.add_argument("--min-votes", type=int, default=None,
                        help="votes a group needs on a unit to compare it (default: 3, 2 or 1, the largest with "
                             "which most pairs of groups share enough units; the report says which)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from pluralrm.calibration import analyze, write_report
    from pluralrm.cli.console_warnings import printed_warnings
    from pluralrm.data import load
    from pluralrm.errors import ConfigError

    if args.predictions and args.checkpoint:
        raise ConfigError("give --predictions or --checkpoint, not both")
    if args.fit_temperatures and not args.checkpoint:
        raise ConfigError("--fit-temperatures needs --checkpoint")
    if args.min_votes is not None and args.min_votes < 1:
        raise ConfigError(f"--min-votes must be >= 1, got {args.min_votes}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise ConfigError(f"--out {out} is not empty; pass --force to replace the report there")
    stage = _Stages()
    with printed_warnings("calibrate"):
        stage(f"loading {args.data}")
        data = load(args.data)
        by = None if not args.by else [b.strip() for b in args.by.split(",") if b.strip()]
        predictions = group_predictions = group_labels = None
        unseen: list[str] = []
        extra = ()
        if args.predictions:
            predictions, group_predictions, group_labels = load_predictions(args.predictions, data.num_rows)
        elif args.checkpoint:
            from pluralrm.models import RewardModel

            stage(f"loading the model {args.checkpoint}")
            model = RewardModel.load(args.checkpoint, checkpoint=args.step)
            if by is None:
                by = [a for a in model.schema.attributes if a in data.column_names]
            if args.fit_temperatures:
                stage("fitting temperatures")
                fitted = fit_model_temperatures(model, data)
                from pluralrm.models.model_files import store_temperatures

                store_temperatures(args.checkpoint, fitted)
                print("fitted temperatures: " + ", ".join(f"{g} {t:.3f}" for g, t in fitted.items()))
            stage(f"predicting {data.num_rows:,} comparisons")
            predictions, group_predictions, group_labels, unseen = model_predictions(model, data, by)
            from pluralrm.calibration.hidden_context import hidden_context_section

            extra = value_weight_section(model) + hidden_context_section(model, data, args.bootstrap, args.seed)
        report = analyze(data, predictions=predictions, by=by, group_predictions=group_predictions,
                         group_labels=group_labels, bootstrap=args.bootstrap, unit=args.unit, seed=args.seed,
                         level=args.level, min_votes=args.min_votes, permutations=args.permutations,
                         unseen_groups=unseen, progress=stage)
        stage("writing the report")
        paths = write_report(report, out, extra=extra)
    stage.done()
    print_summary(report)
    print(f"wrote {paths['html']} ({report.settings['rows']:,} comparisons, {len(report.settings['groups'])} groups)")
    return 0


class _Stages:
    """Progress on stderr: one line per stage with the seconds elapsed."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, name: str) -> None:
        print(f"pluralrm calibrate: [{time.perf_counter() - self.start:5.1f} s] {name}", file=sys.stderr, flush=True)

    def done(self) -> None:
        self("done")


def print_summary(report, top: int = 3) -> None:
    """A few lines for the terminal: alpha, the largest between-group gaps, calibration and
    retention overall and per group, and each section that could not be computed (as warnings)."""
    import numpy as np

    s = report.settings
    print(f"alpha ({s['level']}) over all votes: {_number(s['alpha'])}; min_votes {s['min_votes']}")
    from pluralrm.calibration.analyze import MIN_SHARED_UNITS

    tests = report.group_tests.columns
    gaps = np.sqrt(np.maximum(np.asarray(tests["gap2"], np.float64), 0.0))
    units = np.asarray(tests["units"], np.float64)
    measured = np.isfinite(gaps) & (units >= MIN_SHARED_UNITS)  # a gap over 3 units is mostly noise
    if not measured.any():
        measured = np.isfinite(gaps)
    order = [i for i in np.argsort(-np.where(measured, gaps, -1.0), kind="stable") if measured[i]][:top]
    if order:
        print("largest between-group gaps (RMS preference gap over shared units, Holm p): " + "; ".join(
            f"{tests['group_a'][i]} vs {tests['group_b'][i]} {gaps[i]:.3f} over {int(units[i])} "
            f"(p {_number(tests['p_holm'][i])})" for i in order))
    if report.calibration is not None:
        cal = report.calibration.columns
        rows = list(cal["group"])
        i = rows.index("all")
        print(f"model overall: accuracy {_number(cal['accuracy'][i])}, ECE {_number(cal['ece'][i])}"
              + "".join(f"; {name}: accuracy {_number(cal['accuracy'][j])} on {int(cal['rows'][j]):,} rows"
                        for j, name in enumerate(rows) if name.startswith("unseen")))
    if report.fidelity is not None and "fidelity" not in (s.get("unavailable") or {}):
        fid = report.fidelity.columns
        print("disagreement retention: " + ", ".join(
            f"{g} {_number(r)}" for g, r in zip(fid["group"], fid["retention"])))
    for section, why in (s.get("unavailable") or {}).items():
        print(f"pluralrm calibrate: warning: {section} not computed: {why}", file=sys.stderr)


def _number(x) -> str:
    import math

    return "n/a" if x is None or not math.isfinite(float(x)) else f"{float(x):.3f}"


def model_predictions(model, data, by):
    """P(chosen ≻ rejected) per row under its own group ``[N]`` and under every ``by`` group
    ``[N, G]`` with the labels, and the labels of the data's groups the model never saw. When
    ``by`` is exactly the model's attributes, one backbone pass scores all groups; for a subset
    (``country`` of a country × language model) each group is scored with the other attributes
    unknown. A group of the data that the model never saw is scored as the model scores any
    unseen group value: with the shared (population) reward (``fallback="pooled"``)."""
    import warnings

    import numpy as np

    from pluralrm.calibration.votes import group_votes

    data_labels = list(group_votes(data, by).group_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the unseen groups are reported below, once
        own = model.predict(data)
        if sorted(by) == sorted(model.schema.attributes):
            table, labels = model.predict_all_groups(data)
            labels = [",".join(kv for kv in label.split(",") if kv.split("=")[0] in by) for label in labels]
            columns, known = [np.asarray(table)], set(labels)
        else:
            columns, labels, known = [], [], set()
        unseen = [label for label in data_labels if not _model_knows(model, label)]
        for label in data_labels:
            if label in known:
                continue
            spec = dict(kv.split("=", 1) for kv in label.split(","))
            p = model.predict_preference(data["prompt"], data["chosen"], data["rejected"], groups=spec,
                                         fallback="pooled")
            columns.append(np.asarray(p)[:, None])
            labels.append(label)
    if unseen:
        print(f"pluralrm calibrate: warning: the model never saw {', '.join(unseen)}: those rows are predicted "
              "with the shared (population) reward and reported separately", file=sys.stderr)
    return own, np.concatenate(columns, axis=1), labels, unseen


def _model_knows(model, label: str) -> bool:
    """Whether every attribute value of a group label is in the model's schema."""
    values = dict(kv.split("=", 1) for kv in label.split(","))
    unknown = model.schema.unknown_values({a: [v] for a, v in values.items() if a in model.schema.attributes})
    return not any(unknown.values()) and all(a in model.schema.attributes for a in values)


def fit_model_temperatures(model, data) -> dict[str, float]:
    """Per-group temperatures fitted on ``data`` (the model's groups with enough rows)."""
    import numpy as np

    from pluralrm.calibration import fit_temperatures

    model.temperatures = {}
    p = np.clip(model.predict(data), 1e-7, 1 - 1e-7)
    logits = np.log(p) - np.log1p(-p)
    row_groups = model.schema.encode({a: data[a] for a in model.schema.attributes if a in data.column_names},
                                     n=len(data))
    index = {tuple(g): i for i, g in enumerate(model.schema.group_ids().tolist())}
    group = np.array([index.get(tuple(g), -1) for g in row_groups.tolist()])
    keep = group >= 0
    temps = fit_temperatures(logits[keep], np.asarray(data["label"], np.float64)[keep], group[keep],
                             num_groups=len(index), min_count=20)
    fitted = {label: float(t) for label, t in zip(model.group_labels, temps) if np.isfinite(t) and t > 0}
    skipped = [label for label in model.group_labels if label not in fitted]
    if skipped:
        print(f"no temperature for {skipped}: the model's gaps do not predict these groups' labels on this "
              "data (T would be infinite); they keep T = 1")
    return fitted


def value_weight_section(model):
    """A report section with a values model's group × value weight table (else nothing)."""
    if model.config.head.type != "values":
        return ()
    import tempfile
    from pathlib import Path

    from pluralrm.calibration.report import Figure, Section
    from pluralrm.explain import group_value_weights, plot_group_value_weights

    table = group_value_weights(model)
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_group_value_weights(table, Path(tmp) / "value_weights.png").read_bytes()
    section = Section("Values", "How much each group weighs each value (the values head's w_g).", ())
    return ((section, (Figure("value_weights", "Value weights per group.", png, "values", 900),)),)


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
