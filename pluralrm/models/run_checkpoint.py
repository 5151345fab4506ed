"""Reading a reward model out of a training run directory.

``pluralrm train`` writes the model's metadata (model.json, schema.json, annotators.json) at
the run directory's root and, per checkpoint step, an Orbax item ``model`` with every model
variable (``checkpoints/<step>/model``), plus a SHA-256 manifest of each finished step
(``manifests/<step>.json``) and ``best.json``. This module picks a step, checks it against its
manifest, and restores only the ``model`` item (never the optimizer state).
"""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from pluralrm.atomic import write_json_atomic  # noqa: F401  (re-exported: the one atomic JSON writer)
from pluralrm.errors import CheckpointError


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def directory_manifest(root: Path) -> dict[str, list]:
    """``{relative path: [size, sha256]}`` for every regular file below ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root))] = [path.stat().st_size, file_sha256(path)]
    return out


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Finished checkpoint steps (Orbax renames a step directory to its number when done)."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def verify_step(run_dir: Path, step: int) -> str | None:
    """None when the step's files match its manifest (or it has none yet), else the reason."""
    manifest_path = run_dir / "manifests" / f"{step}.json"
    if not manifest_path.is_file():
        return None
    from pluralrm.models.artefacts import read_json

    try:
        expected = read_json(manifest_path, max_bytes=64 << 20)
    except CheckpointError as e:
        return f"its manifest is unreadable ({e})"
    if not isinstance(expected, dict):
        return "its manifest is not a JSON object"
    root = run_dir / "checkpoints" / str(step)
    for rel, entry in expected.items():
        if not (isinstance(entry, list) and len(entry) == 2) or Path(rel).is_absolute() or ".." in Path(rel).parts:
            return f"its manifest has an invalid entry {rel!r}"
        size, digest = entry
        path = root / rel
        if not path.is_file():
            return f"file {rel} is missing"
        if path.stat().st_size != size:
            return f"file {rel} has {path.stat().st_size} bytes where {size} were written (truncated)"
        if file_sha256(path) != digest:
            return f"file {rel} does not match its recorded SHA-256 (corrupted)"
    return None


def select_step(run_dir: Path, which: str | int = "best") -> int:
    """The checkpoint step to load: ``"best"`` (best.json, else latest), ``"latest"`` or a number."""
    steps = checkpoint_steps(run_dir)
    if not steps:
        raise CheckpointError(f"{run_dir} has no finished checkpoint under checkpoints/")
    if isinstance(which, int) or (isinstance(which, str) and which.isdigit()):
        step = int(which)
        if step not in steps:
            raise CheckpointError(f"{run_dir} has no checkpoint at step {step} (steps: {steps})")
        return step
    if which == "best":
        best_path = run_dir / "best.json"
        if best_path.is_file():
            from pluralrm.models.artefacts import read_json

            try:
                best = read_json(best_path, max_bytes=1 << 16)["step"]
            except (CheckpointError, KeyError, TypeError):
                best = None
            if best in steps and verify_step(run_dir, best) is None:
                return best
        which = "latest"
    if which != "latest":
        raise CheckpointError(f"checkpoint must be 'best', 'latest' or a step number, got {which!r}")
    for step in reversed(steps):
        if verify_step(run_dir, step) is None:
            return step
    raise CheckpointError(f"{run_dir}: every checkpoint fails its integrity check")


@contextlib.contextmanager
def quiet_orbax():
    """Silences Orbax's informational absl warnings (read-only directory etc.) for a block."""
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)


def load_from_run(cls, run_dir: Path, which: str | int = "best"):
    """A RewardModel with the parameters of one checkpoint of a run (see module docstring)."""
    import jax
    import orbax.checkpoint as ocp
    from flax import nnx

    from pluralrm.models.artefacts import check_declared_size
    from pluralrm.models.model_files import abstract_array, check_tree_shapes, read_model_metadata
    from pluralrm.models.net import build_net, saved_state

    config, schema, featurizer, annotators, temperatures = read_model_metadata(run_dir)
    step = select_step(run_dir, which)
    problem = verify_step(run_dir, step)
    if problem:
        raise CheckpointError(f"{run_dir}: checkpoint {step} is unusable: {problem}")
    check_declared_size(config, schema, len(annotators), run_dir)
    net, _ = build_net(config, schema, len(annotators))
    target = saved_state(net).to_pure_dict()
    where = str(run_dir / "checkpoints" / str(step) / "model")
    handlers = {"model": ocp.StandardCheckpointHandler()}
    with quiet_orbax(), ocp.CheckpointManager(
        run_dir / "checkpoints",
        options=ocp.CheckpointManagerOptions(read_only=True, create=False),
        item_handlers=handlers,
    ) as mngr:
        try:
            saved = mngr.item_metadata(step)["model"]
        except Exception as e:
            raise CheckpointError(f"{where}: not a readable checkpoint ({e})") from None
        if saved is None:
            raise CheckpointError(f"{where}: the checkpoint has no model item")
        check_tree_shapes(target, getattr(saved, "item_metadata", saved), where)
        try:
            restored = mngr.restore(
                step, args=ocp.args.Composite(model=ocp.args.StandardRestore(jax.tree.map(abstract_array, target)))
            )["model"]
        except Exception as e:
            raise CheckpointError(f"{where}: cannot restore ({e})") from None
    nnx.update(net, restored)
    return cls(net, config, schema, featurizer, annotators, temperatures)
