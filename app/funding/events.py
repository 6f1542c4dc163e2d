"""Durable domain events for money movements, appended after the money committed."""

from __future__ import annotations

import logging
from typing import Any

from app.events import services as events

log = logging.getLogger("mlpatron.funding")


async def emit(stream: str, kind: str, payload: dict[str, Any]) -> None:
    """Append an event; a failure is logged and never undoes (or fails) the committed payment."""
    try:
        await events.append(stream, kind, payload)
    except Exception:
        log.exception("could not append %s event to %s", kind, stream)
