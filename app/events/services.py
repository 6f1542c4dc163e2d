"""Durable domain events with a per-stream `seq`, then a wake-up on the same topic."""

from __future__ import annotations

from typing import Any

from tortoise import connections

from app.events import bus
from app.events.models import Event


async def append(stream: str, kind: str, payload: dict[str, Any]) -> Event:
    """Append an event to `stream` (e.g. `run:<id>`) with the next seq, then wake subscribers.

    The seq comes from the stream's current maximum inside one INSERT … SELECT; the unique
    (stream, seq) index turns a concurrent race into a retry instead of a duplicate.
    """
    from tortoise.exceptions import IntegrityError

    conn = connections.get("default")
    for _ in range(20):
        try:
            rows = await conn.execute_query_dict(
                "INSERT INTO events (stream, seq, kind, payload, created_at) "
                "SELECT $1::varchar, COALESCE(MAX(seq), 0) + 1, $2, $3::jsonb, now() FROM events "
                "WHERE stream = $1::varchar "
                "RETURNING id",
                [stream, kind, _json(payload)],
            )
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover - 20 collisions in a row means something else is wrong
        raise RuntimeError(f"could not append to {stream}")
    event = await Event.get(id=rows[0]["id"])
    await bus.publish(stream, {"seq": event.seq, "kind": kind})
    return event


def _json(payload: dict[str, Any]) -> str:
    import json

    return json.dumps(payload, default=str)
