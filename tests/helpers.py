"""Small helpers shared by API tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 60.0,
                     every: float = 0.1) -> T:
    """Poll `probe` until `done(result)`; fail with the last result after `within` seconds."""
    last: Any = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await probe()
                if done(last):
                    return last
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"condition not reached within {within}s; last value: {last!r}") from None
