"""``pluralrm data``: inspect comparison data.

    pluralrm data summary  FILE [--groups a,b] [--columns our=their,...] [--on-bad-row skip]
    pluralrm data validate FILE [same options]

``summary`` prints sizes, group values, label kinds and between-group disagreement
(:mod:`pluralrm.data.summary`); ``validate`` checks every row and exits 1 with the error (or,
with ``--on-bad-row skip``, the count of bad rows and the first reasons) when the data is bad.
``--adapter`` reads a known public format instead of the ComparisonDataset columns.
"""
from __future__ import annotations

import argparse

ADAPTER_NAMES = ("hh-rlhf", "prism", "dices", "popquorn", "community-alignment")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("summary", "print what the data holds"),
                            ("validate", "check every row; exit 1 on bad data")):
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.add_argument("file", help="JSONL, JSON, CSV/TSV, Parquet file or saved dataset directory")
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

    from pluralrm.data.badrows import DataWarning
    from pluralrm.data.summary import summarize

    with warnings.catch_warnings():
        if args.action == "validate" and args.adapter is None:
            warnings.simplefilter("ignore", DataWarning)  # the report below says it instead
        dataset, report = _load(args)
    if args.action == "summary":
        print(summarize(dataset).to_text())
        return 0
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
