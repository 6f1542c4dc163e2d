"""The sliding-window limiter on the real Redis: truthful retryAfterSeconds, no burst at a window
boundary, atomic under concurrency. Windows of seconds, so the waits are real."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from app.api import ratelimit
from app.api.errors import RateLimited


def bucket() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


async def test_waiting_retry_after_succeeds_and_one_second_less_fails(api: str, services) -> None:
    name, loop = bucket(), asyncio.get_running_loop()
    for _ in range(2):
        await ratelimit.hit(services, name, "s", 2, 3)
    sent = loop.time()
    with pytest.raises(RateLimited) as refused:
        await ratelimit.hit(services, name, "s", 2, 3)
    retry_after = refused.value.retry_after
    assert retry_after == 3
    assert refused.value.extensions["retryAfterSeconds"] == retry_after
    await asyncio.sleep(sent + retry_after - 1 - loop.time())  # the wait itself is what is tested
    with pytest.raises(RateLimited) as again:
        await ratelimit.hit(services, name, "s", 2, 3)
    assert again.value.retry_after == 1  # still truthful, and not pushed out by refused calls
    await asyncio.sleep(sent + retry_after - loop.time())
    await ratelimit.hit(services, name, "s", 2, 3)


async def test_no_burst_across_a_window_boundary(api: str, services) -> None:
    """A fixed window lets `limit` calls through at the end of one window and `limit` more at the
    start of the next; a sliding window never accepts more than `limit` within any window."""
    name, loop = bucket(), asyncio.get_running_loop()
    limit, window = 3, 2
    # `limit` calls just before a clock multiple of the window (where a fixed window resets)...
    boundary = (time.time() // window + 1) * window
    if boundary - time.time() < 0.5:
        boundary += window
    await asyncio.sleep(boundary - 0.3 - time.time())
    for _ in range(limit):
        await ratelimit.hit(services, name, "s", limit, window)
    await asyncio.sleep(boundary + 0.1 - time.time())
    with pytest.raises(RateLimited):  # ...and none more just after it
        await ratelimit.hit(services, name, "s", limit, window)
    # Hammering: any `limit + 1` accepted calls span at least a window.
    accepted: list[tuple[float, float]] = []  # (sent, answered) of each accepted call
    end = loop.time() + 2.5 * window
    while loop.time() < end:
        sent = loop.time()
        try:
            await ratelimit.hit(services, name, "s", limit, window)
            accepted.append((sent, loop.time()))
        except RateLimited:
            pass
        await asyncio.sleep(0.02)  # pacing the hammering, not waiting for a condition
    assert len(accepted) >= 2 * limit
    for (first_sent, _), (_, later_answered) in zip(accepted, accepted[limit:], strict=False):
        assert later_answered - first_sent >= window


async def test_concurrent_calls_never_take_more_than_the_limit(api: str, services) -> None:
    name = bucket()
    results = await asyncio.gather(*(ratelimit.hit(services, name, "s", 5, 60) for _ in range(40)), return_exceptions=True)
    assert sum(r is None for r in results) == 5
    assert all(isinstance(r, RateLimited) for r in results if r is not None)


async def test_more_concurrent_calls_than_redis_connections_are_all_counted_in_redis(api: str, services) -> None:
    """Concurrent calls share pipelined round trips: beyond the client's pool size (100) none is
    decided without Redis (which would count per process), and exactly `limit` are accepted."""
    name, limit = bucket(), 250
    fallbacks = ratelimit.FALLBACKS.labels(name, "local")
    results = await asyncio.gather(*(ratelimit.hit(services, name, "s", limit, 60) for _ in range(300)),
                                   return_exceptions=True)
    assert sum(r is None for r in results) == limit
    assert all(isinstance(r, RateLimited) for r in results if r is not None)
    assert fallbacks._value.get() == 0
