"""``pluralrm score --checkpoint RUN --input FILE --output FILE [groups] [--aggregate RULE]``.

Scores candidate responses (JSONL/CSV/Parquet rows with prompt and response columns) under
one group, several groups, every group of the model (``--all-groups``) or each row's own group
(group columns in the file), optionally aggregating over groups and picking the best
candidate per prompt. Streams the file in chunks; the output appears only when complete.
A missing or empty input is an error, found before the model is loaded; so is an input whose
every row was skipped (nothing is written then).
"""
from __future__ import annotations

import argparse
import sys

from pluralrm.cli.model_options import add_checkpoint_arguments, add_group_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pluralrm.score.rules import RULES

    add_checkpoint_arguments(p)
    p.add_argument("--input", required=True, help="candidates: .jsonl, .csv or .parquet with prompt and response")
    p.add_argument("--output", required=True, help="scores: .parquet, .jsonl or .csv (written atomically)")
    add_group_arguments(p, "score for this group (repeat for several groups); default: each row's own group "
                           "columns, or the shared reward", "score under every group the model knows")
    p.add_argument("--aggregate", choices=list(RULES),
                   help="aggregate over the groups and mark the best candidate of each prompt: "
                   + "; ".join(f"{r.name}: {r.meaning}" for r in RULES.values()))
    p.add_argument("--weights", help="group weights for the rule: 'population' (training shares) or numbers a,b,c")
    p.add_argument("--normalize", choices=["none", "center", "zscore"], default="none",
                   help="per-group standardisation before aggregating (rewards are identified only up to a "
                        "per-group constant): over each prompt's candidates, or --reference")
    p.add_argument("--reference", help="a candidate file whose per-group statistics normalise the scores")
    p.add_argument("--q", type=float, help="quantile rule: which quantile of groups (default 0.1)")
    p.add_argument("--temperature", type=float, help="softmin rule: temperature τ (default 1.0)")
    p.add_argument("--risk", type=float, metavar="ALPHA",
                   help="risk-sensitive scores: the lower ALPHA-quantile (0 < ALPHA < 1) of each response's "
                        "predicted reward distribution instead of its mean (heads mean_variance, categorical, "
                        "distributional)")
    p.add_argument("--unseen", choices=["pooled", "error", "nearest"], default="pooled",
                   help="a group value the model never saw: shared reward with a warning (default), a bad row, "
                        "or the most similar known value")
    p.add_argument("--prompt-column", default="prompt")
    p.add_argument("--response-column", default="response")
    p.add_argument("--id-column", help="a column copied to the output (e.g. a candidate id)")
    p.add_argument("--set-column", help="column delimiting candidate sets for --aggregate (default: the prompt)")
    p.add_argument("--chunk-size", type=int, default=1024, help="rows read and scored at a time (default 1024)")
    p.add_argument("--on-bad-row", choices=["error", "skip"], default="error",
                   help="a malformed row stops the run (default) or is skipped and counted")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pluralrm.cli.console_warnings import printed_warnings
    from pluralrm.errors import DataError
    from pluralrm.models.reward_model import RewardModel
    from pluralrm.score.files import ScoreFileConfig, parse_groups_option, score_file

    check_input(args.input)
    params = tuple((k, v) for k, v in (("q", args.q), ("temperature", args.temperature)) if v is not None)
    config = ScoreFileConfig(
        groups=parse_groups_option(args.groups),
        all_groups=args.all_groups,
        aggregate=args.aggregate,
        weights=_weights(args.weights),
        normalize=args.normalize,
        params=params,
        fallback=args.unseen,
        prompt_column=args.prompt_column,
        response_column=args.response_column,
        id_column=args.id_column,
        set_column=args.set_column,
        chunk_size=args.chunk_size,
        on_bad_row=args.on_bad_row,
        risk=args.risk,
    )
    with printed_warnings("score"):
        model = RewardModel.load(args.checkpoint, args.step)
        with _progress(not args.no_progress, args.input) as update:
            report = score_file(model, args.input, args.output, config, reference=args.reference, progress=update)
    for message in report.bad_rows:
        print(f"pluralrm score: skipped bad row: {message}", file=sys.stderr)
    if report.rows == 0:
        report.output.unlink(missing_ok=True)
        raise DataError(f"no rows to score (skipped {report.skipped} bad row(s)); nothing was written",
                        file=args.input)
    skipped = f", skipped {report.skipped} bad row(s)" if report.skipped else ""
    print(f"scored {report.rows} rows in {report.chunks} chunk(s){skipped} → {report.output}")
    return 0


def check_input(path: str) -> None:
    """Fails fast (before the model loads) on a missing input or one without data rows: an empty
    file, blank JSON lines, a CSV header alone, a Parquet file of 0 rows."""
    from pathlib import Path

    from pluralrm.errors import DataError

    file = Path(path)
    if not file.is_file():
        raise DataError("no such file; check --input" if not file.exists() else "is a directory, not a file",
                        file=path)
    empty = file.stat().st_size == 0
    suffix = file.suffix.lower()
    if not empty and suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            empty = pq.ParquetFile(file).metadata.num_rows == 0
        except Exception:  # noqa: BLE001 -- unreadable: the reader reports it with its reason
            empty = False
    elif not empty and suffix in (".jsonl", ".ndjson", ".csv", ".tsv"):
        need = 2 if suffix in (".csv", ".tsv") else 1  # a CSV's first line is its header
        with file.open("rb") as f:
            lines = 0
            for line in f:
                lines += bool(line.strip())
                if lines >= need:
                    break
        empty = lines < need
    if empty:
        raise DataError("the input has no rows to score", file=path)


def _weights(text: str | None):
    from pluralrm.errors import ConfigError

    if text is None or text == "population":
        return text
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--weights must be 'population' or comma-separated numbers, got {text!r}") from None


class _progress:
    """A rich progress bar (on stderr) fed (position, total) by score_file; a no-op when off."""

    def __init__(self, enabled: bool, label: str):
        self.enabled, self.label = enabled, label
        self._bar = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("scoring {task.description}"), BarColumn(), TaskProgressColumn(),
                             TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.__enter__()
        self._task = self._bar.add_task(self.label, total=None)
        return self._update

    def _update(self, position: int, total: int) -> None:
        self._bar.update(self._task, completed=position, total=total or None)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
