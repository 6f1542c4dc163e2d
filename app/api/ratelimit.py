"""Sliding-window rate limits kept in Redis, so they hold across API replicas.

Each (bucket, subject) keeps the times of its accepted calls in a sorted set; a call is
accepted while fewer than `limit` of them are younger than the window. Checking, recording and
computing the wait happen in one Lua script on Redis's clock, so concurrent replicas cannot
both take the last slot and there is no burst at a window boundary. `retryAfterSeconds` is the
time until the oldest call that blocks this one leaves the window: waiting that long succeeds.
Refused calls are not recorded (hammering does not push the wait further out).

When Redis is unavailable, the policy depends on what the limit protects (README, "When Redis
is away"): authentication limits fail closed (typed SERVICE_UNAVAILABLE with a retry hint:
without the shared count, password guessing would get `limit` tries per replica); content
limits fall back to the same sliding window kept in this process's memory.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
import uuid
import weakref

from prometheus_client import Counter
from redis.asyncio import Redis

from app.api.context import Services
from app.api.errors import RateLimited, ServiceUnavailable
from app.core.redis import UNAVAILABLE

log = logging.getLogger("mlpatron.ratelimit")

# Buckets that refuse service rather than count per process while Redis is down.
FAIL_CLOSED = frozenset({"signup", "login"})
# What a fail-closed refusal suggests: the hub retries Redis at least every 2 s.
OUTAGE_RETRY_AFTER_SECONDS = 5

FALLBACKS = Counter("mlpatron_ratelimit_fallbacks_total",
                    "Rate-limited calls decided without Redis", ["bucket", "policy"])

# KEYS[1] sorted set of accepted calls (score: microseconds); ARGV: window (s), limit, member.
# Returns 0 when the call is accepted, else the microseconds until it would be.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1]) * 1000000
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return 0
end
local blocking = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return math.max(tonumber(blocking[2]) + window - now, 1)
"""


class LocalWindow:
    """The same sliding window in this process's memory (the fallback while Redis is down)."""

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._calls: dict[str, collections.deque[float]] = {}

    def hit(self, key: str, limit: int, window_seconds: float) -> float:
        """0 if accepted (and recorded), else the seconds until a call would be."""
        now = time.monotonic()
        if len(self._calls) > self.MAX_KEYS:
            self._calls = {k: q for k, q in self._calls.items() if q and q[-1] > now - window_seconds}
        calls = self._calls.setdefault(key, collections.deque())
        while calls and calls[0] <= now - window_seconds:
            calls.popleft()
        if len(calls) < limit:
            calls.append(now)
            return 0.0
        return calls[len(calls) - limit] + window_seconds - now


_local = LocalWindow()


class ScriptBatches:
    """Concurrent calls' scripts go to Redis together, pipelined on one connection. One EVAL per
    call would check out a pooled connection each: 200 concurrent requests ran the pool (100)
    dry, and every request beyond it was decided without Redis. A batch is one connection and one
    round trip; each script still runs atomically on Redis, so the count stays exact across
    replicas. Calls arriving while a batch is on its way form the next one."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._queued: list[tuple[tuple[str, int, int, str], asyncio.Future[int]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def run(self, key: str, window_seconds: int, limit: int, member: str) -> int:
        """The script's answer for one call."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queued.append(((key, window_seconds, limit, member), future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="ratelimit-batches")
        return await future

    async def _send(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for args, _ in batch:
                        pipe.eval(_SCRIPT, 1, *args)
                    answers = await pipe.execute(raise_on_error=False)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # the whole batch failed (Redis away): every call decides without it
                answers = [exc] * len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():  # its caller went away
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(int(answer))


_batches: weakref.WeakKeyDictionary[Redis, ScriptBatches] = weakref.WeakKeyDictionary()


async def hit(services: Services, bucket: str, subject: str, limit: int, window_seconds: int) -> None:
    """Count one call; raise RATE_LIMITED with the true `retryAfterSeconds` once `limit` calls
    fall within the last `window_seconds`."""
    key = f"rl:{bucket}:{subject}"
    wait = await _shared_wait(services, key, limit, window_seconds)
    if wait is None:
        wait = _wait_without_redis(bucket, key, limit, window_seconds)
    if wait > 0:
        raise RateLimited(retry_after=max(math.ceil(wait), 1))


async def _shared_wait(services: Services, key: str, limit: int, window_seconds: int) -> float | None:
    """Seconds to wait (0: accepted) by the count in Redis; None if Redis is unavailable."""
    if not services.hub.is_connected:  # a known outage: do not wait for a connect timeout
        return None
    try:
        batches = _batches.get(services.redis) or _batches.setdefault(services.redis, ScriptBatches(services.redis))
        return await batches.run(key, window_seconds, limit, uuid.uuid4().hex) / 1e6
    except UNAVAILABLE as exc:
        log.warning("rate limit %s decided without Redis: %s", key, str(exc) or type(exc).__name__)
        return None


def _wait_without_redis(bucket: str, key: str, limit: int, window_seconds: int) -> float:
    if bucket in FAIL_CLOSED:
        FALLBACKS.labels(bucket, "refuse").inc()
        raise ServiceUnavailable(OUTAGE_RETRY_AFTER_SECONDS)
    FALLBACKS.labels(bucket, "local").inc()
    return _local.hit(key, limit, window_seconds)
