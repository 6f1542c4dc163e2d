"""Wake-ups on Redis pub/sub. Fire-and-forget: durable truth is always written to Postgres first."""

from __future__ import annotations

import json
import logging
from typing import Any

from app.runtime import get_runtime

log = logging.getLogger("mlpatron.events")


async def publish(topic: str, message: dict[str, Any] | None = None) -> None:
    """Publish a small wake-up (e.g. `job:<id>`, `run:<id>`, `project:<id>`, `user:<id>`, `jobs`).

    A lost message only delays a subscriber until its next re-read, so errors are logged, not raised.
    While the hub knows Redis is down nothing is sent: subscribers re-read on a timer meanwhile,
    and a producer (a job's log follower, say) must not wait on a dead connection per line.
    """
    runtime = get_runtime()
    if not runtime.hub.is_connected:
        return
    try:
        await runtime.redis.publish(topic, json.dumps(message or {}, default=str))
    except Exception:
        log.warning("publish to %s failed", topic, exc_info=True)
