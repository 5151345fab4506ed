"""``pluralrm data``: inspect, split and convert comparison data.

    pluralrm data summary  FILE [--groups a,b] [--columns our=their,...] [--on-bad-row skip]
    pluralrm data validate FILE [same options]
    pluralrm data split    FILE --out DIR [--by item] [--test-size 0.2] [--holdout V] [same options]
    pluralrm data candidates FILE --out candidates.jsonl [same options]

``summary`` prints sizes, group values, label kinds and between-group disagreement
(:mod:`pluralrm.data.summary`); ``validate`` checks every row and exits 1 with the error (or,
with ``--on-bad-row skip``, the count of bad rows and the first reasons) when the data is bad.
``split`` writes ``DIR/train.parquet`` and ``DIR/test.parquet`` (:func:`pluralrm.data.split`);
``candidates`` writes each distinct (prompt, response) of the comparisons as one JSON line with
``prompt``, ``response`` and ``candidate_id``, the input ``pluralrm score`` reads. FILE may also
be a folder written by ``pluralrm simulate`` (its ``data.parquet`` is read). ``--adapter`` reads
a known public format instead of the ComparisonDataset columns. Outputs are written atomically
and an existing one is refused unless ``--force``, as ``simulate`` and ``calibrate`` do.
"""
from __future__ import annotations

import argparse
from pathlib import Path

ADAPTER_NAMES = ("hh-rlhf", "prism", "dices", "popquorn", "community-alignment")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("summary", "print what the data holds"),
                            ("validate", "check every row; exit 1 on bad data"),
                            ("split", "write train.parquet and test.parquet (held out by item, annotator, ...)"),
                            ("candidates", "write the distinct (prompt, response) pairs as candidates for `score`")):
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.add_argument("file", help="JSONL, JSON, CSV/TSV, Parquet file, saved dataset directory or a "
                       "`pluralrm simulate` folder")
        if name == "split":
            p.add_argument("--out", required=True, help="directory for train.parquet and test.parquet")
            p.add_argument("--by", default="item", help="what the split keeps together: random, annotator, item "
                           "(default) or a group attribute")
            p.add_argument("--test-size", type=float, default=0.2, help="share of units held out (default 0.2)")
            p.add_argument("--holdout", help="with --by ATTRIBUTE: value(s) held out as the test split, e.g. EG "
                           "(groups the model will never see)")
            p.add_argument("--seed", type=int, default=0)
        if name == "candidates":
            p.add_argument("--out", required=True, help="candidates file (.jsonl, .csv or .parquet)")
        if name in ("split", "candidates"):
            p.add_argument("--force", action="store_true", help="replace an existing --out")
        p.add_argument("--groups", help="comma-separated group attributes to keep (default: every "
                       "non-reserved column; '' for none)")
        p.add_argument("--columns", help="our=their,... for columns named differently, "
                       "e.g. chosen=response_a,rejected=response_b")
        p.add_argument("--on-bad-row", choices=("error", "skip"), default="error")
        p.add_argument("--extra", choices=("error", "ignore"), default="error",
                       help="with --groups: undeclared columns are an error or dropped")
        p.add_argument("--format", help="file format when the extension does not say it")
        p.add_argument("--split", help="split of a saved DatasetDict directory")
        p.add_argument("--adapter", choices=ADAPTER_NAMES, help="read a known public dataset's format")
        p.add_argument("--survey", help="PRISM survey.jsonl (with --adapter prism)")


def run(args: argparse.Namespace) -> int:
    import warnings

    from pluralrm.cli.console_warnings import printed_warnings
    from pluralrm.data.badrows import DataWarning
    from pluralrm.data.summary import summarize

    if args.action in ("split", "candidates"):
        _check_out(Path(args.out), args.force)
    with printed_warnings("data"):
        if args.action == "validate" and args.adapter is None:
            warnings.simplefilter("ignore", DataWarning)  # the report below says it instead
        dataset, report = _load(args)
        if args.action == "summary":
            print(summarize(dataset).to_text())
            return 0
    if args.action == "split":
        return _split(dataset, args)
    if args.action == "candidates":
        return _candidates(dataset, args)
    if report is not None and (report.rows_skipped or report.dropped_columns):
        print(report.to_text())
        return 1 if report.rows_skipped else 0
    print(f"{args.file}: OK, {dataset.num_rows:,} comparisons")
    return 0


def _load(args: argparse.Namespace):
    """(dataset, LoadReport or None) from the command line's options."""
    from pluralrm.data import adapters, load_with_report, parse_group_spec
    from pluralrm.errors import ConfigError, DataError

    groups = None if args.groups is None else [g.strip() for g in args.groups.split(",") if g.strip()]
    if args.adapter is None:
        if args.survey:
            raise ConfigError("--survey goes with --adapter prism")
        try:
            columns = parse_group_spec(args.columns) if args.columns else None
        except DataError:
            raise ConfigError(f"--columns expects our=their,... pairs, got {args.columns!r}") from None
        return load_with_report(args.file, groups=groups, columns=columns, on_bad_row=args.on_bad_row,
                                format=args.format, extra=args.extra, split=args.split)
    if args.columns or args.format or args.split:
        raise ConfigError("--columns, --format and --split do not apply with --adapter")
    options = {"on_bad_row": args.on_bad_row}
    if args.adapter == "prism":
        options.update(survey=args.survey, groups=groups)
    elif groups is not None:
        if args.adapter == "hh-rlhf":
            raise ConfigError("HH-RLHF has no group attributes")
        options["groups"] = groups
    return adapters.ADAPTERS[args.adapter](args.file, **options), None


def _check_out(out: Path, force: bool) -> None:
    from pluralrm.errors import ConfigError

    if out.exists() and (out.is_file() or any(out.iterdir())) and not force:
        raise ConfigError(f"--out {out} exists and is not empty; pass --force to replace it")


def _split(dataset, args: argparse.Namespace) -> int:
    """Writes OUT/train.parquet and OUT/test.parquet."""
    import datasets

    from pluralrm.atomic import atomic_path
    from pluralrm.data import save, split

    datasets.disable_progress_bars()
    holdout = [v.strip() for v in args.holdout.split(",")] if args.holdout else None
    train, test = split(dataset, by=args.by, test_size=args.test_size, seed=args.seed, holdout=holdout)
    out = Path(args.out)
    with atomic_path(out, directory=True) as tmp:
        save(train, tmp / "train.parquet")
        save(test, tmp / "test.parquet")
    print(f"wrote {out / 'train.parquet'} ({train.num_rows:,} comparisons) and {out / 'test.parquet'} "
          f"({test.num_rows:,}, held out by {args.by})")
    return 0


def _candidates(dataset, args: argparse.Namespace) -> int:
    """Writes each distinct (prompt, response) once: the chosen and rejected responses of every
    comparison, in order of first appearance, with a ``candidate_id``."""
    import datasets
    import pyarrow as pa

    from pluralrm.data import save
    from pluralrm.data.io import to_dataset

    datasets.disable_progress_bars()
    seen: dict[tuple[str, str], None] = {}
    for prompt, chosen, rejected in zip(dataset["prompt"], dataset["chosen"], dataset["rejected"]):
        seen.setdefault((prompt, chosen))
        seen.setdefault((prompt, rejected))
    prompts = [p for p, _ in seen]
    table = pa.table({"prompt": prompts, "response": [r for _, r in seen],
                      "candidate_id": [f"c{i}" for i in range(len(prompts))]})
    path = save(to_dataset(table), args.out)
    print(f"wrote {len(prompts):,} candidates for {len(set(prompts)):,} prompts to {path}")
    return 0
