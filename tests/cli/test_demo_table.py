"""The README's demo table is a claim CI checks: `make demo`'s training, then every figure of the
per-group table (Bayes columns and both models' held-out accuracy) against README.md.

Tolerance 0.01, and 0.025 for the two models' accuracy on the minority rows. The demo is
deterministic on a given machine: a fixed society, split seed 0, training seed 0, a fixed batch
order; two independent runs (the fresh-clone run the README quotes, and this branch's run on
2026-12-06, `python -m pluralrm demo --out /tmp/s19/demo0`) agreed on every figure to the third
decimal. Across CPUs it is not bit-identical: XLA compiles for the machine's instruction set,
rounding differs, and 250 steps of training carry it into slightly different models. Measured on
2026-12-06 (commit f96298c, one AMD EPYC with AVX-512, `XLA_FLAGS=--xla_cpu_max_isa=AVX /
AVX2 / AVX512_CORE`): pooled EG/ar read 0.536 / 0.555 / 0.555 (4 of its 209 held-out
comparisons), every other cell moved by at most 0.002 from README.md's. So the minority rows'
model cells get 0.025 (5 comparisons of 209, 7 of 282), the rest 0.01, which still fails a
change that degrades any large row by more than one point.

Seed spread behind that choice (the demo's training with train.seed 0–4, everything else as
`make demo`; 2026-12-06, commit 6c56d97): range over the five seeds, pooled / conditioned —
US/en 0.018 / 0.007, NG/yo 0.029 / 0.081, EG/ar 0.038 / 0.082, all 0.005 / 0.012 (conditioned
NG/yo 0.660–0.741, EG/ar 0.660–0.742). The tolerance is therefore far tighter than the seed
spread on the minority rows: the test pins this build's deterministic run (a change of the
training's random stream fails it and the README table must be regenerated), it does not
claim the minority figures hold to 0.01 across seeds.

The expected figures live in one place: the README table. Retuning the demo means updating that
table (with the figures a `make demo` run prints); this test then follows it.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pluralrm.cli.demo import DEMO_STEPS

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 0.01
MINORITY_TOLERANCE = 0.025
"""For the pooled and conditioned cells of rows README.md marks "minority" (see the docstring)."""
COLUMNS = ("Bayes, knowing the group", "Bayes, ignoring it", "pooled", "conditioned")


def readme_table() -> dict[str, dict[str, float]]:
    """``{short group (e.g. "NG/yo") or "all": {column: figure}}`` from README.md's demo table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    header = re.search(r"^\| group \(share\) \|(.*)\|\s*$", text, re.M)
    assert header, "README.md has no demo table (a row starting '| group (share) |')"
    names = [c.strip() for c in header.group(1).split("|")]
    assert tuple(names) == COLUMNS, names
    rows = {}
    for line in text[header.end():].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        group = cells[0].split(" (")[0]
        rows[group] = {name: float(cell) for name, cell in zip(names, cells[1:]) if cell}
    return rows


def minority_rows() -> set[str]:
    """The groups README.md's demo table marks as minorities (``| NG/yo (0.06, minority) |``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| (\S+) \([^)]*minority\) \|", text, re.M))


def tolerance(group: str, column: str, minorities: set[str]) -> float:
    return MINORITY_TOLERANCE if group in minorities and column in COLUMNS[2:] else TOLERANCE


def test_readme_table_parses():
    rows = readme_table()
    assert "all" in rows and len(rows) >= 3
    assert set(rows["all"]) == {COLUMNS[0], "pooled", "conditioned"}
    assert minority_rows() == {"NG/yo", "EG/ar"}
    assert tolerance("EG/ar", "pooled", minority_rows()) == MINORITY_TOLERANCE
    assert tolerance("EG/ar", COLUMNS[0], minority_rows()) == tolerance("US/en", "pooled", minority_rows()) == TOLERANCE


def bayes_columns(short_labels: dict[str, str]) -> dict[str, dict[str, float]]:
    """The simulator's Bayes accuracies on the demo's held-out split (as the demo defines them)."""
    from pluralrm.data import split
    from pluralrm.simulate import load_default

    society = load_default()
    _, test = split(society.data, by="item", test_size=0.2, seed=0)
    truth = society.truth
    row_of = {(i, a): r for r, (i, a) in enumerate(zip(society.data["item_id"], society.data["annotator_id"]))}
    rows = np.array([row_of[(i, a)] for i, a in zip(test["item_id"], test["annotator_id"])])
    p_own = truth.p_group[rows, truth.row_group[rows]]
    groups = truth.row_group[rows]
    out = {"all": {COLUMNS[0]: float(np.mean(np.maximum(p_own, 1 - p_own)))}}
    for c, label in enumerate(truth.group_labels):
        m = groups == c
        blind = np.where(truth.p_pooled[rows][m] >= 0.5, p_own[m], 1 - p_own[m])
        out[short_labels[label]] = {COLUMNS[0]: float(np.mean(np.maximum(p_own[m], 1 - p_own[m]))),
                                    COLUMNS[1]: float(np.mean(blind))}
    return out


def test_readme_bayes_columns_match_the_simulator():
    """The Bayes columns need no training: checked on every run, not only with the slow tests."""
    from pluralrm.simulate import load_default

    labels = load_default().truth.group_labels
    short = {label: "/".join(kv.split("=", 1)[1] for kv in label.split(",")) for label in labels}
    measured = bayes_columns(short)
    for group, row in readme_table().items():
        for column in COLUMNS[:2]:
            if column in row:
                assert abs(measured[group][column] - row[column]) < 0.0005 + 1e-9, (group, column)


@pytest.mark.slow
def test_demo_reproduces_the_readme_table(tmp_path):
    expected = readme_table()
    out = tmp_path / "demo"
    # exactly what `make demo` runs (`$(PY) -m pluralrm demo --out runs/demo`), in a fresh process
    subprocess.run([sys.executable, "-m", "pluralrm", "demo", "--out", str(out)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    measured: dict[str, dict[str, float]] = {}
    short = {}
    for head in ("pooled", "conditioned"):
        summary = json.loads((out / head / "summary.json").read_text())
        assert summary["steps"] == DEMO_STEPS and summary["stopped_by"] == "completed"
        for g in summary["final_eval"]["groups"]:
            label = g["group"]
            key = "all" if label == "all" else "/".join(kv.split("=", 1)[1] for kv in label.split(","))
            short[label] = key
            measured.setdefault(key, {})[head] = g["accuracy"]
    for key, figures in bayes_columns(short).items():
        measured[key].update(figures)
    minorities = minority_rows()
    off = [
        f"{group} / {column}: README {figure:.3f}, demo {measured[group][column]:.3f}"
        f" (tolerance {tolerance(group, column, minorities)})"
        for group, row in expected.items()
        for column, figure in row.items()
        if abs(measured[group][column] - figure) > tolerance(group, column, minorities)
    ]
    assert not off, "the demo no longer reproduces README.md's table:\n" + "\n".join(off)
