"""Resumable streams for subscriptions: backlog from Postgres, then live items, never a gap or a
duplicate. Order of operations: register for wake-ups, read after the last seq, yield, wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from app.events.models import Event
from app.runtime import get_runtime

T = TypeVar("T")
BATCH = 500
# Belt and braces: even with no wake-up at all, a stream re-reads this often.
IDLE_REREAD_SECONDS = 5.0


_inflight: dict[tuple[Any, ...], asyncio.Future[Any]] = {}


async def shared(key: tuple[Any, ...], read: Callable[[], Awaitable[T]]) -> T:
    """Single flight: concurrent identical reads (every follower of a job, woken by the same
    line, asks for "after seq N") share one query instead of issuing one each."""
    future = _inflight.get(key)
    if future is None:
        future = asyncio.ensure_future(read())
        _inflight[key] = future
        future.add_done_callback(lambda _: _inflight.pop(key, None))
    return await asyncio.shield(future)


async def follow_batches(
    topics: Sequence[str],
    read_after: Callable[[int, int], Awaitable[Sequence[T]]],
    seq_of: Callable[[T], int],
    start: int,
    *,
    finished: Callable[[], Awaitable[bool]] | None = None,
    share_key: str | None = None,
    batch: int = BATCH,
) -> AsyncIterator[Sequence[T]]:
    """Yield every item with seq > `start`, in order, as the batches each read returns (never
    empty), forever or until `finished()` and drained.

    `finished` is checked *before* each read, so the items written before the stream's end
    (e.g. the log lines before a job's terminal status) are still read once more and sent.
    With `share_key`, followers of the same stream in this process share their reads.
    """
    hub = get_runtime().hub

    async def read(last: int) -> Sequence[T]:
        if share_key is None:
            return await read_after(last, batch)
        return await shared((share_key, "read", last, batch), lambda: read_after(last, batch))

    async def is_finished() -> bool:
        if finished is None:
            return False
        if share_key is None:
            return await finished()
        return await shared((share_key, "finished"), finished)

    async with hub.listen(*topics) as signal:
        last = start
        while True:
            done = await is_finished()
            items = await read(last)
            if items:
                yield items
                last = seq_of(items[-1])
            if len(items) >= batch:
                continue  # more backlog: no need to wait
            if done:
                return
            await signal.wait(at_most=IDLE_REREAD_SECONDS)


async def follow(
    topics: Sequence[str],
    read_after: Callable[[int, int], Awaitable[Sequence[T]]],
    seq_of: Callable[[T], int],
    start: int,
    *,
    finished: Callable[[], Awaitable[bool]] | None = None,
    on_item: Callable[[], None] | None = None,
    share_key: str | None = None,
) -> AsyncIterator[T]:
    """`follow_batches`, one item at a time."""
    async for items in follow_batches(topics, read_after, seq_of, start, finished=finished, share_key=share_key):
        for item in items:
            if on_item is not None:
                on_item()
            yield item


async def events_after(stream: str, after: int, limit: int) -> list[Event]:
    return list(await Event.filter(stream=stream, seq__gt=after).order_by("seq").limit(limit))


async def last_event_seq(stream: str) -> int:
    row = await Event.filter(stream=stream).order_by("-seq").first()
    return row.seq if row else 0
