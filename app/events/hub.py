"""One Redis subscription per process, fanned out in memory to local listeners.

Listeners receive *signals*, not data: a wake-up says "something happened on this topic",
and the listener re-reads the durable record after the last `seq` it sent. So a listener's
memory is one flag whatever the rate, a slow client simply reads bigger batches, and a lost
Redis message (replica disconnected, Redis restarted) costs nothing: on reconnect every
listener is woken to re-read from Postgres.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

log = logging.getLogger("mlpatron.hub")

RECONNECT_DELAY = (0.05, 2.0)  # first, max backoff in seconds
CONFIRM_TIMEOUT = 2.0
# How long a read waits before (un)subscriptions queued meanwhile are sent.
POLL_SECONDS = 0.05


class Signal:
    """A coalescing wake-up flag for one listener."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, at_most: float | None = None) -> bool:
        """Wait for a wake-up (or `at_most` seconds); returns whether one came. Clears the flag."""
        try:
            async with asyncio.timeout(at_most):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


class Hub:
    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._listeners: dict[str, set[Signal]] = defaultdict(set)
        self._changes: collections.deque[tuple[str, str]] = collections.deque()
        # Topics whose SUBSCRIBE Redis has not confirmed yet: a first listener waits for it,
        # or a message published between its backlog read and the subscription would be lost.
        self._confirming: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def topics(self) -> int:
        return len(self._listeners)

    @contextlib.asynccontextmanager
    async def listen(self, *topics: str) -> AsyncIterator[Signal]:
        """Register for wake-ups on `topics` *before* reading the backlog, so nothing falls between."""
        signal = Signal()
        waits = []
        for topic in topics:
            first = not self._listeners[topic]
            self._listeners[topic].add(signal)
            if first:
                self._changes.append(("subscribe", topic))
            if topic in self._confirming or first:
                waits.append(self._confirming.setdefault(topic, asyncio.get_running_loop().create_future()))
        if waits and self.connected.is_set():
            # Disconnected: no wait, the reconnect wakes every listener to re-read anyway.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*waits)), CONFIRM_TIMEOUT)
        try:
            yield signal
        finally:
            for topic in topics:
                listeners = self._listeners.get(topic)
                if listeners is None:
                    continue
                listeners.discard(signal)
                if not listeners:
                    del self._listeners[topic]
                    self._changes.append(("unsubscribe", topic))

    def _wake(self, topic: str) -> None:
        for signal in self._listeners.get(topic, ()):
            signal.set()

    def _confirm(self, topic: str) -> None:
        future = self._confirming.pop(topic, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _wake_all(self) -> None:
        for listeners in self._listeners.values():
            for signal in listeners:
                signal.set()

    async def _run(self) -> None:
        delay = RECONNECT_DELAY[0]
        while True:
            redis = Redis.from_url(self._redis_url, decode_responses=True)
            pubsub = redis.pubsub()
            try:
                # A placeholder channel keeps the connection in subscribe mode with no listeners.
                # Queued changes stay queued: a listener may register while this SUBSCRIBE is in
                # flight, and re-subscribing a topic is harmless.
                await pubsub.subscribe("mlpatron:hub", *self._listeners.keys())
                self.connected.set()
                delay = RECONNECT_DELAY[0]
                self._wake_all()  # anything published while we were away is re-read from Postgres
                await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("event hub lost Redis (%s); reconnecting in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY[1])
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await redis.aclose()

    async def _pump(self, pubsub: PubSub) -> None:
        """One task owns the connection: apply (un)subscriptions, then read, in turns."""
        while True:
            while self._changes:
                action, topic = self._changes.popleft()
                if action == "subscribe" and topic in self._listeners:
                    await pubsub.subscribe(topic)
                elif action == "unsubscribe" and topic not in self._listeners:
                    await pubsub.unsubscribe(topic)
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            if message is None:
                continue
            if message["type"] == "message":
                self._wake(message["channel"])
            elif message["type"] == "subscribe":
                self._confirm(message["channel"])
