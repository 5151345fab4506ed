"""Run checkpoints: Orbax ``CheckpointManager`` plus content manifests for corruption checks.

Each checkpoint step holds three items: ``model`` (every model variable, the same layout as a
saved model's ``weights/``, so ``RewardModel.load(run_dir)`` restores it alone), ``opt`` (the
optimizer state and step counter) and ``meta`` (JSON: step, data position, non-finite streak,
eval metric). Orbax writes each step to a temporary directory and renames it when complete, so
a process killed mid-save leaves the previous steps intact.

Orbax does not detect a byte flipped or a file truncated *after* a save finished. Once a save
has finished we therefore record a SHA-256 manifest of its files in ``manifests/<step>.json``;
resuming verifies the newest step against it and falls back to the newest step that verifies,
saying which and why. Keep-last-N and keep-best-N are Orbax preservation policies.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint._src.checkpoint_managers.preservation_policy import BestN, LatestN
from orbax.checkpoint.checkpoint_managers import AnyPreservationPolicy

from pluralrm.errors import CheckpointError
from pluralrm.models.run_checkpoint import directory_manifest, verify_step, write_json_atomic
from pluralrm.train.config import CheckpointConfig

log = logging.getLogger("pluralrm.train")
METRIC_KEY = "selection_metric"


class RunCheckpoints:
    """The checkpoints of one run directory (see module docstring)."""

    def __init__(self, run_dir: str | Path, config: CheckpointConfig, mode: str = "max", read_only: bool = False):
        self.run_dir = Path(run_dir).absolute()
        self.directory = self.run_dir / "checkpoints"
        self.manifests = self.run_dir / "manifests"
        self.config = config
        self.mode = mode
        policies = [LatestN(n=max(config.keep_last, 1))]
        if config.keep_best > 0:
            policies.append(
                BestN(
                    get_metric_fn=lambda m: m[METRIC_KEY],
                    reverse=(mode == "min"),
                    n=config.keep_best,
                    keep_checkpoints_without_metrics=False,
                )
            )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=AnyPreservationPolicy(policies),
            enable_async_checkpointing=config.async_save and not read_only,
            cleanup_tmp_directories=not read_only,
            create=not read_only,
            read_only=read_only,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("model", "opt", "meta"))
        self._pending: int | None = None

    # ------------------------------------------------------------------ saving
    def save(self, step: int, model: Any, opt: Any, meta: dict, metric: float | None = None) -> None:
        """Starts saving ``step`` (in the background when async); finalizes the previous save."""
        self.finalize()
        metrics = {METRIC_KEY: float(metric)} if metric is not None and np.isfinite(metric) else None
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    model=ocp.args.StandardSave(model),
                    opt=ocp.args.StandardSave(opt),
                    meta=ocp.args.JsonSave(meta),
                ),
                metrics=metrics,
                force=True,
            )
        except Exception as e:
            raise CheckpointError(self._save_failure(step, e)) from e
        self._pending = step
        if not self.config.async_save:
            self.finalize()

    def finalize(self) -> None:
        """Waits for a pending save and records its manifest."""
        if self._pending is None:
            return
        step, self._pending = self._pending, None
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            raise CheckpointError(self._save_failure(step, e)) from e
        if jax.process_index() != 0:  # one writer; Orbax has waited for every process's files
            return
        path = self.step_dir(step)
        if path.is_dir():
            self.manifests.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.manifests / f"{step}.json", directory_manifest(path))
        self._prune_manifests()

    def close(self) -> None:
        try:
            self.finalize()
        finally:
            self.manager.close()

    def _save_failure(self, step: int, error: Exception) -> str:
        good = self.good_steps()
        previous = f"the previous checkpoint (step {good[-1]}) is intact" if good else "no earlier checkpoint exists"
        return f"saving the checkpoint of step {step} in {self.directory} failed ({error}); {previous}"

    def _prune_manifests(self) -> None:
        if not self.manifests.is_dir():
            return
        keep = {f"{s}.json" for s in self.manager.all_steps()}
        for path in self.manifests.glob("*.json"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading
    def step_dir(self, step: int) -> Path:
        return self.directory / str(step)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def verify(self, step: int) -> str | None:
        """None when ``step``'s files match its manifest (or it has none yet), else why not."""
        return verify_step(self.run_dir, step)

    def good_steps(self) -> list[int]:
        return [s for s in self.steps() if self.verify(s) is None]

    def restore(self, step: int, abstract_model: Any, abstract_opt: Any | None = None) -> dict:
        """Restores one step's items (``opt`` only when ``abstract_opt`` is given)."""
        items = {"model": ocp.args.StandardRestore(abstract_model), "meta": ocp.args.JsonRestore()}
        if abstract_opt is not None:
            items["opt"] = ocp.args.StandardRestore(abstract_opt)
        return self.manager.restore(step, args=ocp.args.Composite(**items))

    def restore_latest_good(self, abstract_model: Any, abstract_opt: Any | None = None) -> tuple[int, dict] | None:
        """The newest step that verifies and restores, or None when there is none.

        Steps that fail are reported with the reason (via logging and the returned notes).
        """
        self.notes: list[str] = []
        for step in reversed(self.steps()):
            problem = self.verify(step)
            if problem is None:
                try:
                    return step, self.restore(step, abstract_model, abstract_opt)
                except Exception as e:  # truncated/corrupt files that Orbax/TensorStore reject
                    problem = f"it cannot be restored ({type(e).__name__}: {e})"
            moved = self._quarantine(step)
            note = f"checkpoint at step {step} is unusable: {problem}; moved to {moved}, trying an earlier one"
            log.warning(note)
            self.notes.append(note)
        return None

    def _quarantine(self, step: int) -> Path:
        """Moves an unusable step out of the way (kept for inspection, never deleted)."""
        import shutil
        import time

        target = self.run_dir / "quarantine" / f"step-{step}-{int(time.time())}"
        if jax.process_index() == 0:  # every process found it unusable; one moves it
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.step_dir(step)), str(target))
            (self.manifests / f"{step}.json").unlink(missing_ok=True)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"pluralrm quarantine {step}")
        self.manager.reload()
        return target


def abstract_tree(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings where the leaves have them) for restoring into."""

    def leaf(x):
        sharding = getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)

    return jax.tree.map(leaf, tree)
