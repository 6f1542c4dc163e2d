"""Durable event records: the truth that subscriptions replay (Redis only wakes them up)."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class Event(Model):
    """Domain events per stream (`run:<id>`, `project:<id>`, `user:<id>`), ordered by `seq` in the stream."""

    id = fields.BigIntField(primary_key=True)
    stream = fields.CharField(max_length=60)
    seq = fields.BigIntField()
    kind = fields.CharField(max_length=40)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "events"
        unique_together = (("stream", "seq"),)


class EventStream(Model):
    """The last seq handed out per stream: appends take the next one under a row lock, no retries."""

    stream = fields.CharField(max_length=60, primary_key=True)
    last_seq = fields.BigIntField(default=0)

    class Meta:
        table = "event_streams"
