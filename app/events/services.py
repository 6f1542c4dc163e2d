"""Durable domain events with a per-stream `seq`, then a wake-up on the same topic."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tortoise import connections

from app.events import bus

# Every run's events also wake this one topic: views across projects (run discovery) follow it.
RUNS_TOPIC = "runs"

# $1 stream, $2 kind, $3 the payloads (json text, in order): one row lock on the stream's
# counter for the whole run of events, which take the next len($3) seqs.
_APPEND = """
WITH p AS (
    SELECT payload::jsonb AS payload, ord FROM unnest($3::text[]) WITH ORDINALITY AS t(payload, ord)
), s AS (
    INSERT INTO event_streams (stream, last_seq) VALUES ($1::varchar, (SELECT count(*) FROM p))
    ON CONFLICT (stream) DO UPDATE SET last_seq = event_streams.last_seq + (SELECT count(*) FROM p)
    RETURNING last_seq
)
INSERT INTO events (stream, seq, kind, payload, created_at)
SELECT $1::varchar, s.last_seq - (SELECT count(*) FROM p) + p.ord, $2, p.payload, now() FROM s, p
RETURNING seq
"""


def append_ctes(stream: str, kind: str, payload: str, source: str) -> str:
    """SQL for a caller's own statement: CTEs `event_seq` and `event` (column `seq`) that append
    one event if `source` (SQL `FROM` items yielding at most one row) has a row, so the event
    commits with the change it reports. `stream`, `kind`, `payload` (jsonb) are SQL expressions
    over `source`. Call `wake` after the commit."""
    return f"""event_seq AS (
    INSERT INTO event_streams (stream, last_seq) SELECT {stream}, 1 FROM {source}
    ON CONFLICT (stream) DO UPDATE SET last_seq = event_streams.last_seq + 1
    RETURNING last_seq
), event AS (
    INSERT INTO events (stream, seq, kind, payload, created_at)
    SELECT {stream}, e.last_seq, {kind}, {payload}, now() FROM event_seq e, {source}
    RETURNING seq
)"""


async def wake(stream: str, kind: str, seq: int) -> None:
    """Tell `stream`'s subscribers that events up to `seq` are committed."""
    await bus.publish(stream, {"seq": seq, "kind": kind})
    if stream.startswith("run:"):
        await bus.publish(RUNS_TOPIC, {"stream": stream, "kind": kind})


async def append(stream: str, kind: str, payload: dict[str, Any]) -> int:
    """Append an event to `stream` (e.g. `run:<id>`) with the stream's next seq, then wake
    subscribers. Call it after the commit of the change it reports: the wake-up must not reach
    a subscriber before the change is visible. Returns the seq."""
    return (await append_many(stream, kind, [payload]))[-1]


async def append_many(stream: str, kind: str, payloads: Sequence[dict[str, Any]]) -> list[int]:
    """`append` for several events of one kind in one statement and one wake-up; their seqs, in order."""
    rows = await connections.get("default").execute_query_dict(
        _APPEND, [stream, kind, [json.dumps(p, default=str) for p in payloads]]
    )
    seqs = sorted(int(r["seq"]) for r in rows)
    await wake(stream, kind, seqs[-1])
    return seqs
