"""The layer order of docs/architecture.md, enforced on the source: every ``import`` statement in
``pluralrm/`` (function-level ones included, ``if TYPE_CHECKING:`` blocks excluded) must point to
the same or a lower layer, and modules import each other without cycles.

Layers, lowest first (docs/architecture.md, "Layers"):
  neutral      errors, atomic, configs, untrusted, pretrained, provenance; and the package root, which any
               layer may import (``__version__``) and which, as the front door, reaches every
               layer lazily (its own imports are not checked)
  data
  simulate     (draws societies as ComparisonDatasets; used by train's data loading and the CLI)
  models       models/, losses (the heads' training objectives) and reward_distributions
               (quantiles of reward distributions on raw arrays)
  train
  score, serve, explain, integrations (reward functions for RLHF trainers; the server shares them)
  calibration  (reads predictions, never trainers)
  cli          cli/ and __main__
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pluralrm"

LAYERS: list[set[str]] = [
    {"errors", "atomic", "configs", "untrusted", "pretrained", "provenance", ""},
    {"data"},
    {"simulate"},
    {"models", "losses", "reward_distributions"},
    {"train"},
    {"score", "serve", "explain", "integrations"},
    {"calibration"},
    {"cli", "__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

# Import cycles that exist today, each to be removed by a named change; the test fails when one
# disappears (delete it here) or a new one appears.
# (None today: the artefacts/run_checkpoint ↔ reward_model cycles went when reward_model.py was
# split into models/net.py and models/model_files.py.)
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_name(file: Path) -> str:
    parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(file: Path) -> list[tuple[int, str]]:
    """(line, module) for every pluralrm import in ``file``; ``from a import b`` counts as a.b
    when b is a module. Skips ``if TYPE_CHECKING:`` blocks (no run-time edge)."""
    this = module_name(file)
    package = this if file.name == "__init__.py" else this.rpartition(".")[0]
    tree = ast.parse(file.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append((node.lineno, full if is_module(full) else base))
    return [(line, name) for line, name in out if name == "pluralrm" or name.startswith("pluralrm.")]


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def all_edges() -> dict[str, list[tuple[int, str]]]:
    return {module_name(f): imported_modules(f) for f in sorted(PACKAGE.rglob("*.py"))}


def test_every_package_unit_has_a_layer():
    units = {unit(m) for m in all_edges()}
    assert units <= set(RANK), f"place {sorted(units - set(RANK))} in LAYERS and docs/architecture.md"


def test_no_import_points_to_a_higher_layer():
    back_edges = [
        f"{module} (line {line}) imports {target}: layer {unit(module) or 'pluralrm'} < {unit(target)}"
        for module, targets in all_edges().items()
        for line, target in targets
        if module != "pluralrm" and RANK[unit(target)] > RANK[unit(module)]
    ]
    assert not back_edges, "imports against the layer order:\n" + "\n".join(back_edges)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules():
    """Cycles through function-level imports count: they are the same coupling, deferred."""
    edges = all_edges()
    graph = {m: {t for _, t in targets if t in edges and t != m and not m.startswith(t + ".")}
             for m, targets in edges.items()}
    # a package's __init__ importing its own submodules is how packages export names, not a cycle
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    components = strongly_connected(graph)
    pairs = {frozenset({a, b}) for c in components for a in c for b in graph[a] if b in c and a in graph[b]}
    unexplained = [sorted(c) for c in components if not any(k <= c for k in KNOWN_CYCLES)]
    assert not unexplained, f"import cycles: {unexplained}"
    stale = [sorted(k) for k in KNOWN_CYCLES if k not in pairs]
    assert not stale, f"these cycles are gone: remove them from KNOWN_CYCLES: {stale}"


@pytest.mark.parametrize("line", [
    "from pluralrm.train.config import load_config",
    "import pluralrm.cli",
])
def test_the_check_sees_a_back_edge(tmp_path, line):
    """The parser catches a back-edge written either way (guards the test against vacuity)."""
    # one probe file per case: xdist may run both cases at once
    fake = PACKAGE / "data" / f"_layer_probe_{'cli' if 'cli' in line else 'train'}.py"
    assert not fake.exists()
    fake.write_text(f"def f():\n    {line}\n")
    try:
        with pytest.raises(AssertionError, match="_layer_probe"):
            test_no_import_points_to_a_higher_layer()
    finally:
        fake.unlink()


# ---------------------------------------------------------------- private names stay private
ROOT = PACKAGE.parent
SOURCE_DIRS = ("pluralrm", "benchmarks", "experiments")


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def source_files() -> list[Path]:
    """The .py files of pluralrm/, benchmarks/ and experiments/ (virtual environments left out)."""
    return [f for d in SOURCE_DIRS for f in sorted((ROOT / d).rglob("*.py"))
            if not any(p.startswith(".venv") or p == "__pycache__" for p in f.relative_to(ROOT).parts)]


def private_imports(file: Path) -> list[str]:
    """Each place ``file`` takes a private name (``_name``) of another module: ``from a.b import
    _c`` (relative imports too), or ``m._c`` where ``m`` was bound to a module by an import."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            source = "." * node.level + (node.module or "")
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"line {node.lineno}: from {source} import {alias.name}")
                elif is_module(f"{node.module}.{alias.name}"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name.partition(".")[0] for a in node.names}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and is_private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_takes_another_modules_private_names():
    """STYLE.md habit 12: a module uses another's public names only (make the name public, with
    a docstring, or use the public API that wraps it)."""
    found = [f"{f.relative_to(ROOT)} {where}" for f in source_files() for where in private_imports(f)]
    assert not found, "private names taken from another module:\n" + "\n".join(found)


def test_the_private_name_check_sees_both_forms(tmp_path):
    """Guards the check against vacuity: each form is caught, public names and __future__ are not."""
    probe = tmp_path / "probe.py"
    probe.write_text("from __future__ import annotations\nimport numpy as np\n"
                     "from pluralrm.models import compiled\nfrom pluralrm.models.compiled import pad_batch\n"
                     "from pluralrm.models.reward_model import _pad_batch\nfrom . import _sibling\n"
                     "x = np._private, compiled._hidden, np.__version__, pad_batch\n")
    assert private_imports(probe) == [
        "line 5: from pluralrm.models.reward_model import _pad_batch", "line 6: from . import _sibling",
        "line 7: np._private", "line 7: compiled._hidden",
    ]
