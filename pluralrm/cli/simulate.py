"""``pluralrm simulate``: write a synthetic society with planted group values (ground truth).

The result goes to a temporary sibling directory first and is renamed into place, so ``--out``
is either the complete result or untouched. A non-empty ``--out`` is refused unless
``--force``. Flags given with ``--preset`` override the preset's values.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pluralrm.atomic import atomic_path

# flag -> SocietyConfig field; each flag defaults to None ("not given") so presets can be overridden
_FLAGS: dict[str, tuple[str, type, str]] = {
    "--comparisons": ("comparisons", int, "number of comparisons (rows)"),
    "--groups": ("countries", int, "number of countries (cultural groups)"),
    "--languages": ("languages", int, "number of languages (at most 6: en es fr hi yo ar)"),
    "--heterogeneity": ("heterogeneity", float, "sd of country value deviations (0 = homogeneous)"),
    "--within-noise": ("within_noise", float, "sd of annotators' deviations from their group"),
    "--annotators-per-group": ("annotators_per_group", int, "annotators per country"),
    "--annotators-per-item": ("annotators_per_item", int, "distinct annotators judging each item"),
    "--harm-rate": ("harm_rate", float, "probability that a response carries a global harm"),
    "--local-harm-rate": ("local_harm_rate", float, "probability that a response carries a local harm"),
    "--second-language-rate": ("second_language_rate", float, "fraction of annotators using a second language"),
    "--seed": ("seed", int, "random seed"),
}
_LARGE = 200_000  # show a progress display from this many comparisons on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output directory (must be empty or absent)")
    parser.add_argument("--preset", default=None, help="start from a named preset ('default': the bundled society)")
    for flag, (_, kind, help_text) in _FLAGS.items():
        parser.add_argument(flag, type=kind, default=None, help=help_text)
    parser.add_argument("--candidate-sampling", choices=("independent", "negatively_correlated"), default=None,
                        help="how the two candidates' value profiles relate")
    parser.add_argument("--value-labels", action="store_true", default=None,
                        help="add chosen_values / rejected_values columns (true profiles)")
    parser.add_argument("--hide-groups", action="store_true", default=None,
                        help="drop the country / language columns (latent-group setting)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out directory")
    parser.add_argument("--quiet", action="store_true", help="print no summary")


def config_from_args(args: argparse.Namespace):
    """The SocietyConfig the flags describe (a preset, then the flags given)."""
    from pluralrm.simulate import SocietyConfig, preset

    config = preset(args.preset) if args.preset else SocietyConfig()
    changes = {field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in _FLAGS.items()}
    changes["candidate_sampling"] = args.candidate_sampling
    changes["value_labels"] = args.value_labels
    changes["hide_groups"] = args.hide_groups
    changes = {k: v for k, v in changes.items() if v is not None}
    if "countries" in changes and config.group_proportions is not None and changes["countries"] != config.countries:
        changes.setdefault("group_proportions", None)  # the preset's shares no longer fit
    for key in ("countries", "languages"):  # explicit names no longer fit a changed count
        if key in changes and changes[key] != getattr(config, key):
            changes.update(country_names=(), country_languages=(), local_harm_holders=None)
            if key == "languages":
                changes["language_names"] = ()
    return config.replace(**changes)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pluralrm.errors import ConfigError
    from pluralrm.simulate import STAGES, generate

    out: Path = args.out.expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"--out {out} is not empty; pass --force to replace it")
    config = config_from_args(args)
    console = Console(stderr=True)
    start = time.perf_counter()
    with atomic_path(out, directory=True) as tmp:  # an existing --out is replaced only once complete
        if config.comparisons >= _LARGE:
            from rich.progress import Progress

            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("simulating", total=len(STAGES) + 1)

                def progress(stage: str) -> None:
                    bar.update(task, description=stage, completed=STAGES.index(stage))

                result = generate(config, progress=progress)
                bar.update(task, description="writing", completed=len(STAGES))
                result.save(tmp)
        else:
            result = generate(config)
            result.save(tmp)
    elapsed = time.perf_counter() - start
    if not args.quiet:
        result.print_summary(Console())
    print(f"wrote {config.comparisons:,} comparisons to {out} in {elapsed:.1f} s", file=sys.stdout)
    return 0
