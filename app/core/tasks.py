"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("mlpatron.tasks")


async def cancel_and_wait(task: asyncio.Task[Any], *, again_after: float = 0.5) -> None:
    """Cancel `task` and wait until it has ended, cancelling again if it is still running after
    `again_after` seconds: a cancellation can be lost inside a library call (a timeout-wrapped
    read that completes at the moment it is cancelled, as in Python 3.11's `wait_for`), and a
    single `cancel(); await task` then waits forever, hanging the shutdown (seen once in five
    SIGTERMs of `serve` after a Redis restart). Re-raises what the task died of, like `await task`."""
    task.cancel()
    while not task.done():
        await asyncio.wait({task}, timeout=again_after)
        if not task.done():
            log.warning("task %s survived its cancellation; cancelling it again", task.get_name())
            task.cancel()
    if not task.cancelled():
        task.result()
