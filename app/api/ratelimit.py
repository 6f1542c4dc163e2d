"""Fixed-window rate limits kept in Redis, so they hold across API replicas."""

from __future__ import annotations

import time

from app.api.errors import RateLimited
from app.runtime import get_runtime

# INCR + EXPIRE in one round trip; returns (count, ttl).
_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('TTL', KEYS[1])}
"""


async def hit(bucket: str, subject: str, limit: int, window_seconds: int) -> None:
    """Count one action; raise RATE_LIMITED with `retryAfter` once `limit` is passed in the window."""
    redis = get_runtime().redis
    window = int(time.time()) // window_seconds
    key = f"rl:{bucket}:{subject}:{window}"
    count, ttl = await redis.eval(_SCRIPT, 1, key, window_seconds)
    if int(count) > limit:
        raise RateLimited(retry_after=max(int(ttl), 1))
