"""Durable event records: the truth that subscriptions replay (Redis only wakes them up)."""

from tortoise import fields
from tortoise.models import Model


class JobLogLine(Model):
    id = fields.BigIntField(primary_key=True)
    job = fields.ForeignKeyField("models.Job", related_name="log_lines", on_delete=fields.CASCADE)
    seq = fields.BigIntField()
    stream = fields.CharField(max_length=10)  # stdout | stderr | event
    line = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "job_log_lines"
        unique_together = (("job", "seq"),)


class JobTransition(Model):
    """The job's status timeline; `seq` orders it for resumable `jobStatus` streams."""

    id = fields.BigIntField(primary_key=True)
    job = fields.ForeignKeyField("models.Job", related_name="transitions", on_delete=fields.CASCADE)
    seq = fields.IntField()
    status = fields.CharField(max_length=20)
    pending_info = fields.TextField(null=True)
    error = fields.JSONField(null=True)
    at = fields.DatetimeField()

    class Meta:
        table = "job_transitions"
        unique_together = (("job", "seq"),)


class Event(Model):
    """Domain events per stream (`run:<id>`, `project:<id>`, `user:<id>`), ordered by `seq` in the stream."""

    id = fields.BigIntField(primary_key=True)
    stream = fields.CharField(max_length=60)
    seq = fields.BigIntField()
    kind = fields.CharField(max_length=40)
    payload = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "events"
        unique_together = (("stream", "seq"),)
