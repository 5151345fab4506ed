"""What a person watching a run sees and what stays on disk: a progress bar with loss,
throughput and ETA; metrics as JSONL (``metrics.jsonl``) and TensorBoard event files (``tb/``);
and the final per-group table."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, enabled: bool = True):
        """``enabled``: False on all processes but the first of a multi-process run."""
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self._tb = None
        if tensorboard and enabled:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tb"))

    def truncate_after(self, step: int) -> None:
        """Drops records of steps after ``step`` (a resumed run recomputes them identically)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: everything after it is dropped too
        self.path.write_text("".join(k + "\n" for k in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        if self._tb is not None:
            prefix = record.get("split", "train")
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tb.add_scalar(f"{prefix}/{key}", value, record.get("step", 0))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


class ProgressBar:
    """Step, loss, comparisons/s and ETA; plain log lines when stderr is not a terminal.

    The bar says "compiling" until the first step has been dispatched (compilation happens
    then) and moves with the steps *dispatched* (``advance``, redrawn at most every
    ``refresh_s``; reading the device to show finished steps would stall it); loss, accuracy
    and throughput change at log points (``update``), where the loop reads them anyway.
    """

    def __init__(self, total: int, start: int, enabled: bool, log_every: int, refresh_s: float = 0.5):
        self.console = Console(stderr=True)
        self.total, self.log_every, self.start = total, log_every, start
        self.interactive = enabled and self.console.is_terminal
        self.enabled = enabled
        self.refresh_s = refresh_s
        self._t0, self._n0 = time.perf_counter(), 0
        self._last_draw = 0.0
        self._status = ""
        self._progress = None
        if self.interactive:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=self.console,
                refresh_per_second=4,
            )
            self._task = self._progress.add_task("train", total=total, completed=start, status="compiling the train step...")
            self._progress.start()
        elif enabled and start < total:
            print(f"step {start}/{total}: compiling the train step...", file=sys.stderr, flush=True)

    def advance(self, step: int) -> None:
        """A step was dispatched (cheap: redraws at most every ``refresh_s``)."""
        if self._progress is None:
            return
        now = time.perf_counter()
        if step == self.start + 1 or now - self._last_draw >= self.refresh_s:
            self._last_draw = now
            self._progress.update(self._task, completed=step, status=self._status or "running")

    def update(self, step: int, comparisons: int, status: dict[str, float | None]) -> float:
        """Advances to ``step``; returns the throughput (comparisons/s) since the last call."""
        now = time.perf_counter()
        rate = (comparisons - self._n0) / max(now - self._t0, 1e-9)
        self._t0, self._n0 = now, comparisons
        text = "  ".join(f"{k} {v:.4g}" if v is not None else f"{k} n/a" for k, v in status.items())
        text += f"  {rate:,.0f} cmp/s"
        self._status = text
        if self._progress is not None:
            self._last_draw = now
            self._progress.update(self._task, completed=step, status=text)
        elif self.enabled and (step % self.log_every == 0 or step == self.total):
            print(f"step {step}/{self.total}  {text}", file=sys.stderr, flush=True)
        return rate

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def group_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col in ("group", "count", "accuracy", "nll"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in rows:
        table.add_row(r["group"], str(r["count"]), f"{r['accuracy']:.3f}", f"{r['nll']:.3f}")
    return table
