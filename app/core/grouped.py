"""Calls that wait at the same moment answered by one statement (a group of reads).

A Redis wake-up reaches every follower of every busy job at once, and 200 jobs starting together
each ask the same question: one statement per caller made thousands of round trips a second. Here
the calls queued while the previous statement ran (or in the same turn of the event loop) share
the next one; an idle caller waits for nothing but its own statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
R = TypeVar("R")


@dataclass(slots=True)
class _Call(Generic[K, R]):
    key: K
    done: asyncio.Future[R]


class Grouped(Generic[K, R]):
    """`await grouped.call(key)`: `run(keys)` answers a batch of keys, one result per key in order.
    A failed batch fails each of its callers; `weight` bounds how much one batch asks.

    `run` executes in a task started by one of the callers, in a copy of its context: for a
    database statement, never call from inside a transaction (the others' keys would be read
    through it)."""

    def __init__(self, name: str, run: Callable[[list[K]], Awaitable[Sequence[R]]],
                 weight: Callable[[K], int] = lambda _: 1, max_weight: int = 1000) -> None:
        self._name, self._run, self._weight, self._max_weight = name, run, weight, max_weight
        self._queue: list[_Call[K, R]] = []
        self._task: asyncio.Task[None] | None = None

    async def call(self, key: K) -> R:
        loop = asyncio.get_running_loop()
        request: _Call[K, R] = _Call(key, loop.create_future())
        if self._task is not None and self._task.get_loop() is not loop:
            self._task, self._queue = None, []  # an earlier event loop's (a test's): nothing to answer there
        self._queue.append(request)
        if self._task is None or self._task.done():
            # Lives while calls are queued: nothing to start or stop with the process.
            self._task = loop.create_task(self._drain(), name=self._name)
        return await request.done

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # the other callers woken with this one queue theirs too
        while self._queue:
            batch = self._take()
            try:
                answered = list(zip(batch, await self._run([r.key for r in batch]), strict=True))
            except Exception as exc:  # a result missing fails the batch too: no caller waits forever
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
                continue
            for request, result in answered:
                if not request.done.done():  # else its caller went away
                    request.done.set_result(result)

    def _take(self) -> list[_Call[K, R]]:
        taken = weight = 0
        for request in self._queue:
            if taken and weight + self._weight(request.key) > self._max_weight:
                break
            taken, weight = taken + 1, weight + self._weight(request.key)
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch
