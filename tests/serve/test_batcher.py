import asyncio

import numpy as np
import pytest

from pluralrm.serve.batcher import ClosedError, MicroBatcher


def doubling(calls):
    def run(columns):
        calls.append(list(columns["x"]))
        return np.asarray(columns["x"]) * 2

    return run


def test_concurrent_jobs_share_one_call_and_get_their_own_rows():
    calls = []

    async def main():
        b = MicroBatcher({"double": doubling(calls)}, max_batch=100, max_wait_s=0.05)
        b.start()
        results = await asyncio.gather(*(b.submit("double", {"x": [10 * i, 10 * i + 1]}) for i in range(5)))
        await b.close()
        return results, b.stats

    results, stats = asyncio.run(main())
    assert calls == [[0, 1, 10, 11, 20, 21, 30, 31, 40, 41]]
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r, [20 * i, 20 * i + 2])
    assert (stats.jobs, stats.batches, stats.model_calls, stats.largest_call) == (5, 1, 1, 10)


def test_a_full_batch_runs_without_waiting_and_kinds_get_separate_calls():
    calls = []

    async def main():
        b = MicroBatcher({"a": doubling(calls), "b": doubling(calls)}, max_batch=4, max_wait_s=10.0)
        b.start()
        jobs = [b.submit("a", {"x": [1, 2]}), b.submit("b", {"x": [3]}), b.submit("a", {"x": [4]})]
        out = await asyncio.wait_for(asyncio.gather(*jobs), timeout=5)  # 4 rows: no 10 s wait
        await b.close()
        return out

    out = asyncio.run(main())
    assert sorted(calls) == [[1, 2, 4], [3]]
    assert [r.tolist() for r in out] == [[2, 4], [6], [8]]


def test_a_failing_call_fails_every_job_in_it_and_the_batcher_goes_on():
    def flaky(columns):
        if 0 in columns["x"]:
            raise ValueError("bad row")
        return np.asarray(columns["x"])

    async def main():
        b = MicroBatcher({"f": flaky}, max_batch=100, max_wait_s=0.02)
        b.start()
        first = await asyncio.gather(b.submit("f", {"x": [0]}), b.submit("f", {"x": [1]}), return_exceptions=True)
        later = await b.submit("f", {"x": [5]})
        await b.close()
        return first, later

    first, later = asyncio.run(main())
    assert all(isinstance(e, ValueError) for e in first)
    assert later.tolist() == [5]


def test_close_drains_queued_jobs_then_refuses_new_ones():
    calls = []

    async def main():
        b = MicroBatcher({"double": doubling(calls)}, max_batch=100, max_wait_s=0.5)
        b.start()
        pending = [asyncio.ensure_future(b.submit("double", {"x": [i]})) for i in range(3)]
        await asyncio.sleep(0.01)  # queued, waiting for company
        await b.close()
        with pytest.raises(ClosedError):
            await b.submit("double", {"x": [9]})
        return [p.result().tolist() for p in pending]

    assert asyncio.run(main()) == [[0], [2], [4]]
    assert calls == [[0, 1, 2]]
