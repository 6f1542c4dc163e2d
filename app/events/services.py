"""Durable domain events with a per-stream `seq`, then a wake-up on the same topic."""

from __future__ import annotations

import json
from typing import Any

from tortoise import connections

from app.events import bus

_APPEND = """
WITH s AS (
    INSERT INTO event_streams (stream, last_seq) VALUES ($1::varchar, 1)
    ON CONFLICT (stream) DO UPDATE SET last_seq = event_streams.last_seq + 1
    RETURNING last_seq
)
INSERT INTO events (stream, seq, kind, payload, created_at)
SELECT $1::varchar, last_seq, $2, $3::jsonb, now() FROM s
RETURNING seq
"""


async def append(stream: str, kind: str, payload: dict[str, Any]) -> int:
    """Append an event to `stream` (e.g. `run:<id>`) with the stream's next seq, then wake
    subscribers. Call it after the commit of the change it reports: the wake-up must not reach
    a subscriber before the change is visible. Returns the seq."""
    rows = await connections.get("default").execute_query_dict(
        _APPEND, [stream, kind, json.dumps(payload, default=str)]
    )
    seq = int(rows[0]["seq"])
    await bus.publish(stream, {"seq": seq, "kind": kind})
    return seq
