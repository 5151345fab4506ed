"""``SimulationResult``: a simulated ComparisonDataset with its truth and config; files, summary,
and the bundled default society."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pluralrm.errors import DataError
from pluralrm.simulate.config import SocietyConfig
from pluralrm.simulate.truth import HARM_TYPES, Truth

if TYPE_CHECKING:
    import datasets

    from pluralrm.simulate.population import Population

DATA_FILE = "data.parquet"
CONFIG_FILE = "config.json"
FILES: tuple[str, ...] = (DATA_FILE, "truth.npz", "truth.json", CONFIG_FILE)
DEFAULT_SOCIETY_DIR = "resources/default_society"


def make_dataset(columns: dict[str, pa.Array], config: SocietyConfig, pop: "Population", truth: Truth,
                 fingerprint: str) -> "datasets.Dataset":
    """Assembles the ComparisonDataset from the text/label columns and the truth's row indices."""
    import datasets

    n = len(truth.row_item)
    cell = truth.row_group
    out: dict[str, pa.Array] = {
        "prompt": columns["prompt"],
        "chosen": columns["chosen"],
        "rejected": columns["rejected"],
        "label": columns["label"],
        "annotator_id": pa.array(pop.annotator_ids, type=pa.string()).take(pa.array(truth.row_annotator)),
        "weight": pa.array(np.ones(n)),
        "item_id": columns["item_id"],
    }
    if not config.hide_groups:
        out["country"] = pa.array(pop.countries, type=pa.string()).take(pa.array(pop.cell_country[cell]))
        out["language"] = pa.array(pop.languages, type=pa.string()).take(pa.array(pop.cell_language[cell]))
    if config.value_labels:
        offsets = pa.array(np.arange(n + 1, dtype=np.int32) * config.num_values)
        for side in ("chosen", "rejected"):
            values = pa.array(truth.profile(side).astype(np.float64).reshape(-1))
            out[f"{side}_values"] = pa.ListArray.from_arrays(offsets, values)
    return datasets.Dataset(pa.table(out), fingerprint=fingerprint)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """A simulated ComparisonDataset, its planted truth and the config that made it.

    Attributes:
      data: ``datasets.Dataset`` with prompt, chosen, rejected, label, annotator_id, weight,
        item_id, country, language (unless ``hide_groups``), and chosen_values /
        rejected_values (with ``value_labels``). Rows are item-major: the m rows of an item
        are adjacent.
      truth: :class:`~pluralrm.simulate.truth.Truth`, aligned with ``data``'s rows.
      config: the :class:`SocietyConfig` (generating it again reproduces both exactly).
    """

    data: "datasets.Dataset"
    truth: Truth
    config: SocietyConfig

    # ------------------------------------------------------------------ files
    def save(self, directory: str | Path) -> Path:
        """Writes ``data.parquet``, ``truth.npz``, ``truth.json`` and ``config.json`` into a
        directory (created if needed). The same result always writes the same bytes."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        table = self.data.data.table.replace_schema_metadata(None)
        pq.write_table(table, directory / DATA_FILE, compression="zstd", compression_level=9,
                       row_group_size=1 << 20)
        self.truth.save(directory)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=1) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "SimulationResult":
        """Reads a directory written by :meth:`save` (or ``pluralrm simulate --out``)."""
        import datasets

        directory = Path(directory)
        missing = [f for f in FILES if not (directory / f).is_file()]
        if missing:
            raise DataError(f"not a simulation directory: missing {missing} (write one with "
                            "`pluralrm simulate --out DIR`)", file=str(directory))
        config_path = directory / CONFIG_FILE
        try:
            config = SocietyConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read simulation config: {e}", file=str(config_path)) from None
        try:
            table = pq.read_table(directory / DATA_FILE)
        except (OSError, pa.ArrowInvalid) as e:
            raise DataError(f"cannot read simulated data: {e}", file=str(directory / DATA_FILE)) from None
        truth = Truth.load(directory)
        if table.num_rows != len(truth.row_item):
            raise DataError(f"data has {table.num_rows} rows but the truth describes {len(truth.row_item)}; "
                            "the directory mixes two simulations", file=str(directory))
        return cls(data=datasets.Dataset(table, fingerprint=config.fingerprint()), truth=truth,
                   config=config)

    def equals(self, other: "SimulationResult") -> bool:
        """Same config, same data table (values and types) and the same truth."""
        return (
            self.config == other.config
            and self.data.data.table.replace_schema_metadata(None).equals(
                other.data.data.table.replace_schema_metadata(None))
            and self.truth.equals(other.truth)
        )

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict[str, Any]:
        """Headline numbers: sizes, harm counts, between-group disagreement (see
        ``Truth.disagreement``) and the row-weighted Bayes accuracies."""
        t = self.truth
        rows = np.bincount(t.row_group, minlength=t.num_groups)
        w = rows / rows.sum()
        harms = np.bincount(t.harm_type.reshape(-1), minlength=len(HARM_TYPES))
        return {
            "countries": len(t.countries),
            "languages": len(t.languages),
            "groups": t.num_groups,
            "annotators": len(t.annotator_group),
            "items": len(t.profiles),
            "comparisons": len(t.row_item),
            "ties": int(np.sum(np.asarray(self.data.data.column("label")) == 0.5)),
            **{f"responses_{name}_harm": int(harms[i]) for i, name in enumerate(HARM_TYPES) if i},
            **{f"disagreement_{k}": v for k, v in t.disagreement().items()},
            "bayes_accuracy_annotator": float(w @ t.bayes_accuracy_annotator()),
            "bayes_accuracy_group": float(w @ t.bayes_accuracy_group()),
            "bayes_accuracy_pooled": float(w @ t.bayes_accuracy_pooled()),
        }

    def group_table(self) -> list[dict[str, Any]]:
        """One row per group: population share, annotators, rows (comparisons), Bayes accuracies of
        a per-annotator, a group-aware and a group-blind model on the group's rows, and the mean
        |p_g − p_pooled| over all comparisons."""
        t = self.truth
        rows = np.bincount(t.row_group, minlength=t.num_groups)
        annotators = np.bincount(t.annotator_group, minlength=t.num_groups)
        gap = np.mean(np.abs(t.p_group - t.p_pooled[:, None]), axis=0)
        acc_a, acc_g, acc_p = t.bayes_accuracy_annotator(), t.bayes_accuracy_group(), t.bayes_accuracy_pooled()
        return [
            {"group": label, "share": float(t.group_share[c]), "annotators": int(annotators[c]),
             "rows": int(rows[c]), "acc_annotator": float(acc_a[c]), "acc_group": float(acc_g[c]),
             "acc_blind": float(acc_p[c]), "abs_gap": float(gap[c])}
            for c, label in enumerate(t.group_labels)
        ]

    def print_summary(self, console: Any = None) -> None:
        """Prints :meth:`summary` and :meth:`group_table` as rich tables."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        head = Table(title="simulated society", show_header=False)
        for key, value in self.summary().items():
            head.add_row(key, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
        console.print(head)
        groups = Table(title="groups (Bayes accuracy of a per-annotator / group-aware / group-blind model)")
        rows = self.group_table()
        headers = {"annotators": "annot", "acc_annotator": "acc_ann", "acc_group": "acc_grp", "abs_gap": "|p-pool|"}
        for key in rows[0]:
            groups.add_column(headers.get(key, key), justify="left" if key == "group" else "right", no_wrap=True)
        for row in rows:
            label = row["group"].replace("country=", "").replace(",language=", "/")
            groups.add_row(label, *(f"{v:.3f}" if isinstance(v, float) else f"{v:,}"
                                    for k, v in row.items() if k != "group"))
        console.print(groups)


def default_society_path() -> Path:
    """Where the bundled default society lives inside the installed package."""
    return Path(str(resources.files("pluralrm").joinpath(DEFAULT_SOCIETY_DIR)))


def load_default() -> SimulationResult:
    """The bundled default society (``--preset default``), read from the package without
    regenerating it. Regenerate the files with
    ``pluralrm simulate --preset default --out pluralrm/resources/default_society --force``."""
    return SimulationResult.load(default_society_path())
