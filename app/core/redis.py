"""Redis clients that fail fast.

Redis is a wake-up channel and a rate-limit store, never the truth: while it is away the
platform degrades (PostgreSQL re-reads, fallback limits) instead of waiting. So every client
gives up within about a second: a short connect/socket timeout and at most one quick retry
(which still hides the first command after a Redis restart, whose pooled connection is stale).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 0.5
# What an outage looks like to a caller: catch these to degrade instead of failing.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def connect(url: str, *, retries: int = 1) -> Redis:
    """A client for `url`; `retries=0` for connections whose owner handles reconnects itself
    (the hub must *see* an outage, or it would not re-read what was published meanwhile)."""
    retry = Retry(ExponentialBackoff(cap=0.1, base=0.02), retries) if retries else Retry(NoBackoff(), 0)
    return Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS, retry=retry,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
