"""Dynamic micro-batching: concurrent requests scored together in one model call.

Requests put *jobs* (a kind, n rows of inputs) on a queue and await their rows of the result.
One batcher task takes the first waiting job, keeps collecting for up to ``max_wait_s`` or
until ``max_batch`` rows are waiting, then runs one model call per kind over all collected
rows in a worker thread (the event loop keeps accepting requests meanwhile) and hands each job
its slice. A job larger than ``max_batch`` runs alone; jobs are never split. While a call
runs, new jobs queue up and form the next batch, so under load batches grow by themselves.

Closing stops new submissions and drains every job already queued before the task ends.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# kind -> fn(columns: {name: [rows]}) -> array whose first axis is the rows
Runner = Callable[[dict[str, list[Any]]], np.ndarray]


@dataclass
class _Job:
    kind: str
    columns: dict[str, list[Any]]
    n: int
    future: asyncio.Future


@dataclass
class BatcherStats:
    """Counters for /health: jobs submitted, batches formed, model calls, largest call (rows)."""

    jobs: int = 0
    batches: int = 0
    model_calls: int = 0
    largest_call: int = 0
    in_flight: int = 0
    calls_by_size: dict[int, int] = field(default_factory=dict)


class ClosedError(RuntimeError):
    """The batcher is shutting down and takes no new jobs."""


class MicroBatcher:
    """Collects jobs for a few milliseconds and runs them as one model call per kind.

    Args:
      runners: ``kind -> fn(columns) -> [rows, ...]``, called in the worker thread.
      max_batch: rows to collect before running without waiting further.
      max_wait_s: how long the first job of a batch waits for company.
      observe: called with the rows of each model call (the server's batch-size metric).
    """

    def __init__(self, runners: Mapping[str, Runner], max_batch: int = 256, max_wait_s: float = 0.005,
                 observe: Callable[[int], None] | None = None):
        self.runners = dict(runners)
        self.observe = observe
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.stats = BatcherStats()
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pluralrm-model")
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def closing(self) -> bool:
        """True once :meth:`close` began: no new jobs are taken."""
        return self._closing

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="pluralrm-batcher")

    async def run_in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs ``fn(*args)`` in the model thread (the one the batches run in)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, kind: str, columns: dict[str, Sequence[Any]]) -> np.ndarray:
        """Queues n rows of ``kind`` and returns their ``[n, ...]`` results."""
        if self._closing:
            raise ClosedError("the server is shutting down")
        if kind not in self.runners:
            raise KeyError(kind)
        n = len(next(iter(columns.values())))
        job = _Job(kind, {k: list(v) for k, v in columns.items()}, n, asyncio.get_running_loop().create_future())
        self.stats.jobs += 1
        self.stats.in_flight += 1
        try:
            await self._queue.put(job)
            return await job.future
        finally:
            self.stats.in_flight -= 1

    async def close(self) -> None:
        """Stops taking jobs, finishes every queued one, and stops the worker thread."""
        self._closing = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            batch, rows = [first], first.n
            deadline = loop.time() + self.max_wait_s
            while rows < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if job is None:  # closing: run what we have, then stop (nothing follows the sentinel)
                    stop = True
                    break
                batch.append(job)
                rows += job.n
            await self._run(batch)

    async def _run(self, batch: list[_Job]) -> None:
        self.stats.batches += 1
        by_kind: dict[str, list[_Job]] = {}
        for job in batch:
            by_kind.setdefault(job.kind, []).append(job)
        for kind, jobs in by_kind.items():
            columns = {k: [v for j in jobs for v in j.columns[k]] for k in jobs[0].columns}
            total = sum(j.n for j in jobs)
            self.stats.model_calls += 1
            self.stats.largest_call = max(self.stats.largest_call, total)
            if self.observe is not None:
                self.observe(total)
            self.stats.calls_by_size[len(jobs)] = self.stats.calls_by_size.get(len(jobs), 0) + 1
            try:
                result = await self.run_in_worker(self.runners[kind], columns)
            except Exception as e:  # each request reports the failure of its batch
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            start = 0
            for j in jobs:
                if not j.future.done():  # a client that went away has a cancelled future
                    j.future.set_result(result[start : start + j.n])
                start += j.n


__all__ = ["BatcherStats", "ClosedError", "MicroBatcher", "Runner"]
