"""Resumable streams for subscriptions: backlog from Postgres, then live items, never a gap or a
duplicate. Order of operations: register for wake-ups, read after the last seq, yield, wait.

An idle stream costs nothing: it waits for a wake-up and reads nothing meanwhile. Missed wake-ups
are the hub's business (it wakes every listener when it reconnects, and on a timer while Redis is
down), and identical re-reads of followers in one process are shared (`shared`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from app.events.hub import Hub
from app.events.models import Event

T = TypeVar("T")
BATCH = 500


@dataclass(slots=True)
class Position:
    """Where one execution of a subscription stands in its stream.

    The resolver records the seq of each item as it yields it (`seq`); the fan-out uses it to move
    a subscriber that fell behind onto its own execution, which starts after the last seq that
    subscriber was sent (`resume_after`, taking precedence over the client's `afterSeq`)."""

    resume_after: int | None = None
    seq: int | None = None

    def start(self, after_seq: int | None) -> int | None:
        """The afterSeq this execution honours: the resume point if any, else the client's."""
        return self.resume_after if self.resume_after is not None else after_seq


class Snapshot(list[T]):
    """A read's items and whether, in the same database snapshot, the stream had ended. A reader
    that can say so spares its stream the `finished()` query after every wake-up (hundreds of busy
    job logs woke a query each for it), and a read that saw the end has every item before it."""

    __slots__ = ("ended",)

    def __init__(self, items: Sequence[T], ended: bool) -> None:
        super().__init__(items)
        self.ended = ended


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


async def _read_once(share_key: str | None, key: tuple[Any, ...], read: Callable[[], Awaitable[T]]) -> T:
    """`read()`, shared with this process's other followers of `share_key` when there is one."""
    if share_key is None:
        return await read()
    return await shared((share_key, *key), read)


async def follow_batches(
    hub: Hub,
    topics: Sequence[str],
    read_after: Callable[[int, int], Awaitable[Sequence[T]]],
    seq_of: Callable[[T], int],
    start: int,
    *,
    finished: Callable[[], Awaitable[bool]] | None = None,
    share_key: str | None = None,
    batch: int = BATCH,
    position: Position | None = None,
) -> AsyncIterator[Sequence[T]]:
    """Yield every item with seq > `start`, in order, as the batches each read returns (never
    empty), forever or until `finished()` and drained; `hub` wakes the stream on its `topics`.

    A wake-up reads first and sends what it found; only then, caught up, is `finished()` asked, and
    when it says yes the stream reads once more and ends: the items written before the stream's
    end (e.g. the log lines before a job's terminal status) are still sent, and the end check is
    not in the way of a live item. With `share_key`, followers of the same stream in this process
    share their reads. `position` gets the seq of the last item of each batch before it is yielded.
    """
    async with hub.listen(*topics) as signal:
        last, done = start, False
        while True:
            items = await _read_once(share_key, ("read", last, batch), functools.partial(read_after, last, batch))
            if items:
                last = seq_of(items[-1])
                if position is not None:
                    position.seq = last
                yield items
            if len(items) >= batch:
                continue  # more backlog: no need to wait
            if done:
                return
            if isinstance(items, Snapshot):
                if items.ended:
                    return
            elif finished is not None and await _read_once(share_key, ("finished",), finished):
                done = True  # one more read: what was written before the end
                continue
            await signal.wait()


async def follow(
    hub: Hub,
    topics: Sequence[str],
    read_after: Callable[[int, int], Awaitable[Sequence[T]]],
    seq_of: Callable[[T], int],
    start: int,
    *,
    finished: Callable[[], Awaitable[bool]] | None = None,
    on_item: Callable[[], None] | None = None,
    share_key: str | None = None,
    position: Position | None = None,
) -> AsyncIterator[T]:
    """`follow_batches`, one item at a time (`position` gets each item's seq before it is yielded)."""
    async for items in follow_batches(hub, topics, read_after, seq_of, start, finished=finished, share_key=share_key):
        for item in items:
            if on_item is not None:
                on_item()
            if position is not None:
                position.seq = seq_of(item)
            yield item


async def events_after(stream: str, after: int, limit: int) -> list[Event]:
    return list(await Event.filter(stream=stream, seq__gt=after).order_by("seq").limit(limit))


async def last_event_seq(stream: str) -> int:
    row = await Event.filter(stream=stream).order_by("-seq").first()
    return row.seq if row else 0
