"""One Redis subscription per process, fanned out in memory to local listeners.

Listeners receive *signals*, not data: a wake-up says "something happened on this topic",
and the listener re-reads the durable record after the last `seq` it sent. So a listener's
memory is one flag whatever the rate, a slow client simply reads bigger batches, and a lost
Redis message (replica disconnected, Redis restarted) costs nothing: on reconnect every
listener is woken to re-read from Postgres.

While Redis is down the hub wakes every listener each `DEGRADED_REREAD_SECONDS`, so streams
keep delivering from PostgreSQL with that bounded delay; when Redis is back they return to
push latency on the same websocket (nothing for the client to do).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

from prometheus_client import Counter
from redis.asyncio.client import PubSub

from app.core.redis import connect
from app.core.tasks import cancel_and_wait

log = logging.getLogger("mlpatron.hub")

RECONNECT_DELAY = (0.05, 2.0)  # first, max backoff in seconds
CONFIRM_TIMEOUT = 2.0
# How long a read waits before (un)subscriptions queued meanwhile are sent.
POLL_SECONDS = 0.05
# A connection that answers nothing (network partition, frozen server) is declared lost after
# its PING goes unanswered this long; a killed server is noticed at once (connection reset).
PING_SECONDS = 1.0
# How long a starting process waits for Redis before it serves degraded.
STARTUP_WAIT_SECONDS = 2.0
# While Redis is down, the longest a subscriber waits for something already committed.
DEGRADED_REREAD_SECONDS = 1.0
# Every hub listens here. A hub that (re)connects says so, and every hub wakes all its
# listeners: wake-ups its process skipped while it was disconnected are re-read everywhere.
HUB_CHANNEL = "mlpatron:hub"

REDIS_OUTAGES = Counter("mlpatron_redis_outages_total", "Times this process's event hub lost Redis")
FALLBACK_REREADS = Counter(
    "mlpatron_redis_fallback_rereads_total", "Listener wake-ups to re-read PostgreSQL while Redis was down")


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
        self._degraded: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        """Whether wake-ups currently arrive through Redis (else streams re-read on a timer)."""
        return self.connected.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def until_connected(self, within: float = STARTUP_WAIT_SECONDS) -> bool:
        """Wait (at most `within` seconds) for the connection: a process that serves before its
        hub connected would answer its first requests degraded (fallback limits, re-reads)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), within)
        return self.is_connected

    async def close(self) -> None:
        for task in (self._task, self._degraded):
            if task is not None:
                await cancel_and_wait(task)

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

    def _wake_all(self) -> int:
        woken = 0
        for listeners in self._listeners.values():
            for signal in listeners:
                signal.set()
                woken += 1
        return woken

    async def _reread_while_degraded(self) -> None:
        while True:
            await asyncio.sleep(DEGRADED_REREAD_SECONDS)
            FALLBACK_REREADS.inc(self._wake_all())

    def _degrade(self, exc: BaseException) -> None:
        self.connected.clear()
        if self._degraded is None:  # first failure of this outage (or Redis absent at start-up)
            REDIS_OUTAGES.inc()
            log.warning("event hub lost Redis (%s); streams re-read PostgreSQL every %.1fs until it is back",
                        str(exc) or type(exc).__name__, DEGRADED_REREAD_SECONDS)
            self._degraded = asyncio.create_task(self._reread_while_degraded(), name="event-hub-degraded")

    def _recover(self) -> None:
        if self._degraded is not None:
            self._degraded.cancel()
            self._degraded = None
            log.warning("event hub reconnected to Redis; streams are back to push")
        self.connected.set()

    async def _run(self) -> None:
        delay = RECONNECT_DELAY[0]
        while True:
            redis = connect(self._redis_url, retries=0)
            pubsub = redis.pubsub()
            try:
                # HUB_CHANNEL also keeps the connection in subscribe mode with no listeners.
                # Queued changes stay queued: a listener may register while this SUBSCRIBE is in
                # flight, and re-subscribing a topic is harmless.
                await pubsub.subscribe(HUB_CHANNEL, *self._listeners.keys())
                self._recover()
                delay = RECONNECT_DELAY[0]
                await redis.publish(HUB_CHANNEL, "connected")  # wakes all, here too (see HUB_CHANNEL)
                await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._degrade(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY[1])
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await redis.aclose()

    async def _apply_changes(self, pubsub: PubSub) -> None:
        """Send the (un)subscriptions queued since the last turn that still hold."""
        while self._changes:
            action, topic = self._changes.popleft()
            if action == "subscribe" and topic in self._listeners:
                await pubsub.subscribe(topic)
            elif action == "unsubscribe" and topic not in self._listeners:
                await pubsub.unsubscribe(topic)

    async def _pump(self, pubsub: PubSub) -> None:
        """One task owns the connection: apply (un)subscriptions, then read, in turns; PING
        when idle so that a connection which silently stopped answering is noticed."""
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        pinged = False
        while True:
            now = loop.time()
            if now - last_heard > PING_SECONDS:
                if pinged:
                    raise ConnectionError(f"no answer to PING within {PING_SECONDS}s")
                await pubsub.ping()
                pinged, last_heard = True, now
            await self._apply_changes(pubsub)
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            if message is None:
                continue
            last_heard, pinged = loop.time(), False
            if message["type"] == "message":
                if message["channel"] == HUB_CHANNEL:
                    self._wake_all()
                else:
                    self._wake(message["channel"])
            elif message["type"] == "subscribe":
                self._confirm(message["channel"])
