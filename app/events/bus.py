"""Wake-ups on Redis pub/sub. Fire-and-forget: durable truth is always written to Postgres first.

The process binds its Redis client and hub once (`app.main.start_runtime`), the way logging is
set up once: every producer (a service appending an event, the job recorder, the outbox)
publishes through them without being handed a connection, and a process that never binds them
(a CLI command, a unit test) publishes nothing, which costs a subscriber only a later re-read.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis

from app.core.grouped import Grouped
from app.events.hub import Hub

log = logging.getLogger("mlpatron.events")

_bound: tuple[Redis, Hub] | None = None


def bind(redis: Redis, hub: Hub) -> None:
    """Publish through `redis` from now on, while `hub` says Redis is reachable."""
    global _bound
    _bound = (redis, hub)


def unbind() -> None:
    global _bound
    _bound = None


def _connected() -> Redis | None:
    """The bound client while the hub knows Redis is up, else None (nothing is sent)."""
    if _bound is None:
        log.debug("no Redis bound; wake-up not sent")
        return None
    redis, hub = _bound
    return redis if hub.is_connected else None


async def publish(topic: str, message: dict[str, Any] | None = None) -> None:
    """Publish a small wake-up (e.g. `job:<id>`, `run:<id>`, `project:<id>`, `user:<id>`, `jobs`).

    A lost message only delays a subscriber until its next re-read, so errors are logged, not raised.
    While the hub knows Redis is down nothing is sent: subscribers re-read on a timer meanwhile,
    and a producer (a job's log follower, say) must not wait on a dead connection per line.
    Returns once the message was sent (with the others published meanwhile: `_sent`).
    """
    if (redis := _connected()) is None:
        return
    await _sent.call((redis, [(topic, json.dumps(message or {}, default=str))]))


async def publish_many(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """`publish` for many topics at once, in one round trip (a batch of log lines of many jobs)."""
    if not messages or (redis := _connected()) is None:
        return
    await _sent.call((redis, [(topic, json.dumps(message, default=str)) for topic, message in messages]))


async def _send(batches: list[tuple[Redis, list[tuple[str, str]]]]) -> list[None]:
    """Every message published while the previous round trip was in flight, in one pipeline: a
    watcher reporting a thousand Jobs' transitions published ~20,000 times, a round trip each."""
    by_client: dict[int, tuple[Redis, list[tuple[str, str]]]] = {}
    for redis, messages in batches:
        by_client.setdefault(id(redis), (redis, []))[1].extend(messages)
    for redis, messages in by_client.values():
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for topic, payload in messages:
                    pipe.publish(topic, payload)
                await pipe.execute()
        except Exception:
            topics = sorted({topic for topic, _ in messages})
            log.warning("publish to %s failed", topics[0] if len(topics) == 1 else f"{len(topics)} topics",
                        exc_info=True)  # fmt: skip
    return [None] * len(batches)


_sent: Grouped[tuple[Redis, list[tuple[str, str]]], None] = Grouped("redis-publish", _send)
