"""How far the training loop may run ahead of the device.

The loop dispatches steps without waiting for them (it reads the device only at read points:
log points, evaluations, checkpoints). JAX dispatch is asynchronous, so between two read points
the host could enqueue every step up to the next one, and each enqueued step keeps its batch on
the device until it runs: at ``train.log_every=50`` and batch 4,096 (hashing) that was 0.4–0.9 GB
of waiting batches. :class:`InFlight` bounds it without making the loop wait: the *prefetch
thread*, before preparing batch ``i``, waits until the step of batch ``i - depth`` has finished.
The device always has up to ``depth`` steps queued, so it never idles on the host, and the main
thread never blocks on a device array between read points.
"""
from __future__ import annotations

import threading
from typing import Any

import jax

IN_FLIGHT = 8
"""Steps the loop may have dispatched and not finished (plus the prefetch queue's batches).
Measured at batch 4,096 (hashing, 1M rows, ``train.log_every=50``, 150 steps, 2 cores): peak
heap 1,434–1,891 MiB unbounded, 1,309–1,331 at 16, 1,154 at 8, 976–1,033 at 4; the fit took
44–48 s unbounded and 46–51 s bounded (run-to-run spread ~3 s)."""


class InFlight:
    """Markers of dispatched steps, handed from the loop to the prefetch thread.

    ``dispatched(i, marker)`` (loop thread): batch ``i``'s step was dispatched; ``marker`` is
    outputs of that step that are not donated to the next one (its metrics; the state is
    donated), which ``jax.block_until_ready`` waits for. ``wait_before(i)`` (prefetch
    thread): returns once batch ``i - depth``'s step has finished, or at once when that batch
    was before ``start`` (steps of an earlier run), or after :meth:`close`.
    """

    def __init__(self, start: int, depth: int = IN_FLIGHT):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.start, self.depth = start, depth
        self._markers: dict[int, Any] = {}
        self._changed = threading.Condition()
        self._closed = False

    def dispatched(self, index: int, marker: Any) -> None:
        with self._changed:
            self._markers[index] = marker
            self._changed.notify_all()

    def wait_before(self, index: int) -> None:
        target = index - self.depth
        if target < self.start:
            return
        with self._changed:
            while target not in self._markers and not self._closed:
                self._changed.wait(0.1)
            marker = self._markers.pop(target, None)  # each index is waited on once, in order
        if marker is not None:
            jax.block_until_ready(marker)

    def close(self) -> None:
        """Releases a waiting prefetch thread (the loop ended); later waits return at once."""
        with self._changed:
            self._closed = True
            self._markers.clear()
            self._changed.notify_all()
