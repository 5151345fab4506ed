"""Writing a :class:`~pluralrm.calibration.analyze.CalibrationReport` to disk.

``write_report(report, out_dir)`` writes

- ``report.json``: every number (:meth:`CalibrationReport.to_json`);
- ``figures/*.png``: the figures (:mod:`~pluralrm.calibration.plots`);
- ``report.md``: the tables as Markdown, linking the PNGs;
- ``report.html``: one self-contained page (inline CSS, PNGs embedded as base64 data URIs) that
  opens anywhere without the other files.
"""
from __future__ import annotations

import base64
import html
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pluralrm.calibration import plots
from pluralrm.calibration.tables import Matrix, Table

TEXT_WIDTH = 140


@dataclass(frozen=True)
class Figure:
    """One figure of the report: file stem, caption, PNG bytes, the section it illustrates, and
    its display width in the HTML page (CSS pixels)."""

    name: str
    caption: str
    png: bytes
    section: str
    width: int = 1000


@dataclass(frozen=True)
class Section:
    """One section: heading, what it shows, its tables and the figures placed before them."""

    title: str
    intro: str
    tables: tuple[Table | Matrix, ...]


def make_figures(report) -> list[Figure]:
    """Renders the report's figures (matplotlib, Agg)."""
    made = []

    def add(name, caption, section, build, width=1000):
        made.append(Figure(name, caption, plots.png_bytes(build()), section, width))

    square = min(1000, 380 + 50 * len(report.settings["groups"]))
    unavailable = report.settings.get("unavailable") or {}

    add("agreement", "Agreement within groups (diagonal, Krippendorff's α) and between groups (κ_x).", "agreement",
        lambda: plots.heatmap(report.agreement, "Agreement within and between groups", "α (diagonal) / κ_x"),
        square)
    if "divergence" not in unavailable:  # an empty grid says nothing; the section says why instead
        add("preference_gap", "Typical difference between two groups' preference rates, vote noise removed.",
            "divergence", lambda: plots.heatmap(report.preference_gap, "How far apart groups' preferences are",
                                                "RMS gap in P(first ≻ second)", cmap="magma_r", mask_diagonal=True),
            square)
    if report.contested.num_rows:
        add("contested", "Each group's share preferring the first response on the most contested units.",
            "divergence", lambda: plots.contested_figure(report.contested, list(report.settings["groups"])))
    if report.calibration is not None:
        add("calibration", "Accuracy, NLL, Brier and ECE per group with bootstrap intervals (ECE: percentile "
            "interval of the resampled ECE; ECE is biased upward, so the estimate can sit at its low end).",
            "calibration",
            lambda: plots.forest_figure(report.calibration))
        add("reliability", "Top-label reliability diagrams per group.", "calibration",
            lambda: plots.reliability_figure(report.reliability, report.calibration))
    if report.fidelity is not None and "fidelity" not in unavailable:
        add("retention", "Disagreement retention per group and overall.", "fidelity",
            lambda: plots.retention_figure(report.fidelity))
    return made


def sections(report) -> list[Section]:
    """The report's sections in reading order."""
    s = report.settings
    unavailable = s.get("unavailable") or {}
    why = lambda name: f" Not computed: {unavailable[name]}." if name in unavailable else ""  # noqa: E731
    out = [
        Section("Agreement", f"How much raters agree within each group and across groups "
                f"(Krippendorff's α at the {s['level']} level over all votes: {_fmt(s['alpha'])}).",
                (report.groups, report.agreement, report.agreement_normalized)),
        Section("Divergence", "How differently groups prefer, unit by unit, and whether the difference is "
                f"more than chance (units count for a group with at least {s['min_votes']} of its votes)."
                + why("divergence"), (report.preference_gap, report.group_tests, report.divergence,
                                      report.divergence_units, report.contested)),
    ]
    if report.calibration is not None:
        out.append(Section("Calibration", "Whether the model's probabilities mean what they say, group by group.",
                           (report.calibration,)))
    if report.fidelity is not None:
        out.append(Section("Fidelity", "Whether the model keeps the groups' differences or washes them out."
                           + why("fidelity"),
                           (report.fidelity, report.fidelity_pairs)))
        tables = tuple(t for t in (report.representativeness, report.alignment) if t is not None)
        out.append(Section("Representativeness", "How close the model's preference distribution is to each "
                           "group's (OpinionQA and GlobalOpinionQA measures).", tables))
    return out


def write_report(report, out_dir: str | Path, extra: tuple[tuple[Section, tuple[Figure, ...]], ...] = ()) -> dict[str, Path]:
    """Writes ``report.md``, ``report.html``, ``report.json`` and ``figures/*.png``.

    Args:
      report: a CalibrationReport.
      out_dir: directory (created if missing).
      extra: further (section, figures) pairs appended after the report's own sections, e.g. a
        values model's group × value weight table; each figure's ``section`` must be its
        section's title in lower case.

    Returns:
      ``{"markdown", "html", "json", "figures"}`` → paths (``figures``: the directory).
    """
    from pluralrm.atomic import atomic_entries

    out = Path(out_dir)
    figures = make_figures(report) + [f for _, figs in extra for f in figs]
    parts = sections(report) + [section for section, _ in extra]
    names = {"markdown": "report.md", "html": "report.html", "json": "report.json", "figures": "figures"}
    with atomic_entries(out) as stage:  # a failure leaves no partial report behind
        (stage / "figures").mkdir()
        for f in figures:
            (stage / "figures" / f"{f.name}.png").write_bytes(f.png)
        (stage / names["json"]).write_text(report.to_json(), encoding="utf-8")
        (stage / names["markdown"]).write_text(to_markdown(report, parts, figures), encoding="utf-8")
        (stage / names["html"]).write_text(to_html(report, parts, figures), encoding="utf-8")
    paths = {key: out / name for key, name in names.items()}
    return paths


# ------------------------------------------------------------------ formatting
def _fmt(value) -> str:
    if isinstance(value, (str, np.str_)) or (isinstance(value, np.ndarray) and value.dtype == object):
        return str(value)
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(x):
        return "–" if np.isnan(x) else ("∞" if x > 0 else "−∞")
    if x == int(x) and abs(x) < 1e9:
        return f"{int(x):,}"
    if abs(x) < 1e-3:
        return f"{x:.1e}"
    return f"{x:.3f}"


def _column_cells(values: list, column: str) -> list[str]:
    """A column's cells: text shortened; numbers as integers when the whole column is integral,
    else with three decimals (so a column reads evenly)."""
    if column.startswith("group") or any(isinstance(v, str) for v in values):
        return [textwrap.shorten(" ".join(str(v).split()), width=TEXT_WIDTH, placeholder="…") for v in values]
    numbers = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    integral = finite.size > 0 and np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 1e9)
    return [_fmt(v) if integral or not np.isfinite(v) else _decimal(v) for v in numbers]


def _decimal(x: float) -> str:
    return f"{x:.1e}" if 0 < abs(x) < 1e-3 else f"{x:.3f}"


def _rows(table: Table | Matrix) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of a table or matrix."""
    if isinstance(table, Matrix):
        header = [""] + [plots.short_label(c) for c in table.col_labels]
        cells = _column_cells(table.values.reshape(-1).tolist(), "values")
        width = table.values.shape[1]
        rows = [[plots.short_label(r)] + cells[i * width:(i + 1) * width] for i, r in enumerate(table.row_labels)]
        return header, rows
    columns = list(table.columns)
    cells = {k: _column_cells(table.columns[k].tolist(), k) for k in columns}
    rows = [[cells[k][i] for k in columns] for i in range(table.num_rows)]
    return columns, rows


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def to_markdown(report, parts: list[Section], figures: list[Figure]) -> str:
    lines = ["# Calibration report", "", _summary(report), ""]
    for section in parts:
        lines += [f"## {section.title}", "", section.intro, ""]
        for f in figures:
            if f.section == section.title.lower():
                lines += [f"![{f.caption}](figures/{f.name}.png)", "", f"*{f.caption}*", ""]
        for table in section.tables:
            header, rows = _rows(table)
            esc = lambda t: t.replace("|", "\\|")  # noqa: E731
            lines += [f"### {_title(table.name)}", "", table.description, "",
                      "| " + " | ".join(esc(h) for h in header) + " |",
                      "|" + "|".join("---" for _ in header) + "|"]
            lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
            lines.append("")
    notes = report.settings.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _summary(report) -> str:
    s = report.settings
    method = {"bca": "BCa", "percentile": "percentile"}.get(s["interval"], s["interval"])
    ci = (f"{int(round(100 * s['confidence']))}% {method} intervals from {s['bootstrap']} bootstrap "
          f"replicates resampling {s['bootstrap_unit']}s" if s["bootstrap"] else "no bootstrap intervals")
    return (f"{s['rows']:,} comparisons on {s['units']:,} units by {s['annotators']:,} annotators in "
            f"{len(s['groups'])} groups of {', '.join(s['by'])}; {ci}; permutation tests with "
            f"{s['permutations']} permutations; seed {s['seed']}.")


CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1f2933;max-width:1100px;margin:2rem auto;padding:0 1.5rem;line-height:1.5;background:#fff}
h1{font-size:1.8rem;margin-bottom:.2rem}h2{font-size:1.35rem;margin-top:2.4rem;border-bottom:2px solid #e4e7eb;
padding-bottom:.3rem}h3{font-size:1.02rem;margin:1.6rem 0 .3rem}
p.lead{color:#52606d}p.desc{color:#52606d;font-size:.88rem;margin:.2rem 0 .6rem}
figure{margin:1.2rem 0;text-align:center}figure img{max-width:100%;height:auto;border:1px solid #e4e7eb;
border-radius:6px}figcaption{font-size:.85rem;color:#52606d;margin-top:.3rem}
.wrap{overflow-x:auto}table{border-collapse:collapse;font-size:.82rem;margin:.3rem 0 1rem}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e4e7eb;text-align:right;vertical-align:top}
th{background:#f5f7fa;font-weight:600;position:sticky;top:0}td.text,th.text{text-align:left;max-width:22rem;
min-width:7rem}
tr:hover td{background:#fafbfc}nav a{margin-right:1rem;color:#2563eb;text-decoration:none}
ul.notes{color:#52606d;font-size:.88rem}
"""


def to_html(report, parts: list[Section], figures: list[Figure]) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>Calibration report</title>", f"<style>{CSS}</style></head><body>",
           "<h1>Calibration report</h1>", f'<p class="lead">{html.escape(_summary(report))}</p>',
           "<nav>" + "".join(f'<a href="#{p.title.lower()}">{html.escape(p.title)}</a>' for p in parts) + "</nav>"]
    for section in parts:
        out += [f'<h2 id="{section.title.lower()}">{html.escape(section.title)}</h2>',
                f'<p class="lead">{html.escape(section.intro)}</p>']
        for f in figures:
            if f.section == section.title.lower():
                data = base64.b64encode(f.png).decode("ascii")
                out.append(f'<figure><img style="width:{f.width}px" alt="{html.escape(f.caption)}" '
                           f'src="data:image/png;base64,{data}">'
                           f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")
        for table in section.tables:
            header, rows = _rows(table)
            text_cols = {i for i, h in enumerate(header) if h in ("", "group", "group_a", "group_b", "prompt",
                                                                   "first", "second")}
            klass = lambda i: ' class="text"' if i in text_cols else ""  # noqa: E731
            out += [f"<h3>{html.escape(_title(table.name))}</h3>", f'<p class="desc">{html.escape(table.description)}</p>',
                    '<div class="wrap"><table><thead><tr>'
                    + "".join(f"<th{klass(i)}>{html.escape(h)}</th>" for i, h in enumerate(header)) + "</tr></thead><tbody>"]
            out += ["<tr>" + "".join(f"<td{klass(i)}>{html.escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                    for row in rows]
            out.append("</tbody></table></div>")
    notes = report.settings.get("notes") or []
    if notes:
        out += ["<h2>Notes</h2>", '<ul class="notes">'] + [f"<li>{html.escape(n)}</li>" for n in notes] + ["</ul>"]
    settings = html.escape(json.dumps({k: v for k, v in report.to_dict()["settings"].items() if k != "notes"}))
    out += [f'<p class="desc">Settings: <code>{settings}</code></p>', "</body></html>"]
    return "\n".join(out)
