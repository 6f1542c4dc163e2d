"""Process-wide services wired at start-up (Redis, event bus, executor, tracking).

Services reach them through `get_runtime()` instead of importing the ASGI app, so that
tests, the CLI and the server share one wiring path (`app.main.start_runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from app.events.hub import Hub
    from app.notifications.outbox import OutboxSender
    from app.runs.lifecycle import Lifecycle
    from app.tracking.mlflow import MlflowTracker


@dataclass
class Runtime:
    redis: Redis
    hub: Hub
    tracker: MlflowTracker | None = None
    lifecycle: Lifecycle | None = None
    outbox: OutboxSender | None = None


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("runtime not started")
    return _runtime
