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

import collections
import logging
import math
import time
import uuid

from prometheus_client import Counter

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
        return int(await services.redis.eval(_SCRIPT, 1, key, window_seconds, limit, uuid.uuid4().hex)) / 1e6
    except UNAVAILABLE as exc:
        log.warning("rate limit %s decided without Redis: %s", key, str(exc) or type(exc).__name__)
        return None


def _wait_without_redis(bucket: str, key: str, limit: int, window_seconds: int) -> float:
    if bucket in FAIL_CLOSED:
        FALLBACKS.labels(bucket, "refuse").inc()
        raise ServiceUnavailable(OUTAGE_RETRY_AFTER_SECONDS)
    FALLBACKS.labels(bucket, "local").inc()
    return _local.hit(key, limit, window_seconds)
