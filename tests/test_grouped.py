"""`app.core.grouped.Grouped`: calls waiting at the same moment share one batch; a batch that fails
(or answers the wrong number of keys) fails each of its callers, and the next calls go on."""

from __future__ import annotations

import asyncio

import pytest

from app.core.grouped import Grouped


async def test_calls_waiting_together_share_one_batch_and_failures_reach_their_callers() -> None:
    batches: list[list[int]] = []

    async def run(keys: list[int]) -> list[int]:
        batches.append(keys)
        if 13 in keys:
            raise ValueError("unlucky")
        if 7 in keys:
            return keys[:-1]  # one answer short
        return [k * 10 for k in keys]

    grouped: Grouped[int, int] = Grouped("test", run, max_weight=3)
    assert await asyncio.gather(*(grouped.call(k) for k in range(5))) == [0, 10, 20, 30, 40]
    assert batches == [[0, 1, 2], [3, 4]]  # together, at most max_weight a batch

    for bad in (13, 7):
        results = await asyncio.wait_for(asyncio.gather(grouped.call(bad), grouped.call(1), return_exceptions=True),
                                         1)  # a caller left waiting fails here instead of hanging
        assert all(isinstance(r, ValueError) for r in results), results
    assert await asyncio.wait_for(grouped.call(2), 1) == 20  # and later calls are answered


async def test_a_caller_that_went_away_does_not_stop_the_others() -> None:
    running, release = asyncio.Event(), asyncio.Event()

    async def run(keys: list[str]) -> list[str]:
        assert keys == ["a", "b"]
        running.set()
        await release.wait()
        return [k.upper() for k in keys]

    grouped: Grouped[str, str] = Grouped("test", run)
    gone = asyncio.ensure_future(grouped.call("a"))
    kept = asyncio.ensure_future(grouped.call("b"))
    await running.wait()  # both in the batch now in flight
    gone.cancel()
    release.set()
    assert await kept == "B"
    with pytest.raises(asyncio.CancelledError):
        await gone
